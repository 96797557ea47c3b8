"""Files loader: folders of PDF, text, markdown and HTML files (the SEC filings, or a user's own documents).

    assistant corpus prepare filings                                   # the shipped recipe (the PDF folder)
    assistant corpus add mynotes --from ~/notes --domain medical       # a user's own folder, then prepare it

A PDF gives one Document per page that has text (id `<corpus>:<file stem>:p<page>`, 1-based pages, locator
"FILE.pdf, page N"), so that answers cite pages; a .txt / .md / .html file gives one Document. A file
named like COMPANY_YEAR_FORM (`BOEING_2022_10K.pdf`, `ULTABEAUTY_2023Q4_EARNINGS.pdf`) gets company,
year and form metadata, so that a question can be scoped to one company's filing. Each PDF page also
gets a `context` line (issuer, kind of document and period, the Item it is in, its heading and units:
`page_context`) that the index puts before each of the page's chunks.

Bad files inside a folder (corrupt or password-protected PDF, empty file, text that is not UTF-8, an
unsupported type) are skipped, counted by reason and named in a warning; a bad file given directly as
the source raises InputError naming it. This loader makes no QA items.

Each PDF is opened first, in turn (to find a corrupt or locked one); then the pages of all of them are
extracted together, by a pool of processes when there are enough (`assistant.corpus.loaders.pdf`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.corpus.loaders import LoadResult, files_under, progress_bar, register_loader
from assistant.corpus.loaders.page_context import page_contexts
from assistant.corpus.loaders.pdf import Pages, extract_pages
from assistant.errors import ConfigError, InputError
from assistant.types import Document, MetaValue

if TYPE_CHECKING:
    from assistant.corpus.recipes import Recipe

PDF = (".pdf",)
TEXT = (".txt", ".md", ".markdown")
HTML = (".html", ".htm")
SUPPORTED = PDF + TEXT + HTML  # the one list: the document jobs, the app and this loader read it
SUPPORTED_LABEL = "PDF, txt, md or html"  # SUPPORTED as messages and the app name it

# BOEING_2022_10K, JOHNSON_JOHNSON_2022_10K, ULTABEAUTY_2023Q4_EARNINGS
FILING_NAME = re.compile(r"^(?P<company>.+?)_(?P<year>(?:19|20)\d{2})(?P<quarter>Q[1-4])?_(?P<form>[A-Za-z0-9-]+)$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_RUNS = re.compile(r"[ \t\u00a0]{2,}")
_DOLLAR = re.compile(r"\$ +(?=[\d(])")


class FileProblem(Exception):
    """A file that cannot be used: `reason` is the skipped-count key, the message says why and the fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _Pdf:
    """A PDF that opened, its pages still to read: those of all the PDFs are extracted together."""

    path: Path
    rel: str
    key: str
    meta: dict[str, MetaValue]
    n_pages: int
    pages: Pages = field(default_factory=lambda: Pages([]))  # its page texts, once extracted


def filing_metadata(stem: str) -> dict[str, MetaValue]:
    match = FILING_NAME.match(stem)
    if not match:
        return {}
    meta: dict[str, MetaValue] = {
        "company": match["company"],
        "year": int(match["year"]),
        "form": match["form"],
    }
    if match["quarter"]:
        meta["quarter"] = match["quarter"]
    return meta


def pretty(stem: str) -> str:
    return " ".join(stem.replace("_", " ").split())


def clean_page(text: str) -> str:
    """Tidy a page extracted in layout mode: strip the column padding but keep each table row on one line.

    Runs of spaces become two spaces (a visible column break, unlike a single space between words),
    "$      737,877" becomes "$737,877", and blank lines collapse to one. A line whose every word is
    padded (justified prose) gets single spaces back.
    """
    lines: list[str] = []
    for raw in text.splitlines():
        line = _DOLLAR.sub("$", _RUNS.sub("  ", raw.strip()))
        cells = line.split("  ")
        if len(cells) >= 6 and all(" " not in c for c in cells):
            line = " ".join(cells)  # a justified line of prose, padded word by word: not a table row
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip()


def _open_pdf(path: Path) -> Any:
    """A pypdf reader with its pages countable; raises FileProblem for a corrupt or locked file."""
    import pypdf
    from pypdf.errors import DependencyError, PdfReadError

    try:
        reader = pypdf.PdfReader(path)
        # pypdf already tried the empty user password (EDGAR PDFs are encrypted that way, only to set
        # permissions); a PDF that needs a real password cannot be read
        if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
            raise FileProblem("encrypted_pdf", "the PDF is protected by a password (decrypt it first, e.g. `qpdf --decrypt`)")
        len(reader.pages)
    except DependencyError as exc:
        raise FileProblem("encrypted_pdf", f"the PDF is encrypted and needs an extra package to open ({exc})") from None
    except FileProblem:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FileProblem("corrupt_pdf", f"not a readable PDF ({exc.__class__.__name__}: {exc})") from None
    return reader


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileProblem(
            "not_utf8", f"not UTF-8 text (byte {exc.start}); re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


def _html(path: Path) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_bytes(), "html.parser")
    title = " ".join(soup.title.get_text().split()) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    lines = [" ".join(line.split()) for line in soup.get_text("\n").splitlines()]
    return title, "\n".join(line for line in lines if line)


def _pdf_mode(corpus: str, options: dict[str, Any]) -> str:
    # Layout mode keeps each table row on one line ("Total revenues $66,608 $62,286 $58,158"); plain
    # mode does so for the EDGAR 10-Ks but puts every cell of the Ulta release's wkhtmltopdf tables
    # on a line of its own ("Cash and cash equivalents\n$\n737,877\n$\n431,560"). Layout costs ~20% more time.
    mode = options.get("pdf_mode", "layout")
    if mode not in ("layout", "plain"):
        raise ConfigError(f"corpus '{corpus}': options.pdf_mode must be 'layout' or 'plain', got {mode!r}")
    return str(mode)


def _open_file(path: Path, base: Path, corpus: str, options: dict[str, Any]) -> list[Document] | _Pdf:
    """The Document of a text or HTML file; a PDF is opened (to find a corrupt or locked one), not read yet."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise FileProblem("unsupported_type", f"unsupported file type '{suffix or path.name}' (supported: {', '.join(SUPPORTED)})")
    if path.stat().st_size == 0:
        raise FileProblem("empty_file", "the file is empty")
    rel = path.relative_to(base).as_posix()
    key = rel[: -len(path.suffix)] if path.suffix else rel  # the stem, with its sub-folder when nested
    meta: dict[str, MetaValue] = {"document": key, "file": rel, **filing_metadata(path.stem)}
    if suffix in PDF:
        _pdf_mode(corpus, options)
        return _Pdf(path, rel, key, meta, len(_open_pdf(path).pages))
    if suffix in HTML:
        title, text = _html(path)
    else:
        text = _read_text(path).strip()
        heading = _HEADING.search(text)
        title = heading.group(1).strip() if heading else ""
    if not text.strip():
        raise FileProblem("empty_file", "the file has no text")
    return [Document(id=f"{corpus}:{key}", corpus=corpus, title=title or pretty(path.stem), text=text, locator=rel, metadata=meta)]


def _pdf_documents(pdf: _Pdf, corpus: str, result: LoadResult) -> list[Document]:
    """One Document per page of `pdf` that has text (its pages extracted), counting the pages without."""
    docs = []
    pages = pdf.pages
    texts = [clean_page(raw or "") for raw in pages.texts]
    contexts = page_contexts(texts, pdf.meta)
    for number, (raw, text) in enumerate(zip(pages.texts, texts, strict=True), 1):
        if not text:
            why = pages.failed.get(number - 1)  # a task that failed: say so once, on its first page
            result.skip("empty_page" if raw is not None else "unreadable_page", f"{pdf.path}: {why}" if why else None)
            continue
        docs.append(
            Document(
                id=f"{corpus}:{pdf.key}:p{number}",
                corpus=corpus,
                title=f"{pretty(pdf.path.stem)} — page {number}",
                text=text,
                locator=f"{pdf.rel}, page {number}",
                metadata={**pdf.meta, "page": number, "pages": pdf.n_pages, "context": contexts[number - 1]},
            )
        )
    if not docs:
        raise FileProblem("no_text", f"none of its {pdf.n_pages} pages has extractable text (a scan? run OCR first)")
    return docs


@register_loader("files")
def load_files(sources: list[Path], recipe: Recipe, progress: bool) -> LoadResult:
    corpus = recipe.name
    result = LoadResult(documents=[], qa=[])
    # (file, folder its id is relative to, strict): a file named as the source itself must be usable
    todo: list[tuple[Path, Path, bool]] = []
    for src in sources:
        if src.is_dir():
            todo += [(p, src, False) for p in files_under([src])]
        else:
            todo.append((src, src.parent, True))
    # each file in turn: its documents, the problem that skips it (counted in its turn, below), or a PDF
    opened: list[tuple[Path, bool, list[Document] | _Pdf | FileProblem]] = []
    pypdf_log = logging.getLogger("pypdf")
    level = pypdf_log.level
    pypdf_log.setLevel(logging.ERROR)  # "Ignoring wrong pointing object" and the like, once per odd PDF
    try:
        for path, base, strict in progress_bar(todo, enabled=progress, desc=corpus, unit="file"):
            try:
                try:
                    opened.append((path, strict, _open_file(path, base, corpus, recipe.options)))
                except OSError as exc:  # vanished, unreadable, a broken link
                    raise FileProblem("unreadable_file", f"cannot be read ({exc.strerror or exc})") from None
            except FileProblem as problem:
                if strict:
                    raise InputError(f"{path}: {problem}") from None
                opened.append((path, strict, problem))
        pdfs = [item for _, _, item in opened if isinstance(item, _Pdf)]
        if pdfs:
            mode = _pdf_mode(corpus, recipe.options)
            done = extract_pages([(p.path, p.n_pages) for p in pdfs], mode, progress=progress, desc=f"{corpus} pages")
            for pdf, pages in zip(pdfs, done, strict=True):
                pdf.pages = pages
    finally:
        pypdf_log.setLevel(level)
    documents: list[Document] = []
    for path, strict, item in opened:
        if isinstance(item, _Pdf):
            try:
                item = _pdf_documents(item, corpus, result)
            except FileProblem as problem:
                item = problem
        if isinstance(item, FileProblem):
            if strict:
                raise InputError(f"{path}: {item}") from None
            result.skip(item.reason, f"skipped {path}: {item}")
        else:
            documents += item
    if not documents:
        where = ", ".join(str(s) for s in sources)
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(result.skipped.items()))
        raise InputError(
            f"corpus '{corpus}': no usable documents in {where}"
            + (f" (skipped: {why})" if why else "")
            + f"; supported types: {', '.join(SUPPORTED)}"
        )
    result.documents = documents
    return result
