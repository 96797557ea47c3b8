"""Answers a table gives in one step over two rows a question names: one as a percentage (or proportion) of
the other, or how far apart they are.

    from assistant.strategies.derive_rows import derive_rows
    cell = derive_rows("What was the warranty reserve as a percentage of total accrued liabilities in 2019?", sources)
    cell.value, cell.calculation        # '14.81%', '529 / 3,571 * 100'

The question is read for two phrases, each naming a row (found as a single cell's row is, in
assistant.strategies.extract.match_rows), both in one table; the column is the one a single cell's would be
(the year named, else the header sharing words with the question, else the only value column):
- "A as a percentage of B", "the percentage (constitution) of A in/among/over B", "the proportion (in
  percentage) of A over/to/in B", "the ratio (in percentage) of A to B": A / B, times 100 when a
  percentage is asked for ("%" on the answer), else to two decimals;
- "the difference between A and B", "how much more/higher ... A than/compared to B": the larger less the
  smaller, in the rows' scale.
A question naming two years or more is a change over time (assistant.strategies.derive), not this: None.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.strategies.derive import OPERATION, plain, rounded
from assistant.strategies.extract import (
    GENERIC,
    ExtractedCell,
    RowMatch,
    match_rows,
    named_columns,
    table_words,
)
from assistant.strategies.numbers import quantities
from assistant.types import Source

_TAIL = r"(?:\s+(?:in|for|as\s+of|at|during)\s+(?:the\s+)?(?:fiscal\s+|fy\s*)?(?:year\s+)?\d{4}\b.*)?\s*\??\s*$"
_LEAD = r"^\s*(?:(?:in|for|as\s+of)\s+[^,]+,\s*)?(?:what|how\s+much)\s+(?:is|was|were|are)\s+(?:the\s+)?"
_AS_SHARE = re.compile(_LEAD + r"(?P<a>.+?)\s+as\s+a\s+(?P<kind>percentage|%|proportion|share|ratio|fraction)\s+of\s+"
                       r"(?:the\s+)?(?P<b>.+?)" + _TAIL, re.I)
_SHARE_OF = re.compile(_LEAD + r"(?P<kind>percentage|%|proportion|ratio|share)\s+(?:\(in\s+(?P<pct>percentage)\)\s+|"
                       r"constitution\s+)?of\s+(?:the\s+)?(?P<a>.+?)\s+(?:over|to|in|among|of|against|within)\s+(?:the\s+)?"
                       r"(?P<b>.+?)" + _TAIL, re.I)
_APART = re.compile(r"\bdifference\s+(?:in\s+[\w\s]+?\s+)?between\s+(?:the\s+)?(?P<a>.+?)\s+and\s+(?:the\s+)?(?P<b>.+?)"
                    + _TAIL, re.I)
_MORE_THAN = re.compile(r"\bhow\s+much\s+(?:more|higher|greater|larger)\s+(?P<a>.+?)\s+(?:than|compared\s+(?:to|with))\s+"
                        r"(?:the\s+)?(?P<b>.+?)" + _TAIL, re.I)


def _asked(question: str) -> tuple[str, str, str] | None:
    """(operation: "percent" | "ratio" | "apart", phrase of row A, phrase of row B), or None."""
    for pattern in (_AS_SHARE, _SHARE_OF):
        if m := pattern.search(question):
            kind = m.group("kind").lower()
            percent = kind in ("percentage", "%") or bool(m.groupdict().get("pct"))
            return ("percent" if percent else "ratio"), m.group("a"), m.group("b")
    for pattern in (_APART, _MORE_THAN):
        if m := pattern.search(question):
            return "apart", m.group("a"), m.group("b")
    return None


def _value(match: RowMatch, j: int) -> tuple[float, str] | None:
    """Column j of the row as (signed value, scale name); None when empty or a percentage."""
    cell = match.number(j)
    return None if cell is None or cell[2] else (cell[0], cell[3])


def _compute(operation: str, a: float, b: float, scale: str) -> tuple[str, str] | None:
    if operation == "apart":
        high, low = max(a, b), min(a, b)
        return f"{rounded(high - low)} {scale}".strip(), f"{plain(high)} - {plain(low)}"
    if b == 0:
        return None
    if operation == "percent":
        return f"{rounded(a / b * 100)}%", f"{plain(a)} / {plain(b)} * 100"
    return rounded(a / b), f"{plain(a)} / {plain(b)}"


def derive_rows(question: str, sources: Sequence[Source]) -> ExtractedCell | None:
    """The answer over the two rows the question names (see the module docstring); None when it names no
    such pair in one table of the sources."""
    years = {int(q.value) for q in quantities(question) if q.year}
    asked = _asked(question) if len(years) <= 1 else None
    if asked is None:
        return None
    operation, phrase_a, phrase_b = asked
    words_a, words_b = (table_words(p) - GENERIC - OPERATION for p in (phrase_a, phrase_b))
    question_words = table_words(question) - GENERIC - OPERATION
    rows_b = match_rows(words_b, sources)
    for x in match_rows(words_a, sources)[:5]:
        for y in rows_b:
            if y.source != x.source or y.table != x.table or y.row == x.row:
                continue
            for j, _ in named_columns(x.table, years, question_words):
                if (a := _value(x, j)) is None or (b := _value(y, j)) is None:
                    continue
                if (done := _compute(operation, a[0], b[0], a[1])) is None:
                    continue
                value, calculation = done
                span = (min(x.row.start, y.row.start), max(x.row.end, y.row.end))
                return ExtractedCell(x.source + 1, value, f'"{x.row.label}" and "{y.row.label}"',
                                     x.table.headers[j] if j < len(x.table.headers) else "",
                                     a[1] if operation == "apart" else "", x.row.cells[j], span, x.score + y.score,
                                     calculation, rows=2)
    return None


__all__ = ["derive_rows"]
