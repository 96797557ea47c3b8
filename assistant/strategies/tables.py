"""Tables in a source's text, read into rows, columns and cells with their spans, for extractive answers.

    from assistant.strategies.tables import read_tables
    [table] = read_tables("(Dollars in millions)\\nYears ended December 31,   2022   2021\\n"
                          "Total revenues   66,608   62,286\\nNet loss   (5,053)   (4,290)")
    table.headers                      # ('2022', '2021'): one header per value column
    table.rows[1].label, table.rows[1].cells[0].text      # 'Net loss', '(5,053)'

Two layouts are read, the two the corpora produce:
- markdown tables, as the TAT-QA loader writes them ("| Revenue | $ 1,452.4 | 1,146.2 |"); rows before the
  first data row whose cells are years, dates or words ("|  | 2019 | 2018 |", "| SALES | 2019 | 2018 |")
  are column headers, and a header row after data rows starts a new block of the same table;
- text laid out in columns, as PDF pages and hand-written pages give it: a row is a line that ends in
  numeric cells ("Total revenues  66,608  62,286", "Net loss  $ (5,053)  (4,290)"), its header the
  nearest line above with two or more years ("Years ended December 31,   2022   2021"); cells map to
  header years left to right.
A row without values ("Current liabilities |  |  |") names the section of the rows under it. A chunk may
start or end mid-row: rows whose cell count differs from the table's header are read only up to it.
Pure functions: no model, no numbers parsed beyond what tells a header from a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from assistant.strategies.numbers import quantities

_PIPE = re.compile(r"(?<!\\)\|")
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
# a numeric cell of a column layout: "$ 1,452.4", "(5,053)", "$(77,328)", "(15)%", "12.7%", "—"
_VALUE = re.compile(r"(?:[$€£]\s?)?\(?[-−–]?(?:[$€£]\s?)?\(?\d[\d,]*(?:\.\d+)?\)?\s?%?\)?|[—–-](?=\s|$)")
_TAIL = re.compile(rf"(?:(?:^|\s+)(?:{_VALUE.pattern}))+\s*$")


@dataclass(frozen=True)
class Cell:
    """A value cell as written ("$ 6,577", "(3.1)", "12.7%", "" when empty) and its span in the text."""

    text: str
    start: int
    end: int

    @property
    def empty(self) -> bool:
        return not re.search(r"\d", self.text)


@dataclass(frozen=True)
class Row:
    """A table row: its label (the first cell), its value cells by column, its line's span, its section."""

    label: str
    cells: tuple[Cell, ...]
    start: int
    end: int
    section: str = ""


@dataclass(frozen=True)
class Table:
    """Rows under one header: `headers[j]` is the text over value column j (all header rows joined)."""

    headers: tuple[str, ...]
    rows: tuple[Row, ...]
    caption: str = ""  # what the header rows' label cells say ("($ in millions)"), joined


def _is_value(text: str) -> bool:
    """A cell that is an amount ("$ 6,577", "(3.1)", "12.7%") or a dash, not a year."""
    text = text.strip()
    if not _VALUE.fullmatch(text):
        return False
    return not any(q.year for q in quantities(text))


def _is_header_cell(text: str) -> bool:
    """A column header: words, a year or a date ("July 27, 2019", "December 31,"); not an amount."""
    return not _is_value(text)


def _is_header(values: list[str]) -> bool:
    filled = [v for v in values if v.strip()]
    return bool(filled) and all(_is_header_cell(v) for v in filled)


def _markdown_cells(text: str, start: int, end: int) -> list[Cell]:
    """The cells of a markdown line between `start` and `end`, each stripped, with its span."""
    line = text[start:end]
    bounds = [m.start() for m in _PIPE.finditer(line)]
    if line.strip().startswith("|"):
        bounds = bounds[1:] if bounds else bounds
        edges = [line.index("|"), *bounds]
    else:  # a chunk cut the row's opening: its first cell is a fragment
        edges = [-1, *bounds]
    if not line.rstrip().endswith("|"):
        edges.append(len(line))
    cells = []
    for a, b in pairwise(edges):
        raw = line[a + 1:b]
        lead = len(raw) - len(raw.lstrip())
        value = raw.strip()
        cells.append(Cell(value.replace("\\|", "|"), start + a + 1 + lead, start + a + 1 + lead + len(value)))
    return cells


class _Builder:
    """Collects rows into tables: header rows set the columns, value-less rows the section."""

    def __init__(self) -> None:
        self.tables: list[Table] = []
        self.headers: list[list[str]] = []
        self.captions: list[str] = []
        self.rows: list[Row] = []
        self.section = ""

    def header(self, values: list[str], label: str = "") -> None:
        if self.rows:  # a header after data rows: a new block
            self.flush()
        self.headers.append(values)
        if label:
            self.captions.append(label)

    def row(self, label: str, cells: list[Cell], start: int, end: int) -> None:
        if all(c.empty for c in cells):
            if re.search(r"[A-Za-z]", label):
                self.section = label
            return
        if label and not re.search(r"[A-Za-z]", label):  # a fragment of a row a chunk cut
            return
        self.rows.append(Row(label, tuple(cells), start, end, self.section))

    def flush(self) -> None:
        if self.rows:
            width = max(len(r.cells) for r in self.rows)
            headers = [" ".join(h[j] for h in self.headers if j < len(h) and h[j]).strip() for j in range(width)]
            self.tables.append(Table(tuple(headers), tuple(self.rows), " ".join(self.captions)))
        self.headers, self.captions, self.rows, self.section = [], [], [], ""


def _markdown(text: str, lines: list[re.Match[str]]) -> list[Table]:
    builder = _Builder()
    previous_table = False
    for k, line in enumerate(lines):
        content = line.group(0)
        is_table = content.count("|") >= 2
        if not is_table:
            if previous_table and content.strip():
                builder.flush()
            previous_table = previous_table and not content.strip()
            continue
        previous_table = True
        if _SEPARATOR.match(content):
            continue
        cells = _markdown_cells(text, line.start(), line.end())
        if len(cells) < 2:
            continue
        label, values = cells[0].text, cells[1:]
        above_separator = k + 1 < len(lines) and _SEPARATOR.match(lines[k + 1].group(0)) is not None
        if above_separator or (_is_header([c.text for c in values]) and (not builder.rows or not label)):
            builder.header([c.text for c in values], label)
        else:
            builder.row(label, values, line.start(), line.end())
    builder.flush()
    return builder.tables


def _column_cells(text: str, start: int, end: int) -> tuple[str, list[Cell]] | None:
    """A column-layout row: the label before its trailing numeric cells, and the cells; None if not one."""
    line = text[start:end]
    tail = _TAIL.search(line)
    if not tail:
        return None
    cells = [Cell(m.group(0).strip(), start + m.start(), start + m.start() + len(m.group(0).rstrip()))
             for m in _VALUE.finditer(line, tail.start())]
    label = line[: tail.start()].strip().rstrip(".:").strip()
    spaced = re.search(r"\S(?:\s{2,}|\t)\S", line[max(0, tail.start() - 1):]) is not None
    if not label or (len(cells) < 2 and not spaced):
        return None
    return label, cells


def _columns(text: str, lines: list[re.Match[str]]) -> list[Table]:
    builder = _Builder()
    for line in lines:
        content = line.group(0)
        if "|" in content:
            continue
        years = [q for q in quantities(content) if q.year]
        others = [q for q in quantities(content) if not q.year and abs(q.value) >= 32]
        if len(years) >= 2 and not others:
            builder.flush()
            builder.header([q.text for q in years])
            continue
        parsed = _column_cells(text, line.start(), line.end())
        if parsed is None:
            if content.strip() and builder.rows and len(content.split()) > 12:  # prose ends the table
                builder.flush()
            elif content.strip() and not quantities(content) and len(content.split()) <= 6:
                builder.section = content.strip().rstrip(":")
            continue
        label, cells = parsed
        builder.row(label, cells, line.start(), line.end())
    builder.flush()
    return [t for t in builder.tables if any(t.headers) or len(t.rows) >= 2]


def read_tables(text: str) -> list[Table]:
    """The tables of `text`: markdown tables, then tables laid out in columns (see the module docstring)."""
    lines = list(re.finditer(r"[^\n]+", text))
    return _markdown(text, lines) + _columns(text, lines)


__all__ = ["Cell", "Row", "Table", "read_tables"]
