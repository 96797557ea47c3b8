"""Index build throughput: the project's build_index against a plain llama-index VectorStoreIndex.

Both index the same PubMedQA abstracts (read from the shipped ori_pqal.json), with the same
SentenceSplitter settings (chunk size/overlap, counted with the MiniLM tokenizer) and the same
all-MiniLM-L6-v2 weights, into Chroma, in the same run. Model loading is excluded from both timings.

    .venv/bin/pip install llama-index-embeddings-huggingface     # the `bench` extra (baseline only)
    .venv/bin/python bench/index_build.py                        # all 1000 abstracts (~3 min)
    .venv/bin/python bench/index_build.py --docs 100 --no-fp32   # a quick check
    .venv/bin/python bench/index_build.py --workers 1 --workers 2 --workers 3   # embedding threads compared

Rows: the project's build with each embedding engine (ONNX Runtime, the default, and sentence-transformers
on torch), int8 and fp32, each embedding one text at a time on one worker thread per core; then the
llama-index baseline (fp32 HuggingFaceEmbedding, its default batches of 10 on torch's own threads).
The first row is the default configuration. Target: >= 2x.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.config import ENV_DATA, ChunkingConfig, EmbeddingConfig, load_config
from assistant.corpus import read_sources
from assistant.embeddings import embedded_minilm_path, load_embedder
from assistant.index import build_index
from assistant.types import Document

RESULTS = Path(__file__).resolve().parent / "results"


def pubmedqa_documents(n: int) -> list[Document]:
    """The first `n` PubMedQA abstracts (by id), exactly as `assistant corpus prepare pubmedqa` makes them."""
    docs = sorted(read_sources("pubmedqa", load_config()).documents, key=lambda d: d.id)
    return docs[:n]


def run_project(
    docs: list[Document], chunking: ChunkingConfig, *, backend: str, quantize: bool, workers: int, home: Path
) -> dict[str, Any]:
    import bm25s  # noqa: F401  (imports and model loading stay outside the timing, as for the baseline)
    import chromadb  # noqa: F401
    import llama_index.core.node_parser  # noqa: F401

    embedding = EmbeddingConfig(backend=backend, quantize=quantize, workers=workers)
    config = load_config(home=home).replace(embedding=embedding, chunking=chunking)
    load_embedder(config.embedding)
    report = build_index("bench", config, documents=docs, progress=False)
    return {
        "system": f"assistant ({backend} {'int8' if quantize else 'fp32'}, {load_embedder(config.embedding).workers} workers)",
        "chunks": report.n_chunks,
        "seconds": report.seconds,
        "chunks_per_second": report.n_chunks / report.seconds,
    }


def run_baseline(docs: list[Document], chunking: ChunkingConfig, *, home: Path) -> dict[str, Any]:
    try:
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    except ImportError:
        sys.exit(
            "baseline needs `.venv/bin/pip install llama-index-embeddings-huggingface` (the bench extra)"
        )
    import chromadb
    from chromadb.config import Settings
    from llama_index.core import Document as LlamaDocument
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.chroma import ChromaVectorStore

    # The same tokenizer for chunk sizes as the project (llama-index's default would be tiktoken).
    tokenizer = load_embedder(EmbeddingConfig(quantize=False)).tokenize
    embed_model = HuggingFaceEmbedding(model_name=str(embedded_minilm_path()), device="cpu")
    splitter = SentenceSplitter(
        chunk_size=chunking.chunk_size, chunk_overlap=chunking.chunk_overlap, tokenizer=tokenizer
    )
    client = chromadb.PersistentClient(
        path=str(home / "baseline-chroma"), settings=Settings(anonymized_telemetry=False)
    )
    collection = client.get_or_create_collection(
        "baseline", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )
    storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
    llama_docs = [LlamaDocument(id_=d.id, text=d.text, metadata={"title": d.title}) for d in docs]
    start = time.perf_counter()
    VectorStoreIndex.from_documents(
        llama_docs,
        storage_context=storage,
        embed_model=embed_model,
        transformations=[splitter],
        show_progress=False,
    )
    seconds = time.perf_counter() - start
    n = collection.count()
    return {
        "system": "llama-index VectorStoreIndex (fp32)",
        "chunks": n,
        "seconds": seconds,
        "chunks_per_second": n / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="PubMedQA abstracts to index (default: all 1000)")
    parser.add_argument(
        "--data", type=Path, default=None, help="shipped data folder (default: ../shared/data)"
    )
    parser.add_argument("--chunk-size", type=int, default=ChunkingConfig().chunk_size)
    parser.add_argument("--chunk-overlap", type=int, default=ChunkingConfig().chunk_overlap)
    parser.add_argument(
        "--workers",
        type=int,
        action="append",
        help="embedding worker threads of the project's build; repeat to compare (default: the config's)",
    )
    parser.add_argument("--no-fp32", action="store_true", help="skip the fp32 row of the project's build")
    parser.add_argument("--no-baseline", action="store_true", help="skip the llama-index baseline")
    parser.add_argument(
        "--json", type=Path, default=RESULTS / "index_build.json", help="where to write the results"
    )
    args = parser.parse_args()

    if args.data:
        os.environ[ENV_DATA] = str(args.data)
    docs = pubmedqa_documents(args.docs)
    chunking = ChunkingConfig(chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        for n in args.workers or [EmbeddingConfig().workers]:
            for backend in ("onnx", "torch"):  # onnx int8 is the default
                for quantize in (True,) if args.no_fp32 else (True, False):
                    label = f"{backend}-{'int8' if quantize else 'fp32'}-{n}"
                    rows.append(
                        run_project(docs, chunking, backend=backend, quantize=quantize, workers=n, home=Path(tmp) / label)
                    )
        if not args.no_baseline:
            rows.append(run_baseline(docs, chunking, home=Path(tmp)))

    print(
        f"\n{len(docs)} PubMedQA abstracts, chunk_size={chunking.chunk_size} overlap={chunking.chunk_overlap}\n"
    )
    print(f"{'system':46} {'chunks':>7} {'seconds':>8} {'chunks/s':>9}")
    for row in rows:
        print(f"{row['system']:46} {row['chunks']:7d} {row['seconds']:8.1f} {row['chunks_per_second']:9.1f}")
    base = rows[-1] if not args.no_baseline else None
    if base:
        print()
        for row in rows[:-1]:
            print(
                f"{row['system']} / baseline: {row['chunks_per_second'] / base['chunks_per_second']:.2f}x  (target >= 2x)"
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"docs": len(docs), "chunking": dataclasses.asdict(chunking), "rows": rows}, indent=2)
        + "\n"
    )
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
