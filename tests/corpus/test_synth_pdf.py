"""Tables read from PDF pages (assistant.corpus.synth_cells / synth_pdf) on PDFs the test writes itself:
text placed in columns over shaded row bands, the way EDGAR 10-Ks draw their statements, so that
pdfplumber's ruled-table finder sees them. `make_table_pdf` is shared with tests/corpus/test_synth.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from assistant.corpus.synth_cells import Word, merge_regions, parse_line, scale_of
from assistant.corpus.synth_pdf import page_tables
from tests.corpus.conftest import pdf_document

DIGIT = 5.0  # Helvetica digits are 0.556 em: 5 pt at 9 pt


@dataclass
class TablePage:
    """One page: lines of text above a table, then its heading line, then its rows (label, cells)."""

    above: list[str] = field(default_factory=list)  # e.g. ["Consolidated Statements of Operations", "(Dollars in millions)"]
    headers: list[str] = field(default_factory=list)  # one per column, e.g. ["2022", "2021"]
    rows: list[tuple[str, list[str]]] = field(default_factory=list)
    prose: list[str] = field(default_factory=list)  # lines of text below (or instead of) a table


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _text(x: float, y: float, text: str, size: int = 9) -> str:
    return f"BT /F1 {size} Tf {x:.1f} {y:.1f} Td ({_esc(text)}) Tj ET\n"


def _page_content(page: TablePage) -> bytes:
    out, y = "", 740.0
    for line in page.above:
        out += _text(72, y, line)
        y -= 14
    columns = [380 + 110 * j for j in range(len(page.headers))]  # right edges
    if page.rows:
        y -= 6
        for right, head in zip(columns, page.headers, strict=True):
            out += _text(right - DIGIT * len(head), y, head)
        y -= 16
        for label, cells in page.rows:
            # a shaded band per row: its rectangle's edges are the rules pdfplumber finds tables by
            out += f"0.92 g 60 {y - 3:.1f} {columns[-1] - 40 + 20:.1f} 13 re f 0 g\n"
            out += _text(72, y, label)
            for right, cell in zip(columns, cells, strict=True):
                out += _text(right - DIGIT * len(cell), y, cell)
            y -= 14
    y -= 10
    for line in page.prose:
        out += _text(72, y, line)
        y -= 14
    return out.encode("cp1252")  # WinAnsiEncoding: "—" is a byte of it


def make_table_pdf(pages: list[TablePage]) -> bytes:
    """A valid PDF (Helvetica text, shaded row bands) with one page per TablePage; an empty TablePage
    makes a page without text, like a scan."""
    return pdf_document([_page_content(p) if (p.rows or p.above or p.prose) else b"" for p in pages],
                        font_encoding="WinAnsiEncoding")


INCOME = TablePage(
    above=["Acme Corp and Subsidiaries", "Consolidated Statements of Operations",
           "(Dollars in millions, except per share data)"],
    headers=["2022", "2021"],
    rows=[
        ("Total revenues", ["$66,608", "$62,286"]),
        ("Cost of products", ["(53,969)", "(49,954)"]),
        ("Operating margin", ["12.5%", "(4.8%)"]),
        ("Research and development", ["—", "1,010"]),
        ("Diluted loss per share", ["($8.30)", "($7.15)"]),
    ],
)


def test_a_line_is_a_label_and_value_cells() -> None:
    words = [Word("Net", 19, 33, 100, 109), Word("sales", 35, 58, 100, 109), Word("(1)", 60, 70, 100, 109),
             Word("$", 300, 305, 100, 109), Word("55,893", 306, 340, 100, 109),
             Word("(4.8", 380, 398, 100, 109), Word("%)", 399, 408, 100, 109), Word("—", 450, 458, 100, 109)]
    line = parse_line(words)
    assert line.label == "Net sales (1)"  # a footnote marker close to the label stays in it
    assert [c.text for c in line.cells] == ["$55,893", "(4.8%)", "—"]
    assert [c.kind for c in line.cells] == ["number", "number", "dash"]
    assert line.cells[0].value == "55,893" and line.cells[1].value == "-4.8" and line.cells[1].percent
    assert line.is_data
    years = parse_line([Word("2022", 300, 320, 80, 89), Word("2021", 380, 400, 80, 89)])
    assert not years.is_data  # a heading line, not a row


def test_scale_notes() -> None:
    assert scale_of("(Dollars in millions, except per share data)") == "million"
    assert scale_of("(In thousands)") == "thousand"
    assert scale_of("Net sales (millions)") == "million"
    assert scale_of("in billions of U.S. dollars") == "billion"
    assert scale_of("Revenue grew by 12 percent") == ""


def test_regions_one_row_apart_are_one_table() -> None:
    rows = [(60.0, 100.0 + 24 * i, 500.0, 112.0 + 24 * i) for i in range(4)]  # shaded every other row
    assert merge_regions(rows) == [(60.0, 100.0, 500.0, 184.0)]
    assert len(merge_regions([(60.0, 100.0, 500.0, 112.0), (60.0, 300.0, 500.0, 312.0)])) == 2


def test_a_statement_page(tmp_path: Path) -> None:
    import pdfplumber

    path = tmp_path / "ACME_2022_10K.pdf"
    path.write_bytes(make_table_pdf([INCOME]))
    with pdfplumber.open(path) as pdf:
        tables = page_tables(pdf.pages[0], 1)
    assert len(tables) == 1
    table = tables[0]
    assert table.title == "Consolidated Statements of Operations"
    assert table.scale == "million"
    assert [c.header for c in table.columns] == ["2022", "2021"]
    assert [r.label for r in table.rows] == [label for label, _ in INCOME.rows]
    cells = {r.label: [c.text if c else None for c in r.cells] for r in table.rows}
    assert cells["Total revenues"] == ["$66,608", "$62,286"]
    assert cells["Cost of products"] == ["(53,969)", "(49,954)"]
    assert table.rows[3].cells[0] is not None and table.rows[3].cells[0].kind == "dash"


def test_a_page_without_ruled_tables_has_none(tmp_path: Path) -> None:
    import pdfplumber

    path = tmp_path / "prose.pdf"
    path.write_bytes(make_table_pdf([TablePage(prose=["Revenue was $66,608 million in 2022 and $62,286 in 2021."])]))
    with pdfplumber.open(path) as pdf:
        assert page_tables(pdf.pages[0], 1) == []


@pytest.mark.parametrize("headers", [["", ""], ["Owned", "Leased"]])
def test_headings_without_a_period_are_read_as_they_are(tmp_path: Path, headers: list[str]) -> None:
    import pdfplumber

    path = tmp_path / "t.pdf"
    path.write_bytes(make_table_pdf([TablePage(above=["Properties"], headers=headers,
                                               rows=[("Seattle", ["12", "3"]), ("Chicago", ["4", "5"])])]))
    with pdfplumber.open(path) as pdf:
        (table,) = page_tables(pdf.pages[0], 1)
    assert [c.header for c in table.columns] == headers
