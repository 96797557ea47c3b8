"""RAG answer latency with the embedded model: the default engine against transformers fp32 (the old default).

PubMedQA prepared and its 1,000 abstracts indexed in a temporary data home (the default ONNX MiniLM
embedder), then the same N test questions asked with strategy `rag` (retrieval, a ~1,000-1,500-token
prompt, generation, citations) through `Assistant.ask`, first on the project's default engine (backend
auto), then on `backend: transformers, dtype: float32`, each after one warm-up question. Prints p50 and
p95 seconds per answer for both, their ratio, the mean prompt and reply lengths, and the process's peak
resident memory after each engine (the second includes the first: one process). Target (issue 13): a RAG
answer's p50 under 3 s on 2 cores.

    .venv/bin/python bench/answer.py                 # 20 questions, ~6 min on 2 cores (the index: ~1.5 min)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant import Assistant, load_documents, prepare_corpus
from assistant.config import ENV_DATA, ENV_HOME, Config, GenerationConfig, load_config
from assistant.corpus import read_sources
from assistant.evaluation.runner import sample
from assistant.index import build_index
from assistant.models import clear_generators

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(config: object, questions: list[str], *, threads: bool = False) -> dict:
    """Each question asked from this thread, or with `threads` from a new thread each (as a web server's
    workers ask), after a warm-up question asked here."""
    clear_generators()
    assistant = Assistant("medical", config)  # type: ignore[arg-type]
    assistant.ask(questions[0], strategy="rag")  # warm-up: loads (and for auto, measures) the engines
    seconds, prompt, reply = [], [], []
    for q in questions[1:]:
        start = time.perf_counter()
        if threads:
            got: list = []
            worker = threading.Thread(target=lambda q=q, got=got: got.append(assistant.ask(q, strategy="rag")))
            worker.start()
            worker.join()
            answer = got[0]
        else:
            answer = assistant.ask(q, strategy="rag")
        seconds.append(time.perf_counter() - start)
        prompt.append(answer.prompt_tokens)
        reply.append(answer.output_tokens)
    seconds.sort()
    return {"engine": assistant.generator.describe(), "p50_s": statistics.median(seconds),
            "p95_s": seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))],
            "mean_prompt_tokens": statistics.mean(prompt), "mean_reply_tokens": statistics.mean(reply),
            "peak_rss_mb": peak_rss_mb()}


def pubmedqa_home(prefix: str, n_questions: int, seed: int) -> tuple[Path, Config, list[str]]:
    """A temporary data home with PubMedQA prepared and its 1,000 abstracts indexed (the default embedder);
    `n_questions` of its test questions (a seeded sample)."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ[ENV_HOME] = str(home)
    config = load_config()
    prepare_corpus("pubmedqa", config, progress=False)
    build_index("medical", config, documents=list(load_documents("pubmedqa", config)), corpora=["pubmedqa"],
                progress=False)
    items = [q for q in read_sources("pubmedqa", config).qa if q.split == "test"]
    return home, config, [q.question for q in sample(items, n_questions, seed)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None, help="shipped data folder (default: ../shared/data)")
    parser.add_argument("--json", type=Path, default=RESULTS / "answer.json")
    args = parser.parse_args()
    if args.data:
        os.environ[ENV_DATA] = str(args.data)
    _, config, questions = pubmedqa_home("bench-answer-", args.questions + 1, args.seed)
    default = run(config, questions)
    threaded = run(config, questions, threads=True)
    fp32 = run(config.replace(generation=GenerationConfig(backend="transformers", dtype="float32")), questions)
    print(f"RAG answers, embedded SmolLM2-135M, {args.questions} PubMedQA test questions (seed {args.seed}), "
          f"{os.cpu_count()} cores, {platform.machine()}")
    for name, r in (("default", default), ("default, threads", threaded), ("transformers fp32", fp32)):
        print(f"{name:<18} p50 {r['p50_s']:.2f} s  p95 {r['p95_s']:.2f} s  prompt {r['mean_prompt_tokens']:.0f} "
              f"tokens, reply {r['mean_reply_tokens']:.0f}  peak RSS {r['peak_rss_mb']:.0f} MB  [{r['engine']}]")
    print(f"p50: default / transformers fp32 = {default['p50_s'] / fp32['p50_s']:.2f}x (target: p50 < 3 s); "
          f"asked from other threads / from the loading thread = {threaded['p50_s'] / default['p50_s']:.2f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"questions": args.questions, "seed": args.seed, "default": default,
                                     "default_from_threads": threaded,
                                     "transformers_fp32": fp32}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
