"""Retrieval over a built index: dense (Chroma), BM25 (bm25s) and hybrid (reciprocal rank fusion).

    from assistant.retrieval import Retriever
    r = Retriever.open("finance", config)          # manifest, its embedder, Chroma collection, BM25: once
    sources = r.retrieve("What was total revenue in 2022?", filters={"company": "BOEING"})
    sources = r.retrieve("statins mortality", mode="bm25", top_k=10, min_similarity=0.3)

An index is always queried with the embedding model that built it (read from its manifest, whatever
the current config says). Filters map any chunk metadata key (doc_id, corpus, company, document,
page, ...) to a value or a list of values; keys are ANDed, values ORed. They become a boolean row mask
over the index's chunks that is applied inside each retriever, never after the cut (BM25 scores are
masked; dense search is then exact over the allowed rows, because Chroma's metadata pre-filter costs
20-110 ms a query at 10k-100k chunks), so a question scoped to one company gets that company's top
chunks and nothing else. Unfiltered dense search is Chroma's HNSW. Every Source carries `score` (the mode's
ranking score) and `similarity` (cosine of question and chunk, comparable across modes).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from assistant.config import Config
from assistant.embeddings import Embedder, load_embedder
from assistant.errors import ConfigError, InputError, NotFoundError
from assistant.fusion import rrf
from assistant.index import manifest as mf
from assistant.index.bm25 import NOT_FILTERS, Bm25Index, is_complete
from assistant.index.status import IndexStatus, status_from_manifest
from assistant.index.store import chroma_dir, close_client, get_collection, open_client, store_label
from assistant.scope import question_scope
from assistant.types import MetaValue, Source

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

MODES = ("dense", "bm25", "hybrid")
VECTOR_FIELDS = ("model", "backend", "quantize", "max_seq_length")
FilterValue = MetaValue | Sequence[MetaValue]
# shown as Source fields already, or bookkeeping only
_HIDDEN_META = frozenset({"doc_id", "title", "locator", "corpus", "doc_hash", "header", "context"})


Candidate = tuple[str, float]  # (chunk id, score)


@dataclass(frozen=True)
class Probe:
    qvec: np.ndarray  # the normalised query vector
    dense: list[Candidate]  # cosine similarity, best first
    lexical: list[Candidate]  # BM25 score, best first


class Retriever:
    """Dense, BM25 and hybrid search over one index; open it once and query it many times."""

    def __init__(
        self,
        name: str,
        config: Config,
        manifest: mf.IndexManifest,
        embedder: Embedder,
        client: ClientAPI,
        collection: Collection,
        bm25: Bm25Index,
    ) -> None:
        self.name = name
        self.config = config
        self.manifest = manifest
        self.embedder = embedder
        self._client = client
        self._collection = collection
        self._bm25 = bm25
        # The last few queries' candidate lists: the router's probe and the retrieval that follows it
        # share one embedding and one search.
        self._recent: OrderedDict[tuple[Any, ...], tuple[np.ndarray, list[Candidate], list[Candidate]]] = OrderedDict()
        self._recent_lock = threading.Lock()

    @classmethod
    def open(cls, name: str, config: Config) -> Retriever:
        """Load index `name`: its manifest, the embedder that built it, its collection and BM25 index."""
        data = mf.load_manifest(name, config)
        # The fields that shape the vectors come from the manifest (an index is queried with the model that
        # built it); the others (e.g. worker threads) from the current config.
        stored = data.embedding.config
        try:
            embedding = dataclasses.replace(
                config.embedding, **{k: stored[k] for k in VECTOR_FIELDS if k in stored}
            )
        except (TypeError, ConfigError) as exc:
            raise ConfigError(f"index '{name}': embedding config in its manifest is not usable ({exc})") from None
        embedder = load_embedder(embedding)
        if embedder.name != data.embedding.model:
            raise ConfigError(
                f"index '{name}' was built with '{data.embedding.model}' but its config now loads '{embedder.name}': "
                f"rebuild it with `assistant index build {name} --rebuild`"
            )
        rebuild = f"rebuild it with `assistant index build {name}`"
        if not config.store.is_server and not chroma_dir(name, config).is_dir():
            raise NotFoundError(f"index '{name}': no vectors at {chroma_dir(name, config)}: {rebuild}")
        client = open_client(name, config, create=False)
        collection = get_collection(client, data.collection)
        if collection is None:
            close_client(client)
            where = store_label(name, config)
            built = data.store
            hint = f" (it was built in {built})" if built != where else ""
            raise NotFoundError(
                f"index '{name}': collection '{data.collection}' is not in {where}{hint}: {rebuild}"
            )
        path = mf.index_dir(name, config) / "bm25" / data.collection
        if not is_complete(path):
            close_client(client)
            raise NotFoundError(f"index '{name}': its BM25 index is missing ({path}): {rebuild}")
        return cls(name, config, data, embedder, client, collection, Bm25Index.load(path))

    def close(self) -> None:
        close_client(self._client)

    def forget_recent(self) -> None:
        """Drop the cached candidates of recent queries (benchmarks that time a search from scratch)."""
        with self._recent_lock:
            self._recent.clear()

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def status(self) -> IndexStatus:
        return status_from_manifest(self.manifest)

    @property
    def facets(self) -> dict[str, list[str]]:
        """Values to scope questions by, e.g. {"company": [...], "document": [...], "corpus": [...]}."""
        return self.status.facets

    @property
    def filter_keys(self) -> list[str]:
        return sorted(self._bm25.columns)

    def __len__(self) -> int:
        return len(self._bm25)

    # -- querying -------------------------------------------------------------------------------

    def retrieve(
        self,
        query: str,
        *,
        top_k: int | None = None,
        mode: str | None = None,
        filters: Mapping[str, FilterValue] | None = None,
        min_similarity: float | None = None,
    ) -> list[Source]:
        """The best `top_k` chunks for `query`, best first, deduplicated, within `filters`."""
        cfg = self.config.retrieval
        if not isinstance(query, str) or not query.strip():
            raise InputError("empty query: ask a question with at least one word")
        mode = mode or cfg.mode
        if mode not in MODES:
            raise InputError(f"unknown retrieval mode '{mode}' (known: {', '.join(MODES)})")
        top_k = cfg.top_k if top_k is None else top_k
        if top_k <= 0:
            raise InputError(f"top_k must be positive, got {top_k}")
        floor = cfg.min_similarity if min_similarity is None else min_similarity
        wanted = self._filters(filters or {})
        if any(not values for values in wanted.values()):
            return []
        n = max(cfg.candidates, top_k) if mode == "hybrid" else top_k
        qvec, dense, lexical = self._candidates(query, n, wanted, dense=mode != "bm25", lexical=mode != "dense")
        if mode == "dense":
            ranked = dense
        elif mode == "bm25":
            ranked = lexical
        else:
            ranked = rrf([dense, lexical], k=cfg.rrf_k, weights=(1.0, cfg.bm25_weight))
        return self._sources(ranked[:top_k], qvec, floor)

    def scope_of(self, question: str) -> dict[str, list[MetaValue]]:
        """The companies (and years) of this index that `question` names, as filters (assistant.scope); a
        year only where the company has filings of it."""
        scope = question_scope(question, self._bm25.columns) if self.config.retrieval.scope else {}
        if "year" in scope and not np.any(self._bm25.mask(self._filters(scope))):
            del scope["year"]
        return scope

    def probe(self, query: str, *, filters: Mapping[str, FilterValue] | None = None) -> Probe:
        """Dense and BM25 candidates for `query` (chunk id, score), best first, for routing signals.

        The candidates are those a hybrid retrieval of the same query searches, and they are kept for
        it: probing first and retrieving after costs one embedding and one search.
        """
        if not isinstance(query, str) or not query.strip():
            raise InputError("empty query: ask a question with at least one word")
        cfg = self.config.retrieval
        n = max(cfg.candidates, cfg.top_k)
        qvec, dense, lexical = self._candidates(query, n, self._filters(filters or {}), dense=True, lexical=True)
        return Probe(qvec, dense, lexical)

    def nearest(self, qvec: np.ndarray | str) -> float:
        """Cosine similarity of the closest chunk to a (normalised) query vector, or to a question embedded
        with this index's own model; 0.0 for an empty index."""
        if len(self) == 0:
            return 0.0
        if isinstance(qvec, str):
            qvec = self._embed_query(qvec)
        got = self._dense(qvec, 1, None)
        return got[0][1] if got else 0.0

    @cached_property
    def centroid(self) -> np.ndarray:
        """The normalised mean of the index's chunk vectors: where the domain sits in embedding space."""
        vectors = self._bm25.vectors
        if len(vectors) == 0:
            return np.zeros(0, dtype=np.float32)
        mean = np.asarray(vectors, dtype=np.float32).mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    def _candidates(
        self, query: str, n: int, wanted: dict[str, list[MetaValue]], *, dense: bool, lexical: bool
    ) -> tuple[np.ndarray, list[Candidate], list[Candidate]]:
        key = (query, n, tuple(sorted((k, tuple(map(str, v))) for k, v in wanted.items())))
        with self._recent_lock:
            hit = self._recent.get(key)
        if hit is not None and (hit[1] or not dense) and (hit[2] or not lexical):
            return hit
        qvec = self._embed_query(query)
        mask = self._bm25.mask(wanted)
        found = (qvec, self._dense(qvec, n, mask) if dense else [], self._lexical(query, n, mask) if lexical else [])
        with self._recent_lock:
            self._recent[key] = found
            while len(self._recent) > 16:
                self._recent.popitem(last=False)
        return found

    def _embed_query(self, query: str) -> np.ndarray:
        vec = np.asarray(self.embedder.embed_query(query), dtype=np.float32)
        return vec / max(float(np.linalg.norm(vec)), 1e-12)

    def _filters(self, filters: Mapping[str, FilterValue]) -> dict[str, list[MetaValue]]:
        """Validate filter keys and coerce values to the stored types ("12" -> 12 for an int column)."""
        out: dict[str, list[MetaValue]] = {}
        for key, value in filters.items():
            if key not in self._bm25.columns:
                known = ", ".join(sorted(self._bm25.columns)) or "none"
                hint = " (bookkeeping, not a filter)" if key in NOT_FILTERS else ""
                raise InputError(f"unknown filter '{key}'{hint} for index '{self.name}' (known: {known})")
            values = [value] if isinstance(value, str | int | float | bool) else list(value)
            stored = self._bm25.columns[key]
            out[key] = [_coerce(v, stored) for v in values]
        return out

    def _dense(self, qvec: np.ndarray, n: int, mask: np.ndarray | None) -> list[tuple[str, float]]:
        """Cosine top-n: Chroma's HNSW without filters; with filters, exact over the rows they allow.

        Chroma's metadata pre-filter costs 20-110 ms a query at 10k-100k chunks (bench/retrieval.py);
        a dot product over the allowed rows of the index's vector copy costs ~1-2 ms and is exact.
        """
        ids = self._bm25.ids
        if mask is not None:
            rows, sims = self._bm25.dense(qvec, n, mask)
            return [(ids[r], float(s)) for r, s in zip(rows.tolist(), sims.tolist(), strict=True)]
        n = min(n, len(self))
        if n <= 0:
            return []
        got = self._collection.query(
            query_embeddings=[qvec.tolist()],
            n_results=n,
            include=["distances"],  # type: ignore[list-item]
        )
        distances = (got.get("distances") or [[]])[0]
        return [(cid, 1.0 - float(d)) for cid, d in zip(got["ids"][0], distances, strict=True)]

    def _lexical(self, query: str, n: int, mask: np.ndarray | None) -> list[tuple[str, float]]:
        rows, scores = self._bm25.search(query, n, mask=mask)
        ids = self._bm25.ids
        return [(ids[r], float(s)) for r, s in zip(rows.tolist(), scores.tolist(), strict=True)]

    def _sources(self, ranked: list[tuple[str, float]], qvec: np.ndarray, floor: float) -> list[Source]:
        if not ranked:
            return []
        bm = self._bm25
        # Similarity from the index's vector copy; Chroma's own vectors only for ids the copy lacks.
        missing = any(cid not in bm.row_of for cid, _ in ranked)
        include = ["documents", "metadatas", *(["embeddings"] if missing else [])]
        got = self._collection.get(ids=[cid for cid, _ in ranked], include=include)  # type: ignore[arg-type]
        embeddings = got.get("embeddings") if missing else None
        rows: dict[str, tuple[str, Mapping[str, Any], Any]] = {}
        for i, (cid, text, meta) in enumerate(
            zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
        ):
            rows[cid] = (text or "", meta or {}, embeddings[i] if embeddings is not None else None)
        out: list[Source] = []
        for cid, score in ranked:
            if cid not in rows:  # deleted since the BM25 index was written: skip, never fail a query
                continue
            text, meta, emb = rows[cid]
            vec = bm.vectors[bm.row_of[cid]] if cid in bm.row_of else np.asarray(emb, dtype=np.float32)
            similarity = float(vec @ qvec / max(float(np.linalg.norm(vec)), 1e-12))
            if similarity < floor:
                continue
            out.append(
                Source(
                    doc_id=str(meta.get("doc_id", cid.rpartition("#")[0])),
                    title=str(meta.get("title", "")),
                    locator=str(meta.get("locator", "")),
                    score=float(score),
                    snippet=text,
                    chunk_id=cid,
                    corpus=str(meta.get("corpus", "")),
                    similarity=similarity,
                    metadata={k: cast(MetaValue, v) for k, v in meta.items() if k not in _HIDDEN_META},
                )
            )
        return out


def where_clause(wanted: Mapping[str, list[MetaValue]]) -> dict[str, Any] | None:
    """Chroma `where` for key -> allowed values (ANDed over keys), for callers that query Chroma directly."""
    parts: list[dict[str, Any]] = [
        {key: values[0]} if len(values) == 1 else {key: {"$in": list(values)}}
        for key, values in wanted.items()
    ]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _coerce(value: MetaValue, stored: list[Any]) -> MetaValue:
    if any(type(s) is type(value) for s in stored) or not isinstance(value, str):
        return value
    kinds = {type(s) for s in stored}
    text = value.strip()
    if kinds == {int} and text.lstrip("-").isdigit():
        return int(text)
    if kinds == {float}:
        try:
            return float(text)
        except ValueError:
            return value
    if kinds == {bool} and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


def retrieve(name: str, query: str, config: Config, **kwargs: Any) -> list[Source]:
    """One-off retrieval (opens the index each call; keep a Retriever for repeated queries)."""
    with Retriever.open(name, config) as retriever:
        return retriever.retrieve(query, **kwargs)
