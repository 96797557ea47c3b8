"""Closed-label evaluation speed: option scoring vs generate-then-parse on the embedded SmolLM2-135M.

The same PubMedQA test questions (official test split, a seeded sample), the same zero-shot prompt (the
`base` strategy's), the same loaded model, in one run: once scoring the options "Yes." / "No." /
"Maybe." by log-likelihood (`Generator.score_options`: one prompt pass, the options batched on its KV
cache), once generating up to `evaluation.label_max_new_tokens` tokens and parsing a label from the text
(`metrics.normalize_label`). Prints questions per second of each, their ratio, and each one's accuracy
and parse-failure count on those questions. The first question of each mode is a warm-up, not timed.

    .venv/bin/python bench/eval.py                  # 40 questions (~3 min on 2 cores)
    .venv/bin/python bench/eval.py --questions 10   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.config import ENV_DATA, load_config
from assistant.corpus import read_sources
from assistant.evaluation.metrics import normalize_label
from assistant.evaluation.runner import sample
from assistant.evaluation.tasks import label_options, option_replies
from assistant.models import load_generator
from assistant.prompts import base_messages

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=40, help="PubMedQA test questions (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None, help="shipped data folder (default: ../shared/data)")
    parser.add_argument("--json", type=Path, default=RESULTS / "eval.json")
    args = parser.parse_args()
    if args.data:
        os.environ[ENV_DATA] = str(args.data)
    config = load_config()
    instruction = config.domain("medical").instruction
    items = [i for i in read_sources("pubmedqa", config).qa if i.split == "test"]
    items = sample(items, args.questions + 1, args.seed)
    generator = load_generator(config)
    max_new = config.evaluation.label_max_new_tokens

    def by_scoring(item: Any) -> str | None:
        options = label_options(item)
        scores = generator.score_options(base_messages(instruction, item.question), option_replies(options))
        return options[max(range(len(options)), key=scores.__getitem__)]

    def by_generation(item: Any) -> str | None:
        gen = generator.generate(base_messages(instruction, item.question), max_new_tokens=max_new)
        return normalize_label(gen.text, label_options(item))

    rows = {}
    for name, fn in (("option scoring", by_scoring), ("generate + parse", by_generation)):
        fn(items[0])  # warm-up
        start = time.perf_counter()
        preds = [fn(item) for item in items[1:]]
        seconds = time.perf_counter() - start
        gold = [i.answer.lower() for i in items[1:]]
        rows[name] = {
            "questions": len(preds),
            "seconds": round(seconds, 2),
            "questions_per_second": round(len(preds) / seconds, 3),
            "accuracy": round(sum(p == g for p, g in zip(preds, gold, strict=True)) / len(preds), 3),
            "unparsed": sum(p is None for p in preds),
        }
        r = rows[name]
        print(f"{name:<18} {r['questions_per_second']:.3f} q/s  ({r['seconds']} s for {r['questions']})  "
              f"accuracy {r['accuracy']:.3f}  unparsed {r['unparsed']}", flush=True)
    ratio = rows["option scoring"]["questions_per_second"] / rows["generate + parse"]["questions_per_second"]
    print(f"option scoring is {ratio:.2f}x the questions/s of generate + parse "
          f"(max_new_tokens {max_new}, model {config.generation.model}, {os.cpu_count()} CPUs)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "model": config.generation.model, "machine": platform.platform(), "cpus": os.cpu_count(),
        "max_new_tokens": max_new, "seed": args.seed, "rows": rows, "ratio": round(ratio, 2),
        "load_average": os.getloadavg(),
    }, indent=2))


if __name__ == "__main__":
    main()
