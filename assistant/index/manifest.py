"""The index manifest, `indexes/<name>/manifest.json`: what an index holds and how it was built.

    from assistant.index.manifest import read_manifest
    m = read_manifest("medical", config)     # {"collection": ..., "embedding": {...}, "counts": {...}, ...}

It records the corpora, the embedding config and model name/dimension (an index is always queried with
the model that built it), the chunking, the store, the live Chroma collection, counts, a hash of the
corpus and the last build's statistics. It is written atomically (temp file + os.replace), and only
after a build succeeded, so it always names a complete collection.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def load_manifest(name: str, config: Config) -> dict[str, Any] | None:
    """The manifest, or None when the index was never built successfully."""
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


def read_manifest(name: str, config: Config) -> dict[str, Any]:
    """The manifest of index `name`; an unknown index raises NotFoundError listing the known ones."""
    data = load_manifest(name, config)
    if data is None:
        raise unknown("index", name, known_indexes(config))
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(name: str, config: Config, data: dict[str, Any]) -> None:
    write_json_atomic(manifest_path(name, config), data)


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
    try:
        from assistant import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover - partial checkouts
        return "unknown"
