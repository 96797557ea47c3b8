"""Index builds with the hash embedder and a real on-disk Chroma: files, incremental sync, resume, config changes."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import assistant.index.build as build_mod
from assistant.config import ChunkingConfig, Config, EmbeddingConfig
from assistant.embeddings import load_embedder
from assistant.errors import InputError, NotFoundError
from assistant.index import (
    IndexManifest,
    build_index,
    index_fingerprint,
    index_status,
    list_indexes,
    load_manifest,
    read_manifest,
    remove_index,
)
from assistant.index.store import get_collection, open_client
from assistant.retrieval import Retriever
from assistant.types import Document
from tests.index.docs import all_docs, long_text, medical_docs


def rows(name: str, config: Config) -> dict[str, dict[str, Any]]:
    """chunk id -> metadata of everything in the index's live collection."""
    client = open_client(name, config)
    try:
        col = get_collection(client, read_manifest(name, config)["collection"])
        assert col is not None
        got = col.get(include=["metadatas"])
        return dict(zip(got["ids"], got["metadatas"], strict=True))
    finally:
        client.close()


def collections(name: str, config: Config) -> list[str]:
    client = open_client(name, config)
    try:
        return sorted(c.name for c in client.list_collections())
    finally:
        client.close()


class FailingEmbedder:
    """Wraps an embedder and raises on the (n+1)-th embed_documents call: a build killed mid-way."""

    def __init__(self, inner: Any, fail_after: int) -> None:
        self.inner, self.fail_after, self.calls = inner, fail_after, 0
        self.name, self.dim = inner.name, inner.dim

    def tokenize(self, text: str) -> list[Any]:
        return self.inner.tokenize(text)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def embed_documents(self, texts: Any, *, progress: Any = None) -> np.ndarray:
        if self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        return self.inner.embed_documents(texts, progress=progress)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """One document per batch, so that an interruption can fall between batches."""
    monkeypatch.setattr(build_mod, "BATCH_CHARS", 1)


def test_build_writes_manifest_collection_and_bm25(config: Config, home: Path) -> None:
    docs = all_docs()
    report = build_index("t", config, documents=docs, corpora=["med", "filings"], progress=False)

    assert (report.added, report.updated, report.removed, report.unchanged) == (len(docs), 0, 0, 0)
    assert report.n_documents == len(docs) and report.n_chunks == report.chunks_embedded == len(docs)
    assert not report.rebuilt
    folder = home / "indexes" / "t"
    assert {p.name for p in folder.iterdir()} == {"manifest.json", "chroma", "bm25", ".lock"}
    text = (folder / "manifest.json").read_text()
    m = json.loads(text)
    assert m == read_manifest("t", config)
    assert list(m) == [
        "format", "name", "corpora", "embedding", "chunking", "fingerprint", "store", "collection", "counts",
        "corpus_hash", "facets", "created_at", "updated_at", "last_build", "assistant_version",
    ]
    typed = load_manifest("t", config)  # the typed reader writes back exactly the JSON on disk
    assert text == json.dumps(typed.to_dict(), indent=2, ensure_ascii=False) + "\n"
    assert IndexManifest.from_dict({**m, "later": 1}).to_dict() == {**m, "later": 1}  # unknown keys kept
    assert typed.collection == m["collection"] and typed.embedding.model == "hash:384" and typed.n_chunks == len(docs)
    assert index_fingerprint("t", config) == {
        "name": "t", "collection": m["collection"], "counts": m["counts"], "embedding": "hash:384",
        "updated_at": m["updated_at"],
    }
    assert m["name"] == "t" and m["corpora"] == ["med", "filings"]
    assert m["embedding"]["model"] == "hash:384" and m["embedding"]["dim"] == 384
    assert m["embedding"]["config"]["model"] == "hash:384"
    assert m["chunking"] == {"chunk_size": 256, "chunk_overlap": 32, "context": True, "whole_tables": True,
                             "max_table_tokens": 1024}
    assert m["collection"] == f"t-{m['fingerprint']}" and len(m["fingerprint"]) == 8
    assert m["store"] == str(folder / "chroma")
    assert m["counts"] == {"documents": len(docs), "chunks": len(docs)}
    assert len(m["corpus_hash"]) == 16 and m["last_build"]["chunks_embedded"] == len(docs)
    assert m["created_at"] and m["updated_at"] and m["assistant_version"]
    assert sorted(p.name for p in (folder / "bm25").iterdir()) == [m["collection"]]
    bm25_files = {p.name for p in (folder / "bm25" / m["collection"]).iterdir()}
    assert {"chunk_ids.json", "columns.json", "codes.npz", "state.json", "vocab.index.json"} <= bm25_files

    stored = rows("t", config)
    assert set(stored) == {f"{d.id}#0" for d in docs}
    meta = stored["fin:BOEING:1#0"]
    boeing = next(d for d in docs if d.id == "fin:BOEING:1")
    assert meta == {
        "doc_id": "fin:BOEING:1",
        "doc_hash": boeing.content_hash,
        "chunk_index": 0,
        "n_chunks": 1,
        "corpus": "filings",
        "title": boeing.title,
        "locator": boeing.locator,
        "company": "BOEING",
        "document": "BOEING_10K_2022",
        "file": "BOEING_10K_2022.pdf",
        "page": 1,
        "header": boeing.title,  # what it is searched by, before its text (this document has no context line)
    }

    status = index_status("t", config)
    assert (status.n_documents, status.n_chunks, status.collection) == (len(docs), len(docs), m["collection"])
    assert status.facets == {
        "company": ["ACME", "BOEING"],
        "corpus": ["filings", "med"],
        "document": ["ACME_10K_2022", "BOEING_10K_2022"],
    }
    assert [s.name for s in list_indexes(config)] == ["t"]


def test_second_build_without_changes_embeds_nothing(config: Config) -> None:
    build_index("t", config, documents=all_docs(), progress=False)
    bm25_state = (config.indexes_dir / "t" / "bm25").glob("*/state.json")
    before = [p.stat().st_mtime_ns for p in bm25_state]
    report = build_index("t", config, documents=all_docs(), progress=False)
    assert report.chunks_embedded == 0 and report.unchanged == len(all_docs())
    assert (report.added, report.updated, report.removed) == (0, 0, 0)
    assert [p.stat().st_mtime_ns for p in (config.indexes_dir / "t" / "bm25").glob("*/state.json")] == before


def test_changed_removed_and_added_documents(config: Config) -> None:
    small = config.replace(chunking=ChunkingConfig(chunk_size=48, chunk_overlap=8))
    docs = [*medical_docs(), Document(id="long", corpus="med", title="Long", text=long_text("glacier"))]
    first = build_index("t", small, documents=docs, progress=False)
    n_long = sum(1 for cid in rows("t", small) if cid.startswith("long#"))
    assert n_long > 3 and first.n_chunks == len(docs) - 1 + n_long

    changed = [
        replace(d, text="Statins were replaced by PCSK9 inhibitors.") if d.id == "med:statin" else d
        for d in docs
    ]
    changed = [replace(d, text="Now a short glacier text.") if d.id == "long" else d for d in changed]
    changed = [d for d in changed if d.id != "med:malaria"] + [
        Document(id="new", corpus="med", title="New", text="Zebrafish fins regenerate.")
    ]
    report = build_index("t", small, documents=changed, progress=False)

    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 2, 1, 2)
    assert report.chunks_embedded == 3  # statin, long (now one chunk), new
    stored = rows("t", small)
    assert set(stored) == {f"{d.id}#0" for d in changed}  # the long doc's extra chunks and malaria are gone
    assert report.n_chunks == len(stored) == len(changed)
    statin = next(d for d in changed if d.id == "med:statin")
    assert stored["med:statin#0"]["doc_hash"] == statin.content_hash
    with Retriever.open("t", small) as r:
        assert r.retrieve("PCSK9 inhibitors", mode="bm25")[0].doc_id == "med:statin"
        assert r.retrieve("zebrafish fins", mode="bm25")[0].doc_id == "new"
        assert not r.retrieve("artemisinin falciparum", mode="bm25")


def test_chunks_are_sized_with_the_embedders_tokenizer_and_carry_the_title(config: Config) -> None:
    small = config.replace(chunking=ChunkingConfig(chunk_size=40, chunk_overlap=5))
    doc = Document(id="d", corpus="c", title="Glacier survey", text=long_text("ice", 30))
    build_index("t", small, documents=[doc], progress=False)
    stored = rows("t", small)
    n = len(stored)
    assert set(stored) == {f"d#{i}" for i in range(n)} and n > 3
    assert all(m["n_chunks"] == n for m in stored.values())
    assert sorted(m["chunk_index"] for m in stored.values()) == list(range(n))
    tokenizer = load_embedder(small.embedding).tokenize
    with Retriever.open("t", small) as r:
        # the title is embedded with every chunk: a title-only query finds chunks densely
        hits = r.retrieve("glacier survey", mode="dense", top_k=n)
    assert len(hits) == n and all(h.similarity and h.similarity > 0 for h in hits)
    for hit in hits:
        assert not hit.snippet.startswith("Glacier survey")  # snippets are the chunk alone
        assert len(tokenizer("Glacier survey")) + len(tokenizer(hit.snippet)) <= 40


def test_interrupted_first_build_resumes_without_duplicates(
    config: Config, monkeypatch: pytest.MonkeyPatch, small_batches: None
) -> None:
    docs = all_docs()
    failing = FailingEmbedder(load_embedder(config.embedding), fail_after=3)
    monkeypatch.setattr(build_mod, "load_embedder", lambda cfg: failing)
    with pytest.raises(KeyboardInterrupt):
        build_index("t", config, documents=docs, progress=False)
    with pytest.raises(NotFoundError):  # no manifest: the index does not exist yet
        index_status("t", config)

    monkeypatch.setattr(build_mod, "load_embedder", load_embedder)
    report = build_index("t", config, documents=docs, progress=False)
    assert report.unchanged == 3 and report.added == len(docs) - 3
    assert report.chunks_embedded == len(docs) - 3
    assert report.n_chunks == len(docs) and set(rows("t", config)) == {f"{d.id}#0" for d in docs}
    assert collections("t", config) == [read_manifest("t", config)["collection"]]


def test_interrupted_update_keeps_the_index_queryable(
    config: Config, monkeypatch: pytest.MonkeyPatch, small_batches: None
) -> None:
    docs = all_docs()
    build_index("t", config, documents=docs, progress=False)
    before = read_manifest("t", config)
    changed = [replace(d, text=d.text + " Updated wording about kangaroos.") for d in docs]
    failing = FailingEmbedder(load_embedder(config.embedding), fail_after=2)
    monkeypatch.setattr(build_mod, "load_embedder", lambda cfg: failing)
    with pytest.raises(KeyboardInterrupt):
        build_index("t", config, documents=changed, progress=False)
    assert read_manifest("t", config) == before
    assert len(rows("t", config)) == len(docs)  # upsert-then-delete: every document still has its chunks
    with Retriever.open("t", config) as r:
        assert r.retrieve("artemisinin malaria", mode="hybrid")[0].doc_id == "med:malaria"

    monkeypatch.setattr(build_mod, "load_embedder", load_embedder)
    report = build_index("t", config, documents=changed, progress=False)
    assert (report.unchanged, report.updated, report.chunks_embedded) == (2, len(docs) - 2, len(docs) - 2)
    assert set(rows("t", config)) == {f"{d.id}#0" for d in docs}
    with Retriever.open("t", config) as r:
        assert len(r.retrieve("kangaroos", mode="bm25", top_k=20)) == len(docs)  # BM25 follows the sync


def test_config_change_builds_a_new_collection_and_a_failed_one_keeps_the_old(
    config: Config, monkeypatch: pytest.MonkeyPatch, small_batches: None
) -> None:
    docs = all_docs()
    build_index("t", config, documents=docs, progress=False)
    old = read_manifest("t", config)["collection"]

    other = config.replace(chunking=ChunkingConfig(chunk_size=128, chunk_overlap=16))
    failing = FailingEmbedder(load_embedder(other.embedding), fail_after=2)
    monkeypatch.setattr(build_mod, "load_embedder", lambda cfg: failing)
    with pytest.raises(KeyboardInterrupt):
        build_index("t", other, documents=docs, progress=False)
    assert read_manifest("t", config)["collection"] == old
    assert len(collections("t", config)) == 2  # the partial new one sits beside the live one
    with Retriever.open("t", config) as r:
        assert r.retrieve("statins cholesterol")[0].doc_id == "med:statin"

    monkeypatch.setattr(build_mod, "load_embedder", load_embedder)
    report = build_index("t", other, documents=docs, progress=False)
    new = read_manifest("t", other)["collection"]
    assert new != old and report.rebuilt
    assert report.chunks_embedded == len(docs) - 2  # resumed the partial new collection
    assert collections("t", other) == [new]  # the old one is deleted only after the switch
    assert sorted(p.name for p in (other.indexes_dir / "t" / "bm25").iterdir()) == [new]
    assert read_manifest("t", other)["chunking"]["chunk_size"] == 128


def test_new_embedding_model_builds_a_new_collection(config: Config) -> None:
    build_index("t", config, documents=all_docs(), progress=False)
    old = read_manifest("t", config)["collection"]
    other = config.replace(embedding=EmbeddingConfig(model="hash:256", quantize=False))
    report = build_index("t", other, documents=all_docs(), progress=False)
    m = read_manifest("t", other)
    assert m["collection"] != old and report.chunks_embedded == len(all_docs())
    assert m["embedding"]["dim"] == 256 and collections("t", other) == [m["collection"]]


def test_rebuild_forces_a_fresh_collection(config: Config) -> None:
    build_index("t", config, documents=all_docs(), progress=False)
    first = read_manifest("t", config)["collection"]
    report = build_index("t", config, documents=all_docs(), rebuild=True, progress=False)
    second = read_manifest("t", config)["collection"]
    assert report.rebuilt and report.chunks_embedded == len(all_docs()) and second != first
    assert collections("t", config) == [second]
    build_index("t", config, documents=all_docs(), rebuild=True, progress=False)
    assert collections("t", config) == [first]  # alternates between two names
    assert build_index("t", config, documents=all_docs(), progress=False).chunks_embedded == 0


def test_bad_input(config: Config) -> None:
    with pytest.raises(InputError, match="no documents"):
        build_index("t", config, documents=[], corpora=["med"], progress=False)
    with pytest.raises(InputError, match="empty"):
        build_index(
            "t", config, documents=[Document(id="a", corpus="c", title="A", text="  ")], progress=False
        )
    with pytest.raises(InputError, match="index name"):
        build_index("bad name/", config, documents=all_docs(), progress=False)
    twice = [
        Document(id="a", corpus="c", title="A", text="one"),
        Document(id="a", corpus="c", title="A", text="two"),
    ]
    with pytest.raises(InputError, match="twice"):
        build_index("t", config, documents=twice, progress=False)
    assert not (config.indexes_dir / "t" / "manifest.json").exists()


def test_empty_documents_are_skipped_and_counted(config: Config) -> None:
    docs = [*all_docs(), Document(id="blank", corpus="c", title="Blank", text="")]
    report = build_index("t", config, documents=docs, progress=False)
    assert report.skipped_empty == 1 and report.n_documents == len(docs) - 1


def test_remove_and_unknown_index(config: Config) -> None:
    build_index("a", config, documents=medical_docs(), progress=False)
    build_index("b", config, documents=medical_docs(), progress=False)
    assert [s.name for s in list_indexes(config)] == ["a", "b"]
    with pytest.raises(NotFoundError, match=r"unknown index 'zzz' \(known: a, b\)"):
        index_status("zzz", config)
    with pytest.raises(NotFoundError, match=r"known: a, b"):
        remove_index("zzz", config)
    with pytest.raises(NotFoundError, match=r"known: a, b"):
        Retriever.open("zzz", config)
    remove_index("a", config)
    assert not (config.indexes_dir / "a").exists()
    assert [s.name for s in list_indexes(config)] == ["b"]
    # a fresh build under the removed name works (no stale Chroma state survives)
    assert build_index("a", config, documents=medical_docs(), progress=False).chunks_embedded == len(
        medical_docs()
    )


def test_a_build_in_progress_locks_the_index(config: Config) -> None:
    from assistant.atomic import exclusive_lock
    from assistant.index.manifest import index_dir

    with exclusive_lock(index_dir("t", config) / ".lock"), pytest.raises(InputError, match="being built by another process"):
        build_index("t", config, documents=all_docs(), progress=False)
    assert build_index("t", config, documents=all_docs(), progress=False).n_chunks == len(all_docs())


def test_a_moved_data_home_keeps_its_index(config: Config, tmp_path: Path) -> None:
    build_index("t", config, documents=all_docs(), progress=False)
    moved = config.replace(home=tmp_path / "moved")
    shutil.copytree(config.home, moved.home)
    report = build_index("t", moved, documents=all_docs(), progress=False)
    assert report.chunks_embedded == 0 and not report.rebuilt
    assert read_manifest("t", moved)["store"] == str(moved.home / "indexes" / "t" / "chroma")
    with Retriever.open("t", moved) as r:
        assert r.retrieve("artemisinin malaria")[0].doc_id == "med:malaria"


def test_a_domain_with_its_own_embedder_is_built_queried_and_routed_with_it(config: Config) -> None:
    from assistant.config import DomainConfig
    from assistant.routing import clear_cache, signals_for
    from tests.index.docs import finance_docs

    domains = {"medical": DomainConfig("medical", embedding="hash:256"), "finance": DomainConfig("finance")}
    config = config.replace(domains=domains)
    build_index("medical", config, documents=medical_docs(), progress=False)
    build_index("finance", config, documents=finance_docs(), progress=False)
    assert read_manifest("medical", config)["embedding"]["dim"] == 256  # the domain's own model
    assert read_manifest("finance", config)["embedding"]["dim"] == 384  # embedding.model
    assert config.for_domain("medical").embedding.model == "hash:256" and config.for_domain("finance") is config
    medical, finance = Retriever.open("medical", config), Retriever.open("finance", config)
    try:
        assert medical.embedder.dim == 256 and medical.retrieve("statins cholesterol mortality")[0].doc_id == "med:statin"
        assert medical.nearest("statins lower cholesterol") > medical.nearest("quarterly dividend repurchased stock")
        clear_cache()
        # a finance question asked in medical: finance's index is searched in its own vector space
        _, sims = signals_for("declared a quarterly dividend and repurchased common stock", "medical", medical, config)
        assert set(sims) == {"medical", "finance"} and sims["finance"] > sims["medical"]
    finally:
        medical.close()
        finance.close()
        clear_cache()
