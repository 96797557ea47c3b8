"""Build and update an index: documents -> llama-index chunks -> embeddings -> Chroma, then BM25 and manifest.

    from assistant.index import build_index
    report = build_index("medical", config)                      # the domain's corpora, via assistant.corpus
    report = build_index("mine", config, documents=docs, corpora=["mine"])

Incremental and resumable: what the collection already holds is read back (doc_id -> content hash,
n_chunks, chunk ids); complete, unchanged documents are skipped, changed or incomplete ones are
re-chunked, re-embedded and upserted (new chunks first, then the stale ones deleted, so a document is
never missing), and documents gone from the corpus are deleted. Work goes in batches of documents,
each upserted as soon as it is embedded, so a killed build resumes where it stopped and never
duplicates (chunk ids are `doc_id#i`).

A changed embedding model or chunking (the collection's fingerprint), or `rebuild=True`, builds a new
collection beside the live one; the manifest switches to it only when it is complete, and only then is
the old one deleted. A failed build leaves the index as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.atomic import exclusive_lock
from assistant.config import Config
from assistant.embeddings import Embedder, load_embedder
from assistant.errors import InputError
from assistant.index import manifest as mf
from assistant.index.bm25 import COLUMNS, STATE, build_bm25, facets_of, is_complete
from assistant.index.chunking import chunk_documents, make_splitter
from assistant.index.store import (
    PAGE,
    check_index_name,
    close_client,
    create_collection,
    delete_collection,
    iter_rows,
    open_client,
    same_store,
    store_label,
)
from assistant.types import Document

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

log = logging.getLogger(__name__)

# Documents are chunked, embedded and upserted in groups of about this many characters
# (~1000 chunks of 256 tokens, ~15 s of embedding on 2 cores): the most work an interruption loses.
BATCH_CHARS = 1_000_000
PENDING = "pending.json"  # collections of builds that have not (yet) succeeded, removed on the next success


@dataclass
class BuildReport:
    name: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    n_documents: int = 0
    n_chunks: int = 0
    seconds: float = 0.0
    chunks_per_second: float = 0.0
    rebuilt: bool = False
    collection: str = ""
    skipped_empty: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class _Present:
    ids: list[str] = field(default_factory=list)
    versions: set[tuple[str, int]] = field(default_factory=set)  # (doc_hash, n_chunks)

    def complete(self, doc: Document) -> bool:
        if len(self.versions) != 1:
            return False
        doc_hash, n = next(iter(self.versions))
        return doc_hash == doc.content_hash and sorted(self.ids) == sorted(f"{doc.id}#{i}" for i in range(n))


def _resolve(
    name: str, config: Config, documents: Iterable[Document] | None, corpora: Sequence[str] | None
) -> tuple[list[str], dict[str, Document]]:
    if documents is None:
        from assistant.corpus import corpora_for, load_documents

        names = list(corpora) if corpora else corpora_for(name, config)
        documents = (d for c in names for d in load_documents(c, config))
    docs: dict[str, Document] = {}
    for doc in documents:
        if doc.id in docs and docs[doc.id].content_hash != doc.content_hash:
            raise InputError(
                f"document id '{doc.id}' occurs twice with different content: ids must be unique"
            )
        docs[doc.id] = doc
    names = list(corpora) if corpora else sorted({d.corpus for d in docs.values()})
    if not docs:
        raise InputError(
            f"index '{name}': no documents to index (corpora: {', '.join(names) or 'none'}); "
            "prepare the corpus first with `assistant corpus prepare NAME`"
        )
    return names, docs


def _read_present(collection: Collection) -> tuple[dict[str, _Present], list[str]]:
    """doc_id -> what the collection holds for it; plus ids of rows that belong to no document."""
    present: dict[str, _Present] = {}
    orphans: list[str] = []
    for page in iter_rows(collection, ["metadatas"]):
        for cid, meta in zip(page["ids"], page["metadatas"], strict=True):
            meta = meta or {}
            if "doc_id" not in meta:
                orphans.append(cid)
                continue
            p = present.setdefault(str(meta["doc_id"]), _Present())
            p.ids.append(cid)
            p.versions.add((str(meta.get("doc_hash", "")), int(meta.get("n_chunks", -1))))
    return present, orphans


def _groups(docs: list[Document]) -> Iterable[list[Document]]:
    group: list[Document] = []
    size = 0
    for doc in docs:
        group.append(doc)
        size += len(doc.text) + len(doc.title)
        if size >= BATCH_CHARS:
            yield group
            group, size = [], 0
    if group:
        yield group


def _delete(collection: Collection, ids: list[str]) -> None:
    for start in range(0, len(ids), PAGE):
        collection.delete(ids=ids[start : start + PAGE])


def _sync(
    collection: Collection,
    docs: dict[str, Document],
    embedder: Embedder,
    config: Config,
    report: BuildReport,
    progress: bool,
    on_progress: Callable[[int, int], None] | None = None,
) -> bool:
    """Make the collection hold exactly `docs`; True when anything changed."""
    from tqdm.auto import tqdm

    present, orphans = _read_present(collection)
    todo: list[Document] = []
    for doc in docs.values():
        p = present.get(doc.id)
        if p is None:
            report.added += 1
            todo.append(doc)
        elif p.complete(doc):
            report.unchanged += 1
        else:
            report.updated += 1
            todo.append(doc)
    gone = [doc_id for doc_id in present if doc_id not in docs]
    report.removed = len(gone)
    stale = orphans + [cid for doc_id in gone for cid in present[doc_id].ids]
    changed = bool(todo or stale)
    # Deleting removed documents first is safe: they are not in the corpus any more.
    _delete(collection, stale)
    if not todo:
        return changed

    splitter = make_splitter(config.chunking, embedder.tokenize)
    remaining = sum(len(d.text) + len(d.title) for d in todo)
    bar = tqdm(
        total=None,
        unit="chunk",
        desc=f"embedding {collection.name}",
        disable=not progress,
        dynamic_ncols=True,
    )
    done_chars = 0
    embedded = 0  # counted here: a disabled tqdm bar counts nothing

    def tick(n: int) -> None:
        nonlocal embedded
        bar.update(n)
        embedded += n
        if on_progress is not None:
            on_progress(embedded, max(int(bar.total or 0), embedded))

    try:
        for group in _groups(todo):
            chunks = chunk_documents(group, splitter, config.chunking, embedder.tokenize)
            # A running estimate of the total from characters per chunk so far, so the bar shows an ETA.
            done_chars += sum(len(d.text) + len(d.title) for d in group)
            so_far = embedded + len(chunks)
            bar.total = so_far + int((remaining - done_chars) * so_far / max(done_chars, 1))
            bar.refresh()
            vectors = embedder.embed_documents([c.embed_text for c in chunks], progress=tick)
            for start in range(0, len(chunks), PAGE):
                part = chunks[start : start + PAGE]
                collection.upsert(
                    ids=[c.id for c in part],
                    embeddings=vectors[start : start + PAGE],
                    documents=[c.text for c in part],
                    metadatas=[c.metadata for c in part],
                )
            report.chunks_embedded += len(chunks)
            # Only now drop chunks of the old version that the new one does not overwrite.
            new_ids = {c.id for c in chunks}
            old = [cid for d in group if d.id in present for cid in present[d.id].ids if cid not in new_ids]
            _delete(collection, old)
    finally:
        bar.close()
    return changed


def pending_collections(name: str, config: Config) -> list[str]:
    """Collections of builds of `name` that have not (yet) succeeded: to delete with the index."""
    path = mf.index_dir(name, config) / PENDING
    if not path.is_file():
        return []
    import json

    try:
        return [str(c) for c in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError):
        return []


def build_index(
    name: str,
    config: Config,
    *,
    documents: Iterable[Document] | None = None,
    corpora: Sequence[str] | None = None,
    rebuild: bool = False,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Create or update index `name` so that it holds exactly `documents` (default: its corpora's).

    `on_progress(chunks embedded, estimated total)` is called as batches are embedded (e.g. for a UI)."""
    check_index_name(name)
    config = config.for_domain(name)  # a domain's index is embedded with the domain's own model, if it names one
    start = time.perf_counter()
    corpus_names, docs = _resolve(name, config, documents, corpora)
    empty = [d for d in docs if not docs[d].text.strip()]
    for doc_id in empty:
        del docs[doc_id]
    if empty:
        log.warning("index %s: skipped %d documents with no text", name, len(empty))
    if not docs:
        raise InputError(f"index '{name}': all {len(empty)} documents are empty, nothing to index")

    embedder = load_embedder(config.embedding)
    with contextlib.ExitStack() as held:
        try:  # one build of an index at a time; a second one is refused at once
            held.enter_context(exclusive_lock(mf.index_dir(name, config) / ".lock", wait=False))
        except BlockingIOError:
            raise InputError(f"index '{name}' is being built by another process: wait for it to finish") from None
        return _build_locked(
            name, config, docs, corpus_names, embedder, rebuild, progress, start, len(empty), on_progress
        )


def _build_locked(
    name: str,
    config: Config,
    docs: dict[str, Document],
    corpus_names: list[str],
    embedder: Embedder,
    rebuild: bool,
    progress: bool,
    start: float,
    skipped_empty: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    fp = mf.fingerprint(embedder.name, config.chunking)
    base = f"{name}-{fp}"
    label = store_label(name, config)
    old = mf.find_manifest(name, config)
    live = old.collection if old and same_store(old.store, name, config) else None
    if rebuild:
        target = base if live != base else f"{base}-rebuild"
    elif live and old and old.fingerprint == fp:
        target = live
    else:
        target = base
    folder = mf.index_dir(name, config)

    client = open_client(name, config)
    try:
        pending = pending_collections(name, config)
        if target != live and target not in pending:
            mf.write_json_atomic(folder / PENDING, [*pending, target])
        collection = create_collection(client, target, fresh=rebuild)
        report = BuildReport(
            name=name,
            rebuilt=live is not None and target != live,
            collection=target,
            skipped_empty=skipped_empty,
        )
        changed = _sync(collection, docs, embedder, config, report, progress, on_progress)

        chash = mf.corpus_hash((d.id, d.content_hash) for d in docs.values())
        bm25_dir = folder / "bm25" / target
        state = _read_json(bm25_dir / STATE)
        if changed or not is_complete(bm25_dir) or state.get("corpus_hash") != chash:
            facets = build_bm25(
                collection, bm25_dir, {"corpus_hash": chash, "collection": target, "built_at": mf.now()}
            )
        else:
            facets = facets_of(_read_json(bm25_dir / COLUMNS))

        report.n_documents = len(docs)
        report.n_chunks = collection.count()
        report.seconds = round(time.perf_counter() - start, 3)
        report.chunks_per_second = (
            round(report.chunks_embedded / report.seconds, 2) if report.seconds else 0.0
        )
        stamp = mf.now()
        mf.write_manifest(
            name,
            config,
            mf.IndexManifest(
                format=mf.FORMAT,
                name=name,
                corpora=tuple(corpus_names),
                embedding=mf.EmbeddingInfo(
                    config=dataclasses.asdict(config.embedding), model=embedder.name, dim=embedder.dim
                ),
                chunking=dataclasses.asdict(config.chunking),
                fingerprint=fp,
                store=label,
                collection=target,
                counts={"documents": report.n_documents, "chunks": report.n_chunks},
                corpus_hash=chash,
                facets=facets,
                created_at=old.created_at if old and old.created_at is not None else stamp,
                updated_at=stamp,
                last_build=report.to_dict(),
                assistant_version=mf.assistant_version(),
            ),
        )
        # The manifest now names the new collection: only now is anything old deleted.
        for stale in {*pending, *([live] if live else [])} - {target}:
            delete_collection(client, stale)
        (folder / PENDING).unlink(missing_ok=True)
        _remove_other_bm25(folder / "bm25", keep=target)
    finally:
        close_client(client)
    return report


def _read_json(path: Any) -> dict[str, Any]:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remove_other_bm25(root: Any, keep: str) -> None:
    import shutil

    if root.is_dir():
        for child in root.iterdir():
            if child.name != keep:
                shutil.rmtree(child, ignore_errors=True)
