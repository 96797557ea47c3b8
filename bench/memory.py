"""Where one process's memory goes when it serves the medical domain on the embedded defaults.

A temporary data home with PubMedQA prepared and indexed (as bench/answer.py), then, in this order: the
libraries the app imports (torch, transformers, gradio, chromadb), the embedder, the generation model on the
default engine (llama.cpp, and transformers beside it where it reads prompts faster), the assistant, and one
RAG answer. After each step it prints the resident memory (VmRSS) and the peak so far (VmHWM), from
/proc/self/status. Target (issue 13): the app serving one domain under 1.2 GB (bench/load.py measures the
app itself, under 20 users).

    .venv/bin/python bench/memory.py          # ~2 min on 2 cores (indexing the 1,000 abstracts included)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.config import ENV_HOME, load_config
from bench.answer import RESULTS, pubmedqa_home


def memory_mb() -> tuple[int, int]:
    """(resident, peak resident) MB of this process."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
                  if line.startswith(("VmRSS", "VmHWM")))
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=RESULTS / "memory.json")
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)  # the child that indexes
    args = parser.parse_args()
    if args.prepare:
        home, _, questions = pubmedqa_home("bench-memory-", 1, 0)
        print(json.dumps({"home": str(home), "question": questions[0]}))
        return
    # indexing loads the embedder and Chroma: done in a child process, so that each step below is its own
    import os
    import subprocess

    made = json.loads(subprocess.run([sys.executable, __file__, "--prepare"], check=True, capture_output=True,
                                     text=True).stdout.strip().splitlines()[-1])
    os.environ[ENV_HOME] = made["home"]
    config = load_config()
    steps: list[dict[str, object]] = []

    def step(name: str) -> None:
        rss, peak = memory_mb()
        steps.append({"step": name, "rss_mb": rss, "peak_mb": peak})
        print(f"{name:<55} resident {rss:>5} MB   peak {peak:>5} MB", flush=True)

    step("start (the project's config; PubMedQA indexed by a child)")
    import chromadb  # noqa: F401
    import gradio  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    step("torch, transformers, gradio, chromadb imported")
    from assistant import Assistant
    from assistant.embeddings import load_embedder
    from assistant.models import load_generator

    load_embedder(config.embedding).embed_query("warm up")
    step("embedder loaded")
    generator = load_generator(config)
    step("generation model loaded")
    assistant = Assistant("medical", config)
    step("assistant (index, router)")
    assistant.ask(made["question"], strategy="rag")
    step("one RAG answer")
    print(f"engine: {generator.describe()}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"engine": generator.describe(), "steps": steps}, indent=2))


if __name__ == "__main__":
    main()
