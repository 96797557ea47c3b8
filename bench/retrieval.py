"""Retrieval quality and latency: PubMedQA recall@k / MRR per mode, and query latency at 100k chunks.

Part 1 indexes all 1000 PubMedQA abstracts (PQA-L) with the project's build, then asks the 500
official test questions (question only) and checks where the question's own abstract lands:
recall@1/5/10 and MRR@10 for dense, BM25 and hybrid, with p50/p95 latency, once with the default
int8-quantized MiniLM and once in fp32 (quantization must cost no recall).

Part 2 measures query latency at 100k chunks: synthetic chunks (words drawn from the PubMedQA
vocabulary by frequency) with random unit vectors, built through the same build_index (an extra
embedder backend registered in assistant.embeddings.EMBEDDERS gives the random document vectors; it
embeds queries with the real MiniLM, so latencies include embedding the query). Random vectors are
the hard case for HNSW, so this is conservative.

    .venv/bin/python bench/retrieval.py                                   # full: 1000 docs, 500 questions, 100k
    .venv/bin/python bench/retrieval.py --questions 50 --docs 200 --synthetic 5000 --no-fp32   # quick check
    .venv/bin/python bench/retrieval.py --home /tmp/bench-home            # keep indexes; reruns embed nothing

Targets: hybrid recall@5 >= 0.95; hybrid p95 < 50 ms at 100k chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.config import ENV_DATA, Config, EmbeddingConfig, load_config
from assistant.corpus import read_sources
from assistant.embeddings import EMBEDDERS, load_embedder
from assistant.index import build_index
from assistant.retrieval import Retriever
from assistant.types import Document, QAItem

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("dense", "bm25", "hybrid")


def percentiles(seconds: Sequence[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def load_pubmedqa() -> tuple[list[Document], list[QAItem]]:
    """Abstracts and official test questions, exactly as `assistant corpus prepare pubmedqa` makes them."""
    result = read_sources("pubmedqa", load_config())
    docs = sorted(result.documents, key=lambda d: d.id)
    test = sorted((q for q in result.qa if q.split == "test"), key=lambda q: q.id)
    return docs, test


def evaluate(r: Retriever, questions: Sequence[QAItem], mode: str, k: int = 10) -> dict[str, float]:
    for q in questions[:3]:  # warm-up
        r.retrieve(q.question, mode=mode, top_k=k)
    ranks: list[int | None] = []
    times: list[float] = []
    for q in questions:
        start = time.perf_counter()
        hits = r.retrieve(q.question, mode=mode, top_k=k, min_similarity=-1.0)
        times.append(time.perf_counter() - start)
        ids = [h.doc_id for h in hits]
        gold = q.doc_ids[0]
        ranks.append(ids.index(gold) + 1 if gold in ids else None)
    n = len(questions)
    p50, p95 = percentiles(times)
    return {
        "recall@1": sum(1 for x in ranks if x and x <= 1) / n,
        "recall@5": sum(1 for x in ranks if x and x <= 5) / n,
        "recall@10": sum(1 for x in ranks if x and x <= 10) / n,
        "mrr@10": sum(1 / x for x in ranks if x) / n,
        "p50_ms": p50,
        "p95_ms": p95,
    }


def part_pubmedqa(args: argparse.Namespace, home: Path) -> list[dict[str, Any]]:
    all_docs, test = load_pubmedqa()
    questions = test[: args.questions]
    gold = {q.doc_ids[0] for q in questions}
    by_id = {d.id: d for d in all_docs}
    rest = [d for d in all_docs if d.id not in gold]
    docs = [by_id[g] for g in sorted(gold)] + rest[: max(0, args.docs - len(gold))]
    rows = []
    for quantize in (True,) if args.no_fp32 else (True, False):
        label = "int8" if quantize else "fp32"
        config = load_config(home=home).replace(embedding=EmbeddingConfig(quantize=quantize))
        load_embedder(config.embedding)
        report = build_index(f"pubmedqa-{label}", config, documents=docs, corpora=["pubmedqa"], progress=True)
        print(
            f"[{label}] {report.n_documents} docs, {report.n_chunks} chunks, built in {report.seconds:.0f}s "
            f"({report.chunks_embedded} embedded)",
            flush=True,
        )
        with Retriever.open(f"pubmedqa-{label}", config) as r:
            for mode in MODES:
                rows.append({"embedding": label, "mode": mode, **evaluate(r, questions, mode)})
    return rows


class SyntheticEmbedder:
    """Random unit vectors for documents (100k chunks in seconds); the real MiniLM (int8) for queries."""

    def __init__(self, seed: int = 0) -> None:
        self.real = load_embedder(EmbeddingConfig())
        self.dim = self.real.dim
        self.name = f"random:{self.dim} (queries: {self.real.name})"
        self._rng = np.random.default_rng(seed)

    def tokenize(self, text: str) -> list[str]:
        return text.split()

    def embed_documents(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        x = self._rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        if progress:
            progress(len(texts))
        return x

    def embed_query(self, text: str) -> np.ndarray:
        return self.real.embed_query(text)


def synthetic_documents(
    corpus: Sequence[Document], n: int, words: int, companies: int, seed: int = 0
) -> list[Document]:
    """`n` one-chunk documents of `words` words drawn from the PubMedQA vocabulary by frequency."""
    counts = Counter(w for doc in corpus for w in doc.text.split())
    vocab = np.array(list(counts))
    probs = np.array(list(counts.values()), dtype=np.float64)
    probs /= probs.sum()
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, n, 10_000):
        block = vocab[rng.choice(len(vocab), size=(min(10_000, n - start), words), p=probs)]
        for j, row in enumerate(block):
            i = start + j
            company = f"C{i % companies:02d}"
            out.append(
                Document(
                    id=f"syn:{i}",
                    corpus="synthetic",
                    title=f"Synthetic {i}",
                    text=" ".join(row),
                    locator=f"synthetic://{i}",
                    metadata={"company": company},
                )
            )
    return out


def part_latency(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    all_docs, test = load_pubmedqa()
    EMBEDDERS["random"] = lambda cfg: SyntheticEmbedder()
    config: Config = load_config(home=home).replace(embedding=EmbeddingConfig(model="random:384"))
    name = f"synthetic-{args.synthetic}"
    start = time.perf_counter()
    docs = synthetic_documents(all_docs, args.synthetic, args.words, args.companies)
    print(f"[synthetic] generated {len(docs)} documents in {time.perf_counter() - start:.0f}s", flush=True)
    report = build_index(name, config, documents=docs, corpora=["synthetic"], progress=True)
    del docs
    print(f"[synthetic] {report.n_chunks} chunks, built in {report.seconds:.0f}s", flush=True)
    queries = [q.question for q in test[: args.queries]]
    rows: dict[str, tuple[float, float]] = {}
    with Retriever.open(name, config) as r:
        for q in queries[:5]:  # warm-up: first queries pay lazy initialisation
            r.retrieve(q, mode="hybrid")
        times = []
        for q in queries:
            t = time.perf_counter()
            r.embedder.embed_query(q)
            times.append(time.perf_counter() - t)
        rows["query embedding only"] = percentiles(times)
        runs: list[tuple[str, str, dict[str, Any] | None]] = [(mode, mode, None) for mode in MODES] + [
            ("hybrid, filtered to 1 company", "hybrid", {"company": "C03"})
        ]
        for label, mode, filters in runs:
            times = []
            for q in queries:
                t = time.perf_counter()
                r.retrieve(q, mode=mode, filters=filters)
                times.append(time.perf_counter() - t)
            rows[label] = percentiles(times)
    return {
        "chunks": report.n_chunks,
        "queries": len(queries),
        "companies": args.companies,
        "latency_ms": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=None, help="shipped data folder (default: ../shared/data)"
    )
    parser.add_argument(
        "--questions", type=int, default=500, help="PubMedQA test questions (default all 500)"
    )
    parser.add_argument(
        "--docs", type=int, default=1000, help="abstracts to index, the questions' own first (default 1000)"
    )
    parser.add_argument("--no-fp32", action="store_true", help="skip the fp32 comparison")
    parser.add_argument(
        "--synthetic", type=int, default=100_000, help="chunks for the latency test (0: skip)"
    )
    parser.add_argument("--words", type=int, default=150, help="words per synthetic chunk")
    parser.add_argument(
        "--companies", type=int, default=20, help="distinct company values in synthetic metadata"
    )
    parser.add_argument("--queries", type=int, default=200, help="queries for the latency test")
    parser.add_argument("--skip-quality", action="store_true", help="only the latency test")
    parser.add_argument("--home", type=Path, default=None, help="keep indexes here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=RESULTS / "retrieval.json")
    args = parser.parse_args()
    if args.data:
        os.environ[ENV_DATA] = str(args.data)

    tmp = None if args.home else tempfile.TemporaryDirectory(prefix="bench-retrieval-")
    home = args.home or Path(tmp.name)  # type: ignore[union-attr]
    results: dict[str, Any] = {}
    try:
        if not args.skip_quality:
            results["pubmedqa"] = part_pubmedqa(args, home)
        if args.synthetic:
            results["synthetic"] = part_latency(args, home)
    finally:
        if tmp:
            tmp.cleanup()

    if "pubmedqa" in results:
        print(
            f"\nPubMedQA: {args.questions} test questions (question only) against {args.docs} abstracts, top 10\n"
        )
        print(
            f"{'embedding':10} {'mode':7} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6} {'p50 ms':>7} {'p95 ms':>7}"
        )
        for row in results["pubmedqa"]:
            print(
                f"{row['embedding']:10} {row['mode']:7} {row['recall@1']:6.3f} {row['recall@5']:6.3f} "
                f"{row['recall@10']:6.3f} {row['mrr@10']:6.3f} {row['p50_ms']:7.1f} {row['p95_ms']:7.1f}"
            )
        by = {(r["embedding"], r["mode"]): r for r in results["pubmedqa"]}
        if ("fp32", "hybrid") in by:
            for mode in ("dense", "hybrid"):
                d = by[("int8", mode)]["recall@5"] - by[("fp32", mode)]["recall@5"]
                print(f"int8 - fp32 recall@5 ({mode}): {d:+.3f}")
        print(f"hybrid recall@5 = {by[('int8', 'hybrid')]['recall@5']:.3f} (target >= 0.95)")
    if "synthetic" in results:
        syn = results["synthetic"]
        print(
            f"\nLatency at {syn['chunks']} chunks (random vectors, synthetic text), {syn['queries']} queries, top 5\n"
        )
        print(f"{'':32} {'p50 ms':>7} {'p95 ms':>7}")
        for label, (p50, p95) in syn["latency_ms"].items():
            print(f"{label:32} {p50:7.1f} {p95:7.1f}")
        print(f"hybrid p95 = {syn['latency_ms']['hybrid'][1]:.1f} ms (target < 50 ms)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
