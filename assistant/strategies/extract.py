"""Extractive answers: the table cell at the row and column a question names, with its scale and period, or
else the source sentence that best answers it.

    from assistant.strategies.extract import extract_cell, extractive_answer
    cell = extract_cell("What was the research and development expense in 2019?", sources)
    cell.value, cell.row, cell.column     # '$6,577 million', 'Research and development', 'July 27, 2019'
    text, evidence = extractive_answer(question, sources, embedder)    # 'Answer: $6,577 million [1]\\n...'

How the cell is chosen, in every table of every source (assistant.strategies.tables reads them):
- the row: the label sharing the most content words with the question (words of the section the row
  stands in count half; words every question about a table uses, "amount", "value", "year", do not
  count); at least one must be shared;
- the column: the one whose header holds the year the question names ("2019" finds "July 27, 2019",
  "Fiscal 2019"); a question naming no year takes the column whose header shares a word with it, else a
  table's only value column; a question naming two years or more asks for a comparison, not a cell,
  and gets no cell;
- ties: more shared words in the header, then the higher-ranked source, then the row nearer the top.
The value is written as the table writes it ("(3.1)" stays "(3.1)": a negative, as filings write them;
"$ 6,577" -> "$6,577"), with the scale its column header ("2019 $'000", "(dollars in thousands)", "£m") or
its page ("in millions") states; none for a percentage, a per-share amount or a count of years, and a
percentage row's or column's bare cells ("% of sales", "ROFE (%)") are percentages. No cell: the best evidence sentence of the best source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.strategies.evidence import find_evidence, words_of
from assistant.strategies.numbers import page_scales, quantities
from assistant.strategies.tables import Cell, Row, Table, read_tables
from assistant.types import Evidence, Source

if TYPE_CHECKING:
    from assistant.embeddings import Embedder

# words of questions about tables in general, never what tells one row from another
GENERIC = frozenset({"amount", "value", "year", "much", "many", "company", "companie", "fiscal", "figure", "reported",
                     "respectively", "group", "period", "ended", "end"})
RANK_PENALTY = 0.25  # shared words each rank below the first source costs a row (measured: 0.1 to 2 no better)
_NAMES = {1e3: "thousand", 1e6: "million", 1e9: "billion"}
_HEADER_SCALE = re.compile(
    r"(?P<k>['’‘]000s?\b|\bthousands?\b)|(?P<m>\bmillions?\b|(?<=[$£€])\s?m\b|\bmn\b)|(?P<b>\bbillions?\b|(?<=[$£€])\s?bn?\b)",
    re.IGNORECASE)
_DIGITS = re.compile(r"\d[\d,]*(?:\.\d+)?")


PERCENT_WORD = "%"  # the word a percentage stands for in a question's or a label's words (see table_words)


def table_words(text: str) -> set[str]:
    """Content words of a question, row label or header (assistant.strategies.evidence.words_of), with "%"
    for a percentage it names ("% of net revenue", "percentage of sales"): a question about a percentage
    reads the percentage row, not the amount row beside it."""
    words = words_of(text)
    return words | {PERCENT_WORD} if re.search(r"%|\bper\s?cent", text, re.IGNORECASE) else words


@dataclass(frozen=True)
class ExtractedCell:
    """A table cell answering a question: where it stands, and its value as answered."""

    source: int  # 1-based
    value: str  # "$6,577 million", "-3.1 million", "12.7%"
    row: str  # the row's label
    column: str  # the column's header (the period, as the table writes it)
    scale: str  # "thousand", "million", "billion" or "" (none stated, or a percentage)
    cell: Cell
    row_span: tuple[int, int]  # the row's line in the source's snippet
    score: float
    calculation: str = ""  # a derived answer (assistant.strategies.derive): the arithmetic on the row's cells
    columns: int = 1  # a derived answer reads several; `column` then names them, quoted
    rows: int = 1  # an answer over two rows (assistant.strategies.derive_rows); `row` then names them, quoted


def _header_scale(text: str) -> float | None:
    m = _HEADER_SCALE.search(text)
    if m is None:
        return None
    return 1e3 if m.group("k") else 1e6 if m.group("m") else 1e9


def display_value(text: str) -> tuple[str, bool] | None:
    """A cell as an answer's number, written as the table writes its sign ("(3.1)" stays "(3.1)", as a
    filing's reader reads it; "$ (77,328)" -> "$(77,328)", "-3.1" stays "-3.1", "(15)%" -> "(15)%") and
    whether it is a percentage; None for an empty cell or a dash."""
    found = [q for q in quantities(text) if not q.year] or quantities(text)
    digits = _DIGITS.search(text)
    if not found or digits is None:
        return None
    q = found[0]
    percent = q.percent or "%" in text
    currency = q.currency or next((c for c in "$€£" if c in text), "")
    number = f"({digits.group(0)})" if "(" in text and ")" in text else f"{'-' if q.value < 0 else ''}{digits.group(0)}"
    return f"{currency}{number}{'%' if percent else ''}", percent


def negative(shown: str) -> bool:
    """Whether an answer's number as `display_value` writes it is negative: "(3.1)", "$(77,328)", "-3.1"."""
    return shown.lstrip("$€£").startswith(("(", "-")) or shown.startswith("-")


def _unit_of(text: str) -> str | None:
    """The unit a row label or column header states for its own cells, which the page's scale does not
    apply to: "percent" ("% of net sales", "ROFE (%)", "Percentage of revenue"), "" for counts of years or
    days and per-share amounts ("(in years)", "Earnings per share"); None when it states none."""
    if _header_scale(text) is not None:
        return None
    if re.search(r"%|\bper\s?cent(?:age)?s?\b", text, re.IGNORECASE):
        return "percent"
    if re.search(r"\bper\s+(?:common\s+|diluted\s+|basic\s+|ordinary\s+)?shares?\b|\(\s*(?:in\s+)?(?:years|days|months)\s*\)|\bin\s+(?:years|days|months)\b|"
                 r"\bnumber\s+of\b", text, re.IGNORECASE):
        return ""
    return None


def named_columns(table: Table, years: set[int], question_words: set[str]) -> list[tuple[int, float]]:
    """The columns the question names, each with how many header words it shares with the question."""
    out = []
    for j, header in enumerate(table.headers):
        header_years = {int(q.value) for q in quantities(header) if q.year}
        shared = len(table_words(header) & question_words)
        if years and not years <= header_years:
            continue
        out.append((j, float(shared)))
    if years or not out:
        return out
    best = max(s for _, s in out)
    if best > 0:
        return [(j, s) for j, s in out if s == best]
    width = {j for r in table.rows for j, c in enumerate(r.cells) if not c.empty}
    return [(min(width), 0.0)] if len(width) == 1 else []


def _row_score(row: Row, question_words: set[str]) -> float:
    label = table_words(row.label) - GENERIC
    shared = len(label & question_words)
    if not shared:
        return 0.0
    section = len((words_of(row.section) - GENERIC) & question_words)
    return shared + 0.5 * section + 0.5 * shared / len(label)


@dataclass(frozen=True)
class RowMatch:
    """A row of a source's table that the question names, and how well (shared words, less a little per rank)."""

    source: int  # 0-based
    table: Table
    row: Row
    score: float
    page_scale: float | None  # the scale the source's page states ("in millions"), if any

    def read(self, j: int) -> tuple[str, bool, str] | None:
        """Column j of the row as (value as answered, is a percentage, scale name); None when empty. A row or
        column that states its own unit ("% of sales", "per share", "(in years)") takes no page scale; a
        percentage row's bare cells are percentages."""
        if j >= len(self.row.cells) or (shown := display_value(self.row.cells[j].text)) is None:
            return None
        value, percent = shown
        table = self.table
        header = table.headers[j] if j < len(table.headers) else ""
        unit = row_unit if (row_unit := _unit_of(self.row.label)) is not None else _unit_of(header)
        if unit == "percent" and not percent and not self.row.cells[j].text.lstrip().startswith(("$", "€", "£")):
            return f"{value}%", True, ""
        if percent or unit is not None:
            return value, percent, ""
        scale = (_header_scale(header) or _header_scale(" ".join([*table.headers, table.caption])) or self.page_scale)
        return value, percent, "" if scale is None else _NAMES.get(scale, "")

    def number(self, j: int) -> tuple[float, str, bool, str] | None:
        """Column j of the row as a number to compute with: (signed value, as answered, is a percentage,
        scale name); None when empty."""
        read = self.read(j)
        found = [q for q in quantities(self.row.cells[j].text) if not q.year] if read else []
        if read is None or not found:
            return None
        return abs(found[0].value) * (-1 if negative(read[0]) else 1), *read


def match_rows(question_words: set[str], sources: Sequence[Source]) -> list[RowMatch]:
    """Every table row that shares a content word with the question, best first: more shared words, then a
    higher-ranked source (a quarter of a word per rank), then the row nearer the top."""
    found: list[tuple[tuple[float, int, int], RowMatch]] = []
    for i, src in enumerate(sources):
        page = page_scales(f"{src.title}\n{src.snippet}")
        for table in read_tables(src.snippet):
            for k, row in enumerate(table.rows):
                if (score := _row_score(row, question_words)) > 0:
                    found.append(((score - RANK_PENALTY * i, -i, -k), RowMatch(i, table, row, score, page[0] if page else None)))
    found.sort(key=lambda f: f[0], reverse=True)
    return [m for _, m in found]


def year_columns(table: Table, year: int) -> list[int]:
    """The value columns whose header holds `year`."""
    return [j for j, h in enumerate(table.headers) if year in {int(q.value) for q in quantities(h) if q.year}]


def extract_cell(question: str, sources: Sequence[Source]) -> ExtractedCell | None:
    """The cell the question names in the sources' tables (see the module docstring); None when none does."""
    years = {int(q.value) for q in quantities(question) if q.year}
    if len(years) > 1:
        return None
    question_words = table_words(question) - GENERIC
    best: tuple[tuple[float, float], ExtractedCell] | None = None
    for rank, match in enumerate(match_rows(question_words, sources)):
        for j, header_score in named_columns(match.table, years, question_words):
            if (read := match.read(j)) is None:
                continue
            value, _, scale = read
            key = (match.score - RANK_PENALTY * match.source, header_score - rank * 1e-6)
            if best is None or key > best[0]:
                row = match.row
                best = (key, ExtractedCell(match.source + 1, f"{value} {scale}".strip(), row.label,
                                           match.table.headers[j], scale, row.cells[j], (row.start, row.end),
                                           match.score + 0.5 * header_score))
    return best[1] if best else None


def cell_text(cell: ExtractedCell) -> str:
    """The answer for a cell: the value on an "Answer:" line (what the evaluation reads), the calculation of a
    derived one, then where it stands."""
    column = f'column "{cell.column}"' if cell.columns == 1 else f"columns {cell.column}"
    where = (f"rows {cell.row}" if cell.rows > 1 else f'row "{cell.row}"') + (f", {column}" if cell.column else "")
    unit = f"; amounts in {cell.scale}s" if cell.scale else ""
    calculation = f"\nCalculation: {cell.calculation}" if cell.calculation else ""
    return f"Answer: {cell.value} [{cell.source}]{calculation}\nFrom the table of source [{cell.source}]: {where}{unit}."


def cell_evidence(cell: ExtractedCell, sources: Sequence[Source]) -> Evidence:
    """The cell's row as the answer's evidence (a quote of the source's snippet)."""
    src = sources[cell.source - 1]
    start, end = cell.row_span
    return Evidence(cell.source, src.doc_id, src.locator, src.snippet[start:end], start, end, round(min(cell.score / 4, 1.0), 4),
                    "row", True)


def best_sentence(question: str, sources: Sequence[Source], embedder: Embedder | None = None) -> Evidence | None:
    """The unit (sentence or row) of the sources that best answers the question on its own."""
    found = find_evidence(question, question, sources, cited=[], embedder=embedder)
    return found[0] if found else None


__all__ = ["GENERIC", "ExtractedCell", "RowMatch", "best_sentence", "cell_evidence", "cell_text", "display_value",
           "extract_cell", "match_rows", "named_columns", "negative", "table_words",
           "year_columns"]
