"""Evaluation throughput: a rung's questions answered one at a time vs together (`evaluation.batch`).

The same PubMedQA test questions (official test split, a seeded sample), the same loaded model and index,
in one run: for each rung, once question by question (`runner.answer_item`, as `--batch 1`), once in groups
of `--batch` (`runner.answer_items`: options scored and replies written in one batch). Prints each rung's
seconds both ways and their ratio, the accuracy both ways, how many generated answers are the same and
the largest difference between their option scores. The first question of each rung is a warm-up.
Needs the medical corpora prepared and the medical index built (`make demo` does both, in the data home
`ASSISTANT_HOME` names); adapter rungs need the adapter (`assistant train sft --domain medical --name
medical-sft`).

    .venv/bin/python bench/eval_batch.py                                  # base,rag; 24 questions (~2 min)
    .venv/bin/python bench/eval_batch.py --strategies base,fewshot:3,cot,rag,adapter:medical-sft,rag+adapter:medical-sft
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

from assistant.api import Assistant
from assistant.config import ENV_DATA, load_config
from assistant.evaluation.runner import (
    answer_item,
    answer_items,
    eval_items,
    parse_strategies,
    sample,
    split_rung,
)

RESULTS = Path(__file__).resolve().parent / "results"


def max_score_difference(one: list[Any], many: list[Any]) -> float | None:
    diffs = [abs(a.extra["option_scores"][k] - b.extra["option_scores"][k]) for a, b in zip(one, many, strict=True)
             if "option_scores" in a.extra and "option_scores" in b.extra for k in a.extra["option_scores"]]
    return round(max(diffs), 4) if diffs else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="base,rag", help="rungs, as for assistant eval (default base,rag)")
    parser.add_argument("--questions", type=int, default=24, help="PubMedQA test questions per rung (default 24)")
    parser.add_argument("--batch", type=int, default=8, help="questions answered together (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None, help="shipped data folder (default: ../shared/data)")
    parser.add_argument("--json", type=Path, default=RESULTS / "eval_batch.json")
    args = parser.parse_args()
    if args.data:
        os.environ[ENV_DATA] = str(args.data)
    config = load_config().for_domain("medical")
    specs = parse_strategies(args.strategies, config)
    items = sample(eval_items("medical", config, ["pubmedqa"]), args.questions + 1, args.seed)
    assistant = Assistant("medical", config)
    rows = {}
    for spec in specs:
        assistant.warm_up(split_rung(spec)[0])
        answer_item(assistant, spec, items[0], "bench", config)  # warm-up
        start = time.perf_counter()
        one = [answer_item(assistant, spec, item, "bench", config) for item in items[1:]]
        alone = time.perf_counter() - start
        start = time.perf_counter()
        many = [r for i in range(1, len(items), args.batch)
                for r in answer_items(assistant, spec, items[i : i + args.batch], "bench", config)]
        together = time.perf_counter() - start
        rows[spec] = {
            "questions": len(one), "seconds_alone": round(alone, 2), "seconds_together": round(together, 2),
            "ratio": round(alone / together, 2),
            "accuracy_alone": round(sum(r.correct for r in one) / len(one), 3),
            "accuracy_together": round(sum(r.correct for r in many) / len(many), 3),
            "same_answers": sum(a.answer == b.answer for a, b in zip(one, many, strict=True)),
            "max_option_score_difference": max_score_difference(one, many),
            "errors": sum(bool(r.error) for r in one + many),
        }
        r = rows[spec]
        print(f"{spec:<24} alone {r['seconds_alone']:7.2f} s  together {r['seconds_together']:7.2f} s  "
              f"{r['ratio']:.2f}x  accuracy {r['accuracy_alone']:.3f} / {r['accuracy_together']:.3f}  "
              f"same answers {r['same_answers']}/{r['questions']}  option scores within "
              f"{r['max_option_score_difference']}  errors {r['errors']}", flush=True)
    alone = sum(r["seconds_alone"] for r in rows.values())
    together = sum(r["seconds_together"] for r in rows.values())
    print(f"all rungs: {alone / together:.2f}x the questions/s answered {args.batch} at a time "
          f"(model {config.generation.model}, engine {assistant.generator.describe()}, {os.cpu_count()} CPUs)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "model": config.generation.model, "engine": assistant.generator.identity(), "machine": platform.platform(),
        "cpus": os.cpu_count(), "batch": args.batch, "seed": args.seed, "rows": rows,
        "ratio": round(alone / together, 2), "load_average": os.getloadavg(),
    }, indent=2, default=str))


if __name__ == "__main__":
    main()
