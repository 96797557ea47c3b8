"""Prepared corpora: the files and manifest written, atomic replacement, duplicates, staleness, load errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from assistant.config import Config
from assistant.corpus import (
    LOADERS,
    LoadResult,
    Recipe,
    corpus_manifest,
    is_prepared,
    is_stale,
    load_documents,
    load_qa,
    prepare,
    register_loader,
)
from assistant.errors import InputError, NotFoundError
from assistant.types import Document, QAItem
from tests.corpus.conftest import write_recipe


@pytest.fixture
def notes(config: Config, tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha\n\nFirst note.", encoding="utf-8")
    (folder / "b.txt").write_text("Second note.", encoding="utf-8")
    write_recipe(config, "notes", "files", [folder])
    return folder


def test_prepare_writes_the_files_and_a_manifest(config: Config, notes: Path) -> None:
    assert not is_prepared("notes", config)
    report = prepare("notes", config, progress=False)
    folder = config.corpora_dir / "notes"
    assert report.path == folder
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock",  # one preparer at a time (accelerate launch: every process prepares what is missing)
        "documents.jsonl",
        "manifest.json",
        "qa_test.jsonl",
        "qa_train.jsonl",
        "recipe.yaml",
    ]
    assert not list(config.corpora_dir.glob(".prepare*"))  # the temporary folder is gone
    manifest = corpus_manifest("notes", config)
    assert manifest["counts"] == {"documents": 2, "qa_train": 0, "qa_test": 0}
    assert manifest["recipe"]["loader"] == "files" and manifest["domain"] == "medical"
    assert set(manifest["fingerprints"]) == {str(notes / "a.md"), str(notes / "b.txt")}
    assert manifest["content_hash"] == report.content_hash and manifest["source_hash"] == report.source_hash
    assert manifest["prepared_at"] and manifest["seconds"] >= 0
    assert [d.id for d in load_documents("notes", config)] == ["notes:a", "notes:b"]
    assert "2 documents" in report.summary()
    # a second run over the same sources gives the same ids and hashes
    again = prepare("notes", config, progress=False)
    assert (again.content_hash, again.source_hash) == (report.content_hash, report.source_hash)


def test_a_failing_prepare_leaves_the_previous_corpus_intact(config: Config, notes: Path) -> None:
    prepare("notes", config, progress=False)
    folder = config.corpora_dir / "notes"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    @register_loader("broken")
    def load_broken(sources: list[Path], recipe: Recipe, progress: bool) -> LoadResult:
        def documents():  # fails half way through writing
            yield Document("notes:new", "notes", "New", "new text")
            raise RuntimeError("disk on fire")

        return LoadResult(documents=documents())

    try:
        write_recipe(config, "notes", "broken", [notes])
        with pytest.raises(RuntimeError, match="disk on fire"):
            prepare("notes", config, progress=False)
    finally:
        LOADERS.pop("broken")
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "recipe.yaml"} == {
        k: v for k, v in before.items() if k != "recipe.yaml"
    }
    assert not list(config.corpora_dir.glob(".prepare*"))
    assert is_prepared("notes", config)
    assert [d.id for d in load_documents("notes", config)] == ["notes:a", "notes:b"]


def test_duplicate_ids_are_counted_and_the_first_kept(config: Config, tmp_path: Path) -> None:
    @register_loader("dupes")
    def load_dupes(sources: list[Path], recipe: Recipe, progress: bool) -> LoadResult:
        docs = [Document("d:1", "d", "One", "first"), Document("d:1", "d", "One", "second"), Document("d:2", "d", "Two", "x")]
        qa = [QAItem("q:1", "d", "Q?", "A", "train", doc_ids=("d:1",)), QAItem("q:1", "d", "Q?", "B", "test")]
        return LoadResult(documents=docs, qa=qa)

    try:
        write_recipe(config, "d", "dupes", [tmp_path])
        report = prepare("d", config, progress=False)
    finally:
        LOADERS.pop("dupes")
    assert report.skipped == {"duplicate_id": 1, "duplicate_qa_id": 1}
    assert (report.n_documents, report.n_train, report.n_test) == (2, 1, 0)
    assert [d.text for d in load_documents("d", config)] == ["first", "x"]
    assert any("duplicate_id" in w for w in report.warnings)


def test_staleness_follows_source_content_not_timestamps(config: Config, notes: Path) -> None:
    assert is_stale("notes", config)  # not prepared yet
    prepare("notes", config, progress=False)
    assert not is_stale("notes", config)
    a = notes / "a.md"
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 10**9))  # touched, same content
    assert not is_stale("notes", config)
    a.write_text("# Alpha\n\nFirst note, edited.", encoding="utf-8")
    assert is_stale("notes", config)
    prepare("notes", config, progress=False)
    (notes / "c.md").write_text("New file")
    assert is_stale("notes", config)
    (notes / "c.md").unlink()
    assert not is_stale("notes", config)
    write_recipe(config, "notes", "files", [notes], pdf_mode="plain")  # the recipe's options changed
    assert is_stale("notes", config)


def test_a_half_written_corpus_is_not_prepared(config: Config, notes: Path) -> None:
    prepare("notes", config, progress=False)
    with (config.corpora_dir / "notes" / "documents.jsonl").open("a") as f:
        f.write(json.dumps(Document("notes:x", "notes", "x", "x").to_dict()) + "\n")
    assert not is_prepared("notes", config)


def test_loading_an_unprepared_corpus_says_how_to_prepare_it(config: Config, notes: Path) -> None:
    message = "corpus 'notes' is not prepared: run `assistant corpus prepare notes`"
    with pytest.raises(InputError, match=message):
        load_documents("notes", config)
    with pytest.raises(InputError, match=message):
        load_qa("notes", config)
    with pytest.raises(InputError, match=message):
        corpus_manifest("notes", config)
    prepare("notes", config, progress=False)
    with pytest.raises(InputError, match="split must be 'train' or 'test', got 'dev'"):
        load_qa("notes", config, split="dev")
    assert load_qa("notes", config, split="test") == []


def test_prepare_unknown_corpus_or_domain(config: Config, notes: Path) -> None:
    with pytest.raises(NotFoundError, match=r"unknown corpus 'nope' \(known: .*notes"):
        prepare("nope", config, progress=False)
    write_recipe(config, "legal", "files", [notes], domain="legal")
    with pytest.raises(NotFoundError, match=r"unknown domain 'legal' \(known: finance, medical\)"):
        prepare("legal", config, progress=False)


def test_concurrent_prepares_of_one_corpus_both_succeed(config: Config, notes: Path) -> None:
    """Two processes preparing the same corpus at once (each rank of `accelerate launch ... train` does):
    the second waits for the first, neither removes the other's scratch files."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=prepare, args=("notes", config), kwargs={"progress": False}) for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0, 0]
    assert [d.id for d in load_documents("notes", config)] == ["notes:a", "notes:b"]
