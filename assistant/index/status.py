"""Inspect and remove indexes: `index_status`, `list_indexes`, `remove_index`.

    from assistant.index import index_status, list_indexes, remove_index
    index_status("medical", config).n_chunks
    [s.name for s in list_indexes(config)]
    remove_index("old", config)           # its Chroma collection(s) and indexes/old/

Status is read from the manifest alone (no Chroma, no model), so listing indexes is instant.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assistant.config import Config
from assistant.errors import unknown
from assistant.index import manifest as mf
from assistant.index.build import pending_collections
from assistant.index.store import check_index_name, close_client, delete_collection, open_client, same_store


@dataclass
class IndexStatus:
    name: str
    corpora: list[str]
    n_documents: int
    n_chunks: int
    embedding_model: str
    collection: str
    store: str  # a folder path, or http(s)://host:port
    updated_at: str
    facets: dict[str, list[str]] = field(default_factory=dict)  # e.g. company/document/corpus -> values

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def status_from_manifest(manifest: mf.IndexManifest | Mapping[str, Any]) -> IndexStatus:
    """The status an index manifest describes (a typed manifest, or its JSON as a dict)."""
    m = manifest if isinstance(manifest, mf.IndexManifest) else mf.IndexManifest.from_dict(manifest)
    return IndexStatus(
        name=m.name,
        corpora=list(m.corpora),
        n_documents=m.n_documents,
        n_chunks=m.n_chunks,
        embedding_model=m.embedding.model or "",
        collection=m.collection,
        store=m.store or "",
        updated_at=m.updated_at or "",
        facets={k: list(v) for k, v in m.facets.items()},
    )


def index_status(name: str, config: Config) -> IndexStatus:
    """What index `name` holds; an unknown name raises NotFoundError listing the known indexes."""
    return status_from_manifest(mf.load_manifest(name, config))


def list_indexes(config: Config) -> list[IndexStatus]:
    return [index_status(name, config) for name in mf.known_indexes(config)]


def remove_index(name: str, config: Config) -> None:
    """Delete index `name`: its Chroma collection(s) and the folder `indexes/<name>/`.

    Also removes what a failed first build left behind (a folder without a manifest).
    """
    folder = mf.index_dir(name, config)
    if not _is_valid(name) or not folder.is_dir():
        raise unknown("index", name, mf.known_indexes(config))
    data = mf.find_manifest(name, config) if (folder / mf.MANIFEST).is_file() else None
    collections = {*pending_collections(name, config)}
    if data and same_store(data.store, name, config):
        collections.add(data.collection)
    if collections and (config.store.is_server or (folder / "chroma").is_dir()):
        client = open_client(name, config, create=False)
        try:
            for collection in collections:
                delete_collection(client, collection)
        finally:
            close_client(client)
    shutil.rmtree(folder)


def _is_valid(name: str) -> bool:
    try:
        check_index_name(name)
    except Exception:
        return False
    return True
