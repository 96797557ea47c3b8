"""TAT-QA from the question alone: where the gold context ranks, and how often the extractive answer is right,
for each retrieval setting (mode, top_k, BM25's weight in the fusion).

TAT-QA's questions were written beside one report excerpt; asked of all 555 excerpts, most name a table's row
("What was the revenue in 2019?") and seldom the company, so ranking decides which table answers. This runs
*train* questions (seed 1; the test split stays for `assistant eval`) through the project's RAG strategy with
`answer_mode=extractive` (no model generates: the table cell, calculation or sentence of the sources is the
answer, scored with the TAT-QA metric), against an index of the TAT-QA excerpts built here with the project's
build. It is what the finance domain's `bm25_weight` was chosen with.

    .venv/bin/python bench/retrieval_tatqa.py                                # 200 questions, ~3 min on 2 cores
    .venv/bin/python bench/retrieval_tatqa.py --settings hybrid:5:1,hybrid:5:2,bm25:5 --questions 500
    .venv/bin/python bench/retrieval_tatqa.py --home /tmp/bench-tatqa        # keep the index; reruns embed nothing
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.api import Assistant
from assistant.config import Config, load_config
from assistant.corpus import read_sources
from assistant.evaluation.tasks import score_item
from assistant.index import build_index

RESULTS = Path(__file__).resolve().parent / "results"
KS = (1, 3, 5, 10)


def run(config: Config, questions: list[Any], mode: str, top_k: int, weight: float) -> dict[str, Any]:
    # the finance domain's own weight is what `ask` uses: set it to the setting measured
    finance = dataclasses.replace(config.domains["finance"], bm25_weight=weight)
    assistant = Assistant("finance", config.replace(domains={**config.domains, "finance": finance}))
    hits = dict.fromkeys(KS, 0)
    right, started = 0, time.perf_counter()
    for item in questions:
        answer = assistant.ask(item.question, strategy="rag", top_k=top_k, mode=mode, answer_mode="extractive")
        ranked = list(dict.fromkeys(s.doc_id for s in answer.sources))
        rank = ranked.index(item.doc_ids[0]) if item.doc_ids[0] in ranked else len(ranked) + 99
        for k in KS:
            hits[k] += rank < k
        right += score_item(item, answer.text, None, config.evaluation).correct
    n = len(questions)
    row = {"mode": mode, "top_k": top_k, "bm25_weight": weight, "questions": n,
           **{f"hit@{k}": round(hits[k] / n, 3) for k in KS}, "extractive_em": round(right / n, 3),
           "seconds": round(time.perf_counter() - started, 1)}
    print(f"{mode:6} top_k {top_k:2}  BM25 x{weight:g}: gold context at rank 1 {row['hit@1']:.3f}, top 3 "
          f"{row['hit@3']:.3f}, top 5 {row['hit@5']:.3f}, top 10 {row['hit@10']:.3f}; extractive answers right "
          f"{row['extractive_em']:.3f}  ({row['seconds']:.0f} s)", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settings", default="hybrid:5:1,hybrid:5:2,dense:5:1,bm25:5:1,hybrid:10:2",
                        help="mode:top_k:bm25_weight, comma-separated")
    parser.add_argument("--home", type=Path, default=None, help="keep the index here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=RESULTS / "retrieval_tatqa.json")
    args = parser.parse_args()
    tmp = None if args.home else tempfile.TemporaryDirectory(prefix="bench-tatqa-")
    home = args.home or Path(tmp.name)  # type: ignore[union-attr]
    try:
        source = read_sources("tatqa", load_config())
        config = load_config(home=home)
        report = build_index("finance", config, documents=source.documents, corpora=["tatqa"], progress=False)
        print(f"index: {report.n_documents} TAT-QA excerpts, {report.n_chunks} chunks ({report.seconds:.0f} s)")
        train = sorted((q for q in source.qa if q.split == "train" and q.doc_ids), key=lambda q: q.id)
        random.Random(args.seed).shuffle(train)
        questions = train[: args.questions]
        rows = []
        for setting in args.settings.split(","):
            mode, top_k, weight = setting.split(":")
            rows.append(run(config, questions, mode, int(top_k), float(weight)))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"seed": args.seed, "split": "train", "rows": rows}, indent=1) + "\n",
                             encoding="utf-8")
        print(f"written {args.json}")
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
