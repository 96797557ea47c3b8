"""Indexes: documents chunked with llama-index, embedded, stored in Chroma (on disk or a server) + BM25.

    from assistant.index import build_index, index_status, list_indexes, remove_index, load_manifest
    report = build_index("medical", config)          # incremental: only new or changed documents are embedded
    index_status("medical", config).n_chunks
    load_manifest("medical", config).collection      # the typed manifest (IndexManifest)

On disk, `indexes/<name>/` holds `manifest.json`, `chroma/` (unless a Chroma server is configured)
and `bm25/<collection>/`. The CLI's `assistant index build|update|remove|status|list` wraps these.
Query an index with `assistant.retrieval.Retriever`.
"""

from __future__ import annotations

from assistant.index.build import BuildReport, build_index
from assistant.index.manifest import IndexManifest, index_fingerprint, load_manifest, read_manifest
from assistant.index.status import IndexStatus, index_status, list_indexes, remove_index

__all__ = [
    "BuildReport",
    "IndexManifest",
    "IndexStatus",
    "build_index",
    "index_fingerprint",
    "index_status",
    "list_indexes",
    "load_manifest",
    "read_manifest",
    "remove_index",
]
