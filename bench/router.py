"""Routing overhead: what the "auto" strategy adds to the retrieval a RAG answer needs anyway.

For each question (a seeded sample of the domain's test questions), in the same run, on the built index:
  - baseline: `Retriever.retrieve(question)` (hybrid, the default), from a cold candidate cache;
  - routed:   `route(ctx, question)` (signals: the probe of this index, the nearest neighbour in every
              other domain's index, question type, adapters, the policy's decision) followed by the same
              `retrieve(question)`, which reuses the probe's candidates.
Each is timed --repeat times per question, alternating, and the fastest of each is kept (timer and
scheduler noise only ever adds time). Overhead = routed - baseline per question; the figure is its
p50 / p95 in milliseconds (target < 5 ms), with the baseline's latency for scale. The first questions
warm the models up and are not timed.

    .venv/bin/python bench/router.py                       # medical, 200 questions
    .venv/bin/python bench/router.py --domain finance --questions 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.api import Assistant
from assistant.config import load_config
from assistant.evaluation.metrics import percentile as pct
from assistant.evaluation.runner import eval_items, sample
from assistant.routing import clear_cache, route

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", default="medical")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="timings per question; the fastest is kept")
    parser.add_argument("--json", type=Path, default=RESULTS / "router.json")
    args = parser.parse_args()
    config = load_config()
    assistant = Assistant(args.domain, config)
    retriever = assistant.retriever
    ctx = assistant.strategy_context()
    items = sample(eval_items(args.domain, config), args.questions + args.warmup, 0)
    clear_cache()
    base, routed, overhead = [], [], []
    decisions: dict[str, int] = {}
    for n, item in enumerate(items):
        t_base = t_routed = float("inf")
        for _ in range(max(1, args.repeat)):
            retriever.forget_recent()
            start = time.perf_counter()
            retriever.retrieve(item.question)
            t_base = min(t_base, time.perf_counter() - start)
            retriever.forget_recent()
            start = time.perf_counter()
            decision, _ = route(ctx, item.question)
            retriever.retrieve(item.question)
            t_routed = min(t_routed, time.perf_counter() - start)
        if n < args.warmup:
            continue
        base.append(t_base * 1000)
        routed.append(t_routed * 1000)
        overhead.append((t_routed - t_base) * 1000)
        decisions[decision.strategy] = decisions.get(decision.strategy, 0) + 1
    result = {
        "domain": args.domain,
        "questions": len(base),
        "repeat": args.repeat,
        "retrieval_ms": {"p50": statistics.median(base), "p95": pct(base, 95)},
        "routed_ms": {"p50": statistics.median(routed), "p95": pct(routed, 95)},
        "overhead_ms": {"p50": statistics.median(overhead), "p95": pct(overhead, 95), "mean": statistics.fmean(overhead)},
        "decisions": decisions,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": os.getloadavg(),
    }
    print(f"{args.domain}: {len(base)} questions; retrieval alone p50 {result['retrieval_ms']['p50']:.1f} ms, "
          f"p95 {result['retrieval_ms']['p95']:.1f} ms; route + retrieval p50 {result['routed_ms']['p50']:.1f} ms, "
          f"p95 {result['routed_ms']['p95']:.1f} ms")
    print(f"routing overhead: p50 {result['overhead_ms']['p50']:.2f} ms, p95 {result['overhead_ms']['p95']:.2f} ms "
          f"(target < 5 ms); decisions: {decisions}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
