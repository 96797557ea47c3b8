"""Where one process's memory goes when it serves the medical domain on the embedded defaults, and how it
holds up over many answers.

A temporary data home with PubMedQA prepared and indexed (as bench/answer.py), then, in this order: the
libraries the app imports (torch, transformers, gradio, chromadb), the embedder, the generation model on the
default engine (llama.cpp, and transformers beside it where it reads prompts faster), the assistant, one
RAG answer, and --answers more RAG answers to other test questions (each prompt a different length). After
each step it prints the resident memory (VmRSS) and the peak so far (VmHWM), from /proc/self/status. Then
the same answers once more in a child process with oneDNN's own kernel caches (1,024 shapes each, which the
project caps: assistant/__init__.py), as the baseline for the growth over the answers. Target (issue 13):
the app serving one domain under 1.2 GB (bench/load.py measures the app itself, under 20 users).

    .venv/bin/python bench/memory.py          # ~5 min on 2 cores (indexing the 1,000 abstracts included)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.config import ENV_HOME, load_config
from bench.answer import RESULTS, pubmedqa_home


def memory_mb() -> tuple[int, int]:
    """(resident, peak resident) MB of this process."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
                  if line.startswith(("VmRSS", "VmHWM")))
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def measure(home: str, questions: list[str], quiet: bool = False) -> list[dict[str, Any]]:
    """The steps above in this process, on the data home `home`; each step's resident and peak MB."""
    import os

    os.environ[ENV_HOME] = home
    config = load_config()
    steps: list[dict[str, Any]] = []

    def step(name: str) -> None:
        rss, peak = memory_mb()
        steps.append({"step": name, "rss_mb": rss, "peak_mb": peak})
        if not quiet:
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
    assistant.ask(questions[0], strategy="rag")
    step("one RAG answer")
    for question in questions[1:]:
        assistant.ask(question, strategy="rag")
    step(f"{len(questions) - 1} more RAG answers")
    steps.append({"engine": generator.describe()})
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=30, help="RAG answers after the first (default 30)")
    parser.add_argument("--json", type=Path, default=RESULTS / "memory.json")
    parser.add_argument("--prepare", type=int, help=argparse.SUPPRESS)  # the child that indexes
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the baseline child: a home and its questions
    args = parser.parse_args()
    if args.prepare:
        home, _, questions = pubmedqa_home("bench-memory-", args.prepare, 0)
        print(json.dumps({"home": str(home), "questions": questions}))
        return
    if args.measure:
        made = json.loads(args.measure)
        print(json.dumps(measure(made["home"], made["questions"], quiet=True)))
        return
    # indexing loads the embedder and Chroma: done in a child process, so that each step below is its own
    import os
    import subprocess

    def child(*flags: str, env: dict[str, str] | None = None) -> Any:
        done = subprocess.run([sys.executable, __file__, *flags], check=True, capture_output=True, text=True,
                              env=env)
        return json.loads(done.stdout.strip().splitlines()[-1])

    made = child("--prepare", str(1 + args.answers))
    steps = measure(made["home"], made["questions"])
    print(f"engine: {steps[-1]['engine']}")
    upstream = {**os.environ, "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024", "LRU_CACHE_CAPACITY": "1024"}
    baseline = child("--measure", json.dumps(made), env=upstream)

    def growth(run: list[dict[str, Any]]) -> tuple[int, int, int]:
        one, more = run[-3], run[-2]
        return one["rss_mb"], more["rss_mb"], more["peak_mb"]

    (a1, a2, a_peak), (b1, b2, b_peak) = growth(steps), growth(baseline)
    print(f"over {args.answers} more answers: resident {a1} -> {a2} MB (+{a2 - a1}), peak {a_peak} MB; with "
          f"oneDNN's default kernel caches {b1} -> {b2} MB (+{b2 - b1}), peak {b_peak} MB")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"steps": steps, "baseline_default_caches": baseline}, indent=2))


if __name__ == "__main__":
    main()
