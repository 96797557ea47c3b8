"""Words, lines and value cells of a PDF page as pdfplumber gives them: the records and the low-level
parsing that `assistant.corpus.synth_pdf` builds tables from (`data synth --method tables`).

    from assistant.corpus.synth_cells import Word, parse_line
    line = parse_line([Word("Total", 19, 40, 177, 186), Word("revenues", 42, 82, 177, 186),
                       Word("$", 418, 423, 177, 186), Word("66,608", 423, 451, 177, 186)])
    line.label, line.cells[0].value          # 'Total revenues', '66,608'

A line is a label (the text at its left) and value cells: "$" and "(" join the number after them, "%" and
")" the one before ("$" + "55,893" -> "$55,893"; "(53,969)" is negative, "37.6%" a percentage, "—" nil).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

LINE_TOL = 2.5  # words whose tops differ by at most this (points) are on one line
PHRASE_GAP = 6.0  # a wider gap between two words of a line starts a new heading phrase
LABEL_GAP = 8.0  # a number closer than this to the label's last word belongs to the label (a footnote "(1)")
UNIT_GAP = 8.0  # "$" and "(" join the number after them, "%" and ")" the one before, within this gap
MERGE_GAP = 16.0  # ruled regions this close (about one row apart) are one table

_SYMBOLS = set("$()%[]")
_DASHES = {"—", "–", "-", "−", "— —", "--"}
_PLACEHOLDERS = {"nm", "n/a", "na", "n.m.", "*", "**", "nmf", "n.a."}
_CORE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+")
_YEAR = re.compile(r"^(?:19|20)\d{2}$")
SCALE = re.compile(
    r"\b(?:in|of)\s+(?:u\.\s?s\.\s+)?(?:dollars\s+)?(?:in\s+)?(thousands|millions|billions)\b"
    r"|\(\s*(?:\$\s*|dollars\s+)?(?:in\s+)?(thousands|millions|billions)\b"
    r"|\b(thousands|millions|billions)\s+of\s+(?:u\.\s?s\.\s+)?dollars\b",
    re.I,
)



@dataclass(frozen=True)
class Word:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float


@dataclass(frozen=True)
class Cell:
    """One value cell as printed ("$55,893", "(53,969)", "37.6%", "—") and what it means."""

    text: str
    x0: float
    x1: float
    kind: str  # "number", "dash" (nil) or "placeholder" (NM, N/A)
    number: str = ""  # the digits as printed, without sign, "$" or "%": "53,969"
    negative: bool = False
    percent: bool = False

    @property
    def value(self) -> str:
        """The signed number ("-53,969"): the gold answer's value, without scale."""
        return ("-" if self.negative else "") + self.number


@dataclass(frozen=True)
class Row:
    label: str
    section: str  # the nearest label-only row above ("Current assets:"), "" if none
    cells: tuple[Cell | None, ...]  # one per column of the table


@dataclass(frozen=True)
class Column:
    header: str  # the heading text assigned to it, top to bottom ("13 Weeks Ended January 28, 2023")
    x0: float
    x1: float


@dataclass
class Table:
    page: int  # 1-based
    index: int  # 0-based, top to bottom on its page
    bbox: tuple[float, float, float, float]
    columns: list[Column]
    rows: list[Row]
    scale: str  # "thousand" | "million" | "billion" | "" (from the nearest note above, or none)
    title: str
    stub: str  # heading text left of the columns ("Years ended December 31,", "(Dollars in millions)")
    skipped_rows: Counter[str] = field(default_factory=Counter)


def scale_of(text: str) -> str:
    """The TAT-QA scale word a note states ("(Dollars in millions)" -> "million"), or ""."""
    m = SCALE.search(text)
    if not m:
        return ""
    return next(g for g in m.groups() if g).lower().rstrip("s")


def _cell(word_text: str, x0: float, x1: float) -> Cell | None:
    """A value cell from the text of one or more joined words, or None when it is text."""
    text = word_text.strip()
    core = "".join(ch for ch in text if ch not in _SYMBOLS).strip()
    if core in _DASHES or (not core and text):
        return Cell(text, x0, x1, "dash") if core else None
    if core.lower() in _PLACEHOLDERS:
        return Cell(text, x0, x1, "placeholder")
    negative = core[:1] in "-–−"
    core = core.lstrip("-–−")
    if not _CORE.fullmatch(core):
        return None
    negative = negative or ("(" in text and ")" in text)
    return Cell(text, x0, x1, "number", core, negative, "%" in text)


def _is_value_word(text: str) -> bool:
    core = "".join(ch for ch in text if ch not in _SYMBOLS).strip()
    return not core or core in _DASHES or bool(_CORE.fullmatch(core.lstrip("-–−")))


def lines_of(words: list[Word]) -> list[list[Word]]:
    """Words grouped into lines (by their tops), each sorted left to right, lines top to bottom."""
    lines: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (w.top, w.x0)):
        if lines and abs(word.top - lines[-1][0].top) <= LINE_TOL:
            lines[-1].append(word)
        else:
            lines.append([word])
    return [sorted(line, key=lambda w: w.x0) for line in lines]


@dataclass
class ParsedLine:
    label: str
    cells: list[Cell]
    text_after: bool  # a text word among the values: not a table row

    @property
    def is_data(self) -> bool:
        """Has a label and at least one number that is not a year heading."""
        return bool(self.label) and not self.text_after and any(
            c.kind == "number" and not (_YEAR.match(c.text)) for c in self.cells)

    @property
    def numbers(self) -> int:
        return sum(c.kind == "number" and not _YEAR.match(c.text) for c in self.cells)


def parse_line(line: list[Word]) -> ParsedLine:
    """Split a line into its label (leading text) and value cells ("$" + "55,893" -> "$55,893")."""
    label: list[Word] = []
    i = 0
    while i < len(line):
        w = line[i]
        near = bool(label) and w.x0 - label[-1].x1 < LABEL_GAP
        if not _is_value_word(w.text) or (near and w.text not in ("$", "%")):
            label.append(w)
            i += 1
        else:
            break
    cells: list[Cell] = []
    text_after = False
    group: list[Word] = []

    def close() -> None:
        nonlocal text_after
        text = "".join(w.text for w in group)
        if group and not text.strip("$()%[]"):
            # a symbol on its own: "$" padded far from its number, or "%" in a column of its own
            if "%" in text and cells and cells[-1].kind == "number" and not cells[-1].percent:
                c = cells[-1]
                cells[-1] = Cell(c.text + "%", c.x0, c.x1, c.kind, c.number, c.negative, True)
        elif group:
            cell = _cell(text, group[0].x0, group[-1].x1)
            if cell is None:
                text_after = True
            else:
                cells.append(cell)
        group.clear()

    for w in line[i:]:
        joins = bool(group) and w.x0 - group[-1].x1 < UNIT_GAP and (
            group[-1].text in ("$", "(", "($", "$(") or w.text in ("%", ")", "%)", ")%"))
        if not joins:
            close()
        group.append(w)
    close()
    return ParsedLine(" ".join(w.text for w in label), cells, text_after)


def phrases(line: list[Word]) -> list[tuple[str, float, float]]:
    out: list[list[Word]] = []
    for w in line:
        if out and w.x0 - out[-1][-1].x1 < PHRASE_GAP:
            out[-1].append(w)
        else:
            out.append([w])
    return [(" ".join(w.text for w in p), p[0].x0, p[-1].x1) for p in out]


def columns_of(rows: list[ParsedLine]) -> list[tuple[float, float]]:
    """Column spans: the union of the value cells' x-spans that overlap, left to right."""
    spans = sorted((c.x0, c.x1) for r in rows for c in r.cells)
    merged: list[list[float]] = []
    for x0, x1 in spans:
        if merged and x0 <= merged[-1][1] + 1.0:
            merged[-1][1] = max(merged[-1][1], x1)
        else:
            merged.append([x0, x1])
    return [(a, b) for a, b in merged]


def column_of(cell: Cell, spans: list[tuple[float, float]]) -> int:
    centre = (cell.x0 + cell.x1) / 2
    return min(range(len(spans)), key=lambda j: 0 if spans[j][0] <= centre <= spans[j][1]
               else min(abs(centre - spans[j][0]), abs(centre - spans[j][1])))


def merge_regions(boxes: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """Ruled regions that touch vertically (and overlap horizontally) as one: a shaded-row table is
    found as one region per shaded row."""
    out: list[list[float]] = []
    for x0, top, x1, bottom in sorted(boxes, key=lambda b: b[1]):
        if out:
            last = out[-1]
            overlap = min(x1, last[2]) - max(x0, last[0])
            if top - last[3] <= MERGE_GAP and overlap >= 0.5 * min(x1 - x0, last[2] - last[0]):
                out[-1] = [min(x0, last[0]), min(top, last[1]), max(x1, last[2]), max(bottom, last[3])]
                continue
        out.append([x0, top, x1, bottom])
    return [(a, b, c, d) for a, b, c, d in out]


__all__ = ["MERGE_GAP", "SCALE", "Cell", "Column", "ParsedLine", "Row", "Table", "Word", "column_of", "columns_of",
           "lines_of", "merge_regions", "parse_line", "phrases", "scale_of"]
