"""The lexical side of an index: a bm25s index over every chunk in the Chroma collection.

    from assistant.index.bm25 import build_bm25, Bm25Index
    build_bm25(collection, index_dir / "bm25" / collection.name)   # after a build's sync
    bm = Bm25Index.load(path)
    rows, scores = bm.search("statins mortality", k=50, mask=bm.mask({"company": ["BOEING"]}))

It is built from the chunk texts *as stored in Chroma* (header + chunk, English stopwords, Snowball
stemmer), so it always matches the vectors, server mode included. Beside the bm25s files it keeps the
chunk ids in row order, the chunks' scalar metadata as coded columns (filters become a boolean row
mask, bm25s's `weight_mask`, without asking Chroma) and a copy of the chunk vectors (`vectors.npy`, float32, memory-mapped):
Chroma's metadata pre-filter costs 20-110 ms per query at 10k-100k chunks, an exact dot product over
the rows a filter allows costs ~1-2 ms, and the final hits' cosine similarity needs no round trip.
It is written to a temp folder and renamed into place (`assistant.atomic.atomic_dir`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.atomic import atomic_dir
from assistant.index.chunking import embed_text
from assistant.index.store import iter_rows

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

IDS = "chunk_ids.json"
COLUMNS = "columns.json"
CODES = "codes.npz"
VECTORS = "vectors.npy"
STATE = "state.json"
FILES = (IDS, COLUMNS, CODES, VECTORS, STATE)
# per-chunk bookkeeping that is no use as a filter
NOT_FILTERS = frozenset({"doc_hash", "chunk_index", "n_chunks", "header", "context"})
# facet lists (for scoping UIs) skip keys that identify single documents or are not strings
NOT_FACETS = frozenset({"doc_id", "title", "locator", "file"}) | NOT_FILTERS  # file: same as document
MAX_FACET_VALUES = 500


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def _bm25s() -> Any:
    """bm25s, with its logger back at WARNING (it sets DEBUG on import, which floods any root handler)."""
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def tokenize(texts: list[str], stemmer: Any, *, return_ids: bool) -> Any:
    bm25s = _bm25s()

    return bm25s.tokenize(
        texts, lower=True, stopwords="en", stemmer=stemmer, return_ids=return_ids, show_progress=False
    )


def build_bm25(
    collection: Collection, path: Path, state: Mapping[str, Any] | None = None
) -> dict[str, list[str]]:
    """(Re)build the BM25 index of `collection` at `path` atomically; returns the facets it found.

    `state` (e.g. the corpus hash it was built for) is saved with it as `state.json`.
    """
    bm25s = _bm25s()

    ids: list[str] = []
    texts: list[str] = []
    metas: list[Mapping[str, Any]] = []
    vectors: list[np.ndarray] = []
    for page in iter_rows(collection, ["documents", "metadatas", "embeddings"]):
        ids.extend(page["ids"])
        vectors.append(np.asarray(page["embeddings"], dtype=np.float32))
        metas.extend(m or {} for m in page["metadatas"])
        texts.extend(
            embed_text(str((m or {}).get("header", (m or {}).get("title", ""))), d or "")
            for d, m in zip(page["documents"], page["metadatas"], strict=True)
        )
    columns, codes = _columns(metas)
    with atomic_dir(path) as tmp:
        tokens = tokenize(texts, _stemmer(), return_ids=True) if ids else None
        if tokens is not None and tokens.vocab:  # no indexable word at all (e.g. only stopwords): no BM25
            retriever = bm25s.BM25()
            retriever.index(tokens, show_progress=False)
            retriever.save(str(tmp), show_progress=False)
        (tmp / IDS).write_text(json.dumps(ids), encoding="utf-8")
        (tmp / COLUMNS).write_text(json.dumps(columns, ensure_ascii=False), encoding="utf-8")
        # positional arrays in `columns` order: metadata keys are user data and may clash with savez's
        # own parameters (a key named 'file' did)
        np.savez(tmp / CODES, *(codes[key] for key in columns))
        (tmp / STATE).write_text(json.dumps(dict(state or {})), encoding="utf-8")
        matrix = np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32)
        if matrix.size:
            matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        np.save(tmp / VECTORS, matrix)
    return facets_of(columns)


def is_complete(path: Path) -> bool:
    return all((path / name).is_file() for name in FILES)


def _columns(metas: Sequence[Mapping[str, Any]]) -> tuple[dict[str, list[Any]], dict[str, np.ndarray]]:
    """Metadata as categorical columns: key -> distinct values, and key -> int32 code per row (-1: absent)."""
    keys = sorted({k for m in metas for k in m} - NOT_FILTERS)
    values: dict[str, list[Any]] = {}
    codes: dict[str, np.ndarray] = {}
    for key in keys:
        lookup: dict[tuple[type, Any], int] = {}
        col = np.full(len(metas), -1, dtype=np.int32)
        for row, meta in enumerate(metas):
            if key in meta:
                v = meta[key]
                col[row] = lookup.setdefault((type(v), v), len(lookup))
        values[key] = [v for (_, v) in lookup]
        codes[key] = col
    return values, codes


def facets_of(columns: Mapping[str, list[Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, vals in columns.items():
        if key in NOT_FACETS or not vals or len(vals) > MAX_FACET_VALUES:
            continue
        if all(isinstance(v, str) for v in vals):
            out[key] = sorted(vals)
    return out


class Bm25Index:
    """A loaded BM25 index with its chunk ids and filter columns."""

    def __init__(self, path: Path) -> None:
        bm25s = _bm25s()

        self.path = path
        self.ids: list[str] = json.loads((path / IDS).read_text(encoding="utf-8"))
        self.columns: dict[str, list[Any]] = json.loads((path / COLUMNS).read_text(encoding="utf-8"))
        with np.load(path / CODES) as npz:
            self.codes: dict[str, np.ndarray] = {k: npz[f"arr_{i}"] for i, k in enumerate(self.columns)}
        self.vectors: np.ndarray = np.load(path / VECTORS, mmap_mode="r")
        self.row_of: dict[str, int] = {cid: i for i, cid in enumerate(self.ids)}
        self._stemmer = _stemmer()
        has_bm25 = (path / "params.index.json").is_file()
        self._bm25 = bm25s.BM25.load(str(path), load_corpus=False) if has_bm25 else None

    @classmethod
    def load(cls, path: Path) -> Bm25Index:
        return cls(path)

    def __len__(self) -> int:
        return len(self.ids)

    def mask(self, filters: Mapping[str, Sequence[Any]]) -> np.ndarray | None:
        """Boolean row mask for `filters` (key -> allowed values, ANDed over keys); None means no filter."""
        if not filters:
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        for key, wanted in filters.items():
            vals = self.columns.get(key, [])
            allowed = [i for i, v in enumerate(vals) if any(type(v) is type(w) and v == w for w in wanted)]
            keep &= np.isin(self.codes[key], allowed) if key in self.codes else False
        return keep

    def scores(self, query: str, mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every row for `query`, zero where `mask` is False or no query term is known."""
        if self._bm25 is None:
            return np.zeros(len(self.ids), dtype=np.float32)
        tokens = tokenize([query], self._stemmer, return_ids=False)[0]
        ids = self._bm25.get_tokens_ids(tokens)
        weight = None if mask is None else mask.astype(np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids, weight_mask=weight), dtype=np.float32)

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers and BM25 scores of the best `k` rows with a positive score, best first."""
        rows, best = top_k(self.scores(query, mask), k)
        keep = best > 0
        return rows[keep], best[keep]

    def dense(self, qvec: np.ndarray, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosine search over the rows `mask` allows (vectors are unit length): rows and scores."""
        rows = np.flatnonzero(mask)
        if not len(rows) or not self.vectors.size:
            return rows, np.zeros(0, dtype=np.float32)
        sims = self.vectors[rows] @ np.asarray(qvec, dtype=np.float32)
        order, best = top_k(sims, k)
        return rows[order], best


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of the `k` largest scores, best first (ties keep row order)."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=scores.dtype)
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top], kind="stable")]
    return top, scores[top]
