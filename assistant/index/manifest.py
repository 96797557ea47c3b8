"""The index manifest, `indexes/<name>/manifest.json`: what an index holds and how it was built.

    from assistant.index.manifest import load_manifest, index_fingerprint
    m = load_manifest("medical", config)     # IndexManifest: m.collection, m.embedding.model, m.counts, ...
    index_fingerprint("medical", config)     # {"name", "collection", "counts", "embedding", "updated_at"}

It records the corpora, the embedding config and model name/dimension (an index is always queried with
the model that built it), the chunking, the store, the live Chroma collection, counts, a hash of the
corpus and the last build's statistics. `IndexManifest` is its one reader (`from_dict`, keeping keys it
does not know) and writer (`to_dict`, the JSON as it is on disk); `read_manifest` gives the plain dict.
It is written atomically (`assistant.atomic.atomic_write`), and only after a build succeeded, so it
always names a complete collection. Tests: `.venv/bin/pytest tests/index -q`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.atomic import atomic_write
from assistant.config import ChunkingConfig, Config
from assistant.errors import InputError, unknown

MANIFEST = "manifest.json"
FORMAT = 1


def index_dir(name: str, config: Config) -> Path:
    return config.indexes_dir / name


def manifest_path(name: str, config: Config) -> Path:
    return index_dir(name, config) / MANIFEST


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def known_indexes(config: Config) -> list[str]:
    root = config.indexes_dir
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{MANIFEST}"))


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class EmbeddingInfo:
    """The embedding an index was built with: its config (as a dict), model name and dimension."""

    config: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    dim: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"config": dict(self.config), "model": self.model, "dim": self.dim}


@dataclass(frozen=True)
class IndexManifest:
    """`manifest.json`, typed. Keys it does not know are kept in `extra` and written back after the rest."""

    name: str
    collection: str
    corpora: tuple[str, ...] = ()
    embedding: EmbeddingInfo = field(default_factory=EmbeddingInfo)
    chunking: Mapping[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None
    store: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)  # {"documents": n, "chunks": n}
    corpus_hash: str | None = None
    facets: Mapping[str, list[str]] = field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None
    last_build: Mapping[str, Any] = field(default_factory=dict)
    assistant_version: str | None = None
    format: int = FORMAT
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndexManifest:
        emb = _mapping(data.get("embedding"))
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            name=str(data.get("name", "")),
            collection=str(data["collection"]),
            corpora=tuple(str(c) for c in data.get("corpora") or ()),
            embedding=EmbeddingInfo(
                config=_mapping(emb.get("config")),
                model=None if emb.get("model") is None else str(emb["model"]),
                dim=emb.get("dim"),
            ),
            chunking=_mapping(data.get("chunking")),
            fingerprint=data.get("fingerprint"),
            store=data.get("store"),
            counts=_mapping(data.get("counts")),
            corpus_hash=data.get("corpus_hash"),
            facets={k: list(v) for k, v in _mapping(data.get("facets")).items()},
            created_at=data.get("created_at"),
            updated_at=data.get("updated_at"),
            last_build=_mapping(data.get("last_build")),
            assistant_version=data.get("assistant_version"),
            format=int(data.get("format", FORMAT)),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON written to disk, in the order the build has always written it."""
        return {
            "format": self.format,
            "name": self.name,
            "corpora": list(self.corpora),
            "embedding": self.embedding.to_dict(),
            "chunking": dict(self.chunking),
            "fingerprint": self.fingerprint,
            "store": self.store,
            "collection": self.collection,
            "counts": dict(self.counts),
            "corpus_hash": self.corpus_hash,
            "facets": {k: list(v) for k, v in self.facets.items()},
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_build": dict(self.last_build),
            "assistant_version": self.assistant_version,
            **self.extra,
        }

    @property
    def n_documents(self) -> int:
        return int(self.counts.get("documents", 0))

    @property
    def n_chunks(self) -> int:
        return int(self.counts.get("chunks", 0))


def _read(name: str, config: Config) -> dict[str, Any] | None:
    """The manifest's JSON, or None when the index was never built successfully."""
    path = manifest_path(name, config)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            f"index manifest {path} is unreadable ({exc}): rebuild with `assistant index build {name} --rebuild`"
        ) from None
    if not isinstance(data, dict) or "collection" not in data:
        raise InputError(
            f"index manifest {path} is not a manifest: rebuild with `assistant index build {name} --rebuild`"
        )
    return data


def find_manifest(name: str, config: Config) -> IndexManifest | None:
    """The manifest, or None when the index was never built successfully."""
    data = _read(name, config)
    return None if data is None else IndexManifest.from_dict(data)


def load_manifest(name: str, config: Config) -> IndexManifest:
    """The manifest of index `name`; an unknown index raises NotFoundError listing the known ones."""
    found = find_manifest(name, config)
    if found is None:
        raise unknown("index", name, known_indexes(config))
    return found


def read_manifest(name: str, config: Config) -> dict[str, Any]:
    """The manifest of index `name` as a plain dict (the JSON on disk); unknown: NotFoundError."""
    data = _read(name, config)
    if data is None:
        raise unknown("index", name, known_indexes(config))
    return data


def index_fingerprint(name: str, config: Config) -> dict[str, Any]:
    """What results over index `name` depend on: which collection (and build) of which embedding model.

    Raises NotFoundError for an index that was never built."""
    m = load_manifest(name, config)
    return {
        "name": m.name,
        "collection": m.collection,
        "counts": dict(m.counts),
        "embedding": m.embedding.model,
        "updated_at": m.updated_at,
    }


def write_json_atomic(path: Path, data: Any) -> None:
    """`data` as indented JSON (UTF-8, newline-terminated), written atomically."""
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_manifest(name: str, config: Config, manifest: IndexManifest) -> None:
    write_json_atomic(manifest_path(name, config), manifest.to_dict())


def corpus_hash(pairs: Iterable[tuple[str, str]]) -> str:
    """Hash over sorted (doc_id, content_hash): equal hashes mean the same indexed content."""
    h = hashlib.sha256()
    for doc_id, content in sorted(pairs):
        h.update(f"{doc_id}\t{content}\n".encode())
    return h.hexdigest()[:16]


def fingerprint(embedder_name: str, chunking: ChunkingConfig) -> str:
    """What makes vectors comparable: the model and the chunking. A change means a new collection."""
    payload = json.dumps([embedder_name, dataclasses.asdict(chunking)], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:8]


def assistant_version() -> str:
    """The package's `__version__`, read from the already imported package rather than imported: the
    facade sits at the top layer, and this module is below it (Python imports a package before its
    submodules, so it is there whenever this runs)."""
    package = sys.modules.get("assistant")
    return str(getattr(package, "__version__", "unknown"))
