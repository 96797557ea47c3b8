"""The files loader: PDF pages, text, markdown and HTML; bad files skipped in a folder, refused on their own."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Config
from assistant.corpus import load_documents, prepare
from assistant.corpus.loaders import pdf
from assistant.corpus.loaders.files import clean_page, filing_metadata
from assistant.corpus.loaders.pdf import extract_range
from assistant.errors import ConfigError, InputError
from tests.corpus.conftest import encrypt_pdf, make_pdf, write_recipe


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A user's folder with good files of every kind and one bad file of every kind."""
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "ACME_2022_10K.pdf").write_bytes(make_pdf(["Total revenues $66,608", "", "Risk factors page"]))
    (root / "owner_only.pdf").write_bytes(encrypt_pdf(make_pdf(["Readable without a password"]), user_password=""))
    (root / "locked.pdf").write_bytes(encrypt_pdf(make_pdf(["Secret"]), user_password="secret"))
    (root / "corrupt.pdf").write_bytes(bytes(range(256)) * 8)
    (root / "notes.md").write_text("Intro line\n\n# Heart health\n\nEat well.\n", encoding="utf-8")
    (root / "sub" / "plain.txt").write_bytes("\ufeffPlain text with a BOM.".encode())
    (root / "page.html").write_text(
        "<html><head><title>Clinic  page</title><style>p{color:red}</style></head>"
        "<body><script>var x=1;</script><h1>Welcome</h1><p>Opening hours: 9-5.</p></body></html>",
        encoding="utf-8",
    )
    (root / "latin.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (root / "empty.txt").write_bytes(b"")
    (root / "image.png").write_bytes(b"\x89PNG")
    (root / ".hidden.txt").write_text("ignored")
    return root


def test_folder_import_reads_good_files_and_counts_bad_ones(config: Config, folder: Path) -> None:
    write_recipe(config, "mine", "files", [folder], domain="finance")
    report = prepare("mine", config, progress=False)
    assert report.skipped == {
        "corrupt_pdf": 1,
        "empty_file": 1,
        "empty_page": 1,
        "encrypted_pdf": 1,
        "not_utf8": 1,
        "unsupported_type": 1,
    }
    for name in ("locked.pdf", "corrupt.pdf", "latin.txt", "empty.txt", "image.png"):
        assert any(name in w for w in report.warnings), name
    assert (report.n_train, report.n_test) == (0, 0)
    docs = {d.id: d for d in load_documents("mine", config)}
    assert set(docs) == {
        "mine:ACME_2022_10K:p1",
        "mine:ACME_2022_10K:p3",
        "mine:owner_only:p1",
        "mine:notes",
        "mine:sub/plain",
        "mine:page",
    }
    page = docs["mine:ACME_2022_10K:p1"]
    assert page.text == "Total revenues $66,608"
    assert page.title == "ACME 2022 10K — page 1" and page.locator == "ACME_2022_10K.pdf, page 1"
    assert page.metadata == {
        "document": "ACME_2022_10K",
        "file": "ACME_2022_10K.pdf",
        "company": "ACME",
        "year": 2022,
        "form": "10K",
        "page": 1,
        "pages": 3,
        "context": "ACME, Form 10-K annual report, fiscal 2022",  # corpus.loaders.page_context
    }
    assert docs["mine:notes"].title == "Heart health"
    assert docs["mine:sub/plain"].text == "Plain text with a BOM." and docs["mine:sub/plain"].title == "plain"
    html = docs["mine:page"]
    assert html.title == "Clinic page" and html.text == "Welcome\nOpening hours: 9-5."


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("locked.pdf", "protected by a password"),
        ("corrupt.pdf", "not a readable PDF"),
        ("latin.txt", "not UTF-8 text"),
        ("empty.txt", "the file is empty"),
        ("image.png", "unsupported file type '.png'"),
    ],
)
def test_a_bad_single_file_raises_naming_it(config: Config, folder: Path, name: str, problem: str) -> None:
    write_recipe(config, "one", "files", [folder / name])
    with pytest.raises(InputError) as err:
        prepare("one", config, progress=False)
    message = str(err.value)
    assert name in message and problem in message and "\n" not in message


def test_a_good_single_file_and_the_from_override(config: Config, folder: Path) -> None:
    write_recipe(config, "one", "files", [folder / "notes.md"])
    prepare("one", config, progress=False)
    assert [d.id for d in load_documents("one", config)] == ["one:notes"]
    report = prepare("one", config, source=folder / "ACME_2022_10K.pdf", progress=False)
    assert report.n_documents == 2 and report.skipped == {"empty_page": 1}


def test_a_folder_without_usable_files_is_an_error(config: Config, tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "a.png").write_bytes(b"x")
    write_recipe(config, "none", "files", [empty])
    with pytest.raises(InputError, match=r"corpus 'none': no usable documents in .*nothing \(skipped: 1 unsupported_type\)"):
        prepare("none", config, progress=False)


def test_filing_names_and_page_cleaning() -> None:
    assert filing_metadata("ULTABEAUTY_2023Q4_EARNINGS") == {
        "company": "ULTABEAUTY",
        "year": 2023,
        "form": "EARNINGS",
        "quarter": "Q4",
    }
    assert filing_metadata("JOHNSON_JOHNSON_2022_10K")["company"] == "JOHNSON_JOHNSON"
    assert filing_metadata("3M_2022_10K")["company"] == "3M"
    assert filing_metadata("notes") == {}
    raw = "      Title\n\n\n\n   Cash and cash equivalents          $      737,877     $     431,560   \n"
    assert clean_page(raw) == "Title\n\nCash and cash equivalents  $737,877  $431,560"
    justified = "Our  review  of  the  trend  rate  considers  factors"
    assert clean_page(justified) == "Our review of the trend rate considers factors"


def test_progress_bars_and_options(config: Config, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_recipe(config, "mine", "files", [folder], pdf_mode="plain")
    assert prepare("mine", config, progress=True).n_documents == 6
    assert "mine" in capsys.readouterr().err  # tqdm writes to stderr
    write_recipe(config, "mine", "files", [folder], pdf_mode="ocr")
    with pytest.raises(ConfigError, match="pdf_mode must be 'layout' or 'plain', got 'ocr'"):
        prepare("mine", config, progress=False)


# Module level, so that a pool process can unpickle them; there they call the real task function.
def _only_in_a_worker(path: str, start: int, stop: int, mode: str) -> list[str | None]:
    assert multiprocessing.parent_process() is not None, "a pool task ran in the parent process"
    return extract_range(path, start, stop, mode)


def _first_task_raises(path: str, start: int, stop: int, mode: str) -> list[str | None]:
    if path.endswith("LONG_2023_10K.pdf") and start == 0:
        raise RuntimeError("boom")
    return extract_range(path, start, stop, mode)


def _first_task_only(path: str, start: int, stop: int, mode: str) -> list[str | None]:
    if start > 0:
        time.sleep(60)  # killed before then
    return extract_range(path, start, stop, mode)


def _first_task_kills_its_worker(path: str, start: int, stop: int, mode: str) -> list[str | None]:
    if path.endswith("LONG_2023_10K.pdf") and start == 0:
        os._exit(1)
    return extract_range(path, start, stop, mode)


@pytest.fixture
def pdf_folder(tmp_path: Path) -> Path:
    root = tmp_path / "pdfs"
    root.mkdir()
    (root / "LONG_2023_10K.pdf").write_bytes(make_pdf([f"Long page {n}" if n != 5 else "" for n in range(1, 8)]))
    (root / "short.pdf").write_bytes(make_pdf(["Short page 1", "Short page 2", "Short page 3"]))
    (root / "notes.md").write_text("# Notes\n\nText.\n", encoding="utf-8")
    return root


def _pool(monkeypatch: pytest.MonkeyPatch, pages_per_task: int, task: Callable[..., list[str | None]]) -> None:
    """Force the pool on for the few pages of `pdf_folder`, with `task` as each worker's function."""
    monkeypatch.setattr(pdf, "PAGES_PER_TASK", pages_per_task)
    monkeypatch.setattr(pdf, "cpu_count", lambda: 2)  # a pool even where the tests run on one core
    monkeypatch.setattr(pdf, "extract_range", task)


def test_the_process_pool_gives_the_same_documents(config: Config, pdf_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_recipe(config, "mine", "files", [pdf_folder], domain="finance")
    with monkeypatch.context() as patch:  # 10 pages are less than one task: no pool
        patch.setattr(concurrent.futures, "ProcessPoolExecutor", lambda **_: pytest.fail("a pool started"))
        alone = prepare("mine", config, progress=False)
        expected = list(load_documents("mine", config))
    assert alone.n_documents == 10 and alone.skipped == {"empty_page": 1}
    _pool(monkeypatch, 2, _only_in_a_worker)  # 7 + 3 pages: 6 tasks
    pooled = prepare("mine", config, progress=True)
    assert list(load_documents("mine", config)) == expected
    assert (pooled.skipped, pooled.warnings) == (alone.skipped, alone.warnings)

    def no_processes(**_: Any) -> None:
        raise OSError("no semaphores here")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_processes)  # then it is done in this process
    assert prepare("mine", config, progress=False).skipped == alone.skipped
    assert list(load_documents("mine", config)) == expected


def test_a_failed_task_leaves_its_pages_unreadable(config: Config, pdf_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_recipe(config, "mine", "files", [pdf_folder], domain="finance")
    _pool(monkeypatch, 3, _first_task_raises)  # LONG's tasks: pages 1-2, 3-4, 5-7
    report = prepare("mine", config, progress=False)
    assert report.skipped == {"unreadable_page": 2, "empty_page": 1}
    assert [w for w in report.warnings if "LONG" in w] == [
        f"{pdf_folder / 'LONG_2023_10K.pdf'}: pages 1-2 could not be extracted (RuntimeError: boom)"
    ]
    ids = [d.id for d in load_documents("mine", config)]
    assert ids[:4] == ["mine:LONG_2023_10K:p3", "mine:LONG_2023_10K:p4", "mine:LONG_2023_10K:p6", "mine:LONG_2023_10K:p7"]
    assert len(ids) == 8 and "mine:short:p3" in ids


def test_a_worker_that_dies_does_not_stop_the_prepare(config: Config, pdf_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_recipe(config, "mine", "files", [pdf_folder], domain="finance")
    _pool(monkeypatch, 3, _first_task_kills_its_worker)
    report = prepare("mine", config, progress=False)  # the pool breaks: its unfinished tasks fail, not the run
    ids = {d.id for d in load_documents("mine", config)}
    assert "mine:notes" in ids and "mine:LONG_2023_10K:p1" not in ids
    assert report.skipped["unreadable_page"] >= 2
    assert any("pages 1-2 could not be extracted (BrokenProcessPool" in w for w in report.warnings)


def test_an_interrupt_stops_the_running_tasks(pdf_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted_after_one_page(items: Iterable[int], **_: Any) -> Iterator[int]:
        yield next(iter(items))
        raise KeyboardInterrupt

    _pool(monkeypatch, 3, _first_task_only)
    monkeypatch.setattr(pdf, "progress_bar", interrupted_after_one_page)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        pdf.extract_pages([(pdf_folder / "LONG_2023_10K.pdf", 7)], "layout", progress=True, desc="long")
    assert time.monotonic() - started < 20  # not the 60 s the other tasks would take
