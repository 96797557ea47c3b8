"""The files loader: PDF pages, text, markdown and HTML; bad files skipped in a folder, refused on their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import Config
from assistant.corpus import load_documents, prepare
from assistant.corpus.loaders.files import clean_page, filing_metadata
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
