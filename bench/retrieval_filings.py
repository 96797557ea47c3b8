"""Does retrieval find the evidence page in the filings? Page hit@k on the synthesised filings test split,
before and after context-carrying chunks, whole tables and the question's company scope.

The questions are `assistant data synth --domain finance --corpus filings --method tables` test questions
(split by document: none of their filings' pages were used to make training questions); each names its
company and the page its answer's table is on. One question per gold page is drawn (seed 0), so a page with
forty table cells counts once. Both indexes are built in this run from the same pages, with the project's
build: "before" with `chunking.context: false, whole_tables: false` (each chunk searched by its page title,
tables cut by the sentence splitter), "after" with the defaults; "after + scope" also scopes each question
to the company it names (assistant.scope), as `ask` does. Fusion is reported for a few RRF weightings of
the dense and BM25 lists, read off the same candidate lists.

    assistant data synth --domain finance --corpus filings --method tables    # once: the questions
    .venv/bin/python bench/retrieval_filings.py                               # ~10 min on 2 cores
    .venv/bin/python bench/retrieval_filings.py --questions 100 --home /tmp/bench-filings   # keep the indexes

Target (issue 16): page hit@5 up from before; on held-out analyst questions (measured outside the project)
at least 0.60.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.config import Config, load_config
from assistant.corpus import read_sources
from assistant.fusion import rrf
from assistant.index import build_index
from assistant.retrieval import Retriever
from assistant.types import QAItem

RESULTS = Path(__file__).resolve().parent / "results"
KS = (1, 5, 10)
WEIGHTS = ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0))  # (dense, bm25) RRF weights
VARIANTS = {  # chunking for each index built; "after" is the default
    "before": {"context": False, "whole_tables": False},
    "tables": {"context": False, "whole_tables": True},
    "context": {"context": True, "whole_tables": False},
    "after": {"context": True, "whole_tables": True},
}


def load_questions(path: Path, n: int, seed: int) -> list[QAItem]:
    if not path.is_file():
        raise SystemExit(f"no synthesised questions at {path}: run `assistant data synth --domain finance "
                         "--corpus filings --method tables` first (or pass --qa)")
    items = [QAItem.from_dict(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
    by_page: dict[str, list[QAItem]] = {}
    for q in items:
        if q.split == "test" and q.doc_ids:
            by_page.setdefault(q.doc_ids[0], []).append(q)
    rng = random.Random(seed)
    picked = [rng.choice(qs) for _, qs in sorted(by_page.items())]
    rng.shuffle(picked)
    return picked[:n]


def measure(r: Retriever, questions: list[QAItem], *, scope: bool) -> dict[str, dict[str, float]]:
    """Page hit@k and MRR@10 per mode (dense, bm25, hybrid at each RRF weighting), one candidate search per
    question."""
    cfg = r.config.retrieval
    hits: dict[str, list[int | None]] = {}
    seconds = []
    for q in questions:
        filters = r.scope_of(q.question) if scope else {}
        start = time.perf_counter()
        probe = r.probe(q.question, filters=filters or None)
        if filters and not (probe.dense or probe.lexical):  # as `ask` does: a scope that finds nothing is dropped
            probe = r.probe(q.question)
        seconds.append(time.perf_counter() - start)
        lists = {"dense": [c for c, _ in probe.dense], "bm25": [c for c, _ in probe.lexical]}
        for wd, wb in WEIGHTS:
            lists[f"hybrid {wd:g}:{wb:g}"] = [c for c, _ in rrf([probe.dense, probe.lexical], k=cfg.rrf_k,
                                                                  weights=(wd, wb))]
        gold = q.doc_ids[0]
        for name, ranked in lists.items():
            pages = [cid.rsplit("#", 1)[0] for cid in ranked[:10]]
            hits.setdefault(name, []).append(pages.index(gold) + 1 if gold in pages else None)
    n = len(questions)
    out = {name: {**{f"hit@{k}": sum(1 for x in ranks if x and x <= k) / n for k in KS},
                  "mrr@10": sum(1 / x for x in ranks if x) / n} for name, ranks in hits.items()}
    out["_"] = {"probe_p50_ms": 1000 * sorted(seconds)[len(seconds) // 2]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qa", type=Path, default=None, help="synthesised QA jsonl (default: the data home's "
                        "corpora/filings/qa_test.jsonl)")
    parser.add_argument("--questions", type=int, default=300, help="questions, one per gold page (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default="before,after", help=f"indexes to build, of {','.join(VARIANTS)}")
    parser.add_argument("--home", type=Path, default=None, help="keep the indexes here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=RESULTS / "retrieval_filings.json")
    args = parser.parse_args()

    user = load_config()
    questions = load_questions(args.qa or user.corpora_dir / "filings" / "qa_test.jsonl", args.questions, args.seed)
    tmp = None if args.home else tempfile.TemporaryDirectory(prefix="bench-filings-")
    home = args.home or Path(tmp.name)  # type: ignore[union-attr]
    results: dict[str, Any] = {"questions": len(questions), "seed": args.seed}
    try:
        base: Config = load_config(home=home)
        start = time.perf_counter()
        docs = read_sources("filings", base).documents
        print(f"{len(docs)} pages read in {time.perf_counter() - start:.0f}s", flush=True)
        for label in args.variants.split(","):
            config = base.replace(chunking=replace(base.chunking, **VARIANTS[label]))
            report = build_index(f"filings-{label}", config, documents=docs, corpora=["filings"], progress=True)
            print(f"[{label}] {report.n_chunks} chunks, built in {report.seconds:.0f}s", flush=True)
            with Retriever.open(f"filings-{label}", config) as r:
                for scope in (False, True):
                    row = {"chunks": report.n_chunks, **measure(r, questions, scope=scope)}
                    results[f"{label} + scope" if scope else label] = row
    finally:
        if tmp:
            tmp.cleanup()

    print(f"\nPage hit@k, {len(questions)} synthesised filings test questions (one per gold page, seed "
          f"{args.seed}), all 11 filings indexed, MiniLM int8\n")
    print(f"{'index':18} {'mode':14} {'hit@1':>6} {'hit@5':>6} {'hit@10':>6} {'MRR':>6}")
    for label in [k for k in results if isinstance(results[k], dict)]:
        for mode, row in results[label].items():
            if isinstance(row, dict) and "hit@5" in row:
                print(f"{label:18} {mode:14} {row['hit@1']:6.3f} {row['hit@5']:6.3f} {row['hit@10']:6.3f} "
                      f"{row['mrr@10']:6.3f}")
    if "before" in results and "after" in results:
        print()
        for mode in ("dense", "bm25", "hybrid 1:1"):
            for metric in ("hit@5", "mrr@10"):
                b = results["before"][mode][metric]
                got = ", ".join(f"{label} {results[label][mode][metric]:.3f} "
                                f"({results[label][mode][metric] / max(b, 1e-9):.2f}x)" for label in ("after", "after + scope"))
                print(f"{mode:10} page {metric:6}: before {b:.3f}, {got}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
