"""Answers a table gives in one step over the row a question names: the change, percentage change or
average across the years it names, or the year in which the row is largest or smallest.

    from assistant.strategies.derive import derive_cell
    cell = derive_cell("What was the change in research and development expense between 2017 and 2018?", sources)
    cell.value, cell.calculation        # '273 million', '6,332 - 6,059'

The row is found as for a single cell (assistant.strategies.extract.match_rows), the columns by the years:
- "change" / "increase" / "decrease" with two years: the later year's cell minus the earlier's; "difference":
  the larger less the smaller (how far apart they are);
- "percentage change" (also "% change", "growth rate", "change in percent") with two years, or with one
  ("in 2019": over the year before): (later - earlier) / earlier * 100; a change in one year "compared to
  the previous year" likewise;
- "average" over the years named ("from 2017 to 2019", "2017-2019": each year of the range); one year named ("the 2019
  average ...") means that year and the one before, the opening and closing balance of the year;
- "total" / "sum" of two years named, or of a range of years (and no change asked for): their sum;
- two years or more named with nothing to compute ("... in 2019 and 2018, respectively"): each year's
  cell, in the order asked ("$2,515; $1,310"; "2019 to 2017 respectively": each year of the range);
- no year named: "average" over every year the row's table has, "change" / "percentage change" over its two;
- "which years" / "the years included" with no other number named: the years the row's table has columns for;
- a threshold on the row's cells, as the table writes them ("exceed $1,500 thousand", "less than 10,000,000",
  "negative"): "how many years ..." counts the years that meet it, "which year(s) ..." names them;
- "in which year ... larger / largest / higher / lower / smaller / less" with no other number named: the
  year whose cell is the largest (or smallest), among the years named if any ("between 2018 and 2019").
The answer states the calculation on its own line ("Calculation: 6,332 - 6,059"), so a reader (and the
evaluation's arithmetic parser) can redo it; the number it computes is shown by no source, and its check
says it was computed from the cells (assistant.strategies.modes). Anything else is not derived: None.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.strategies.extract import (
    GENERIC,
    PERCENT_WORD,
    ExtractedCell,
    RowMatch,
    match_rows,
    table_words,
    year_columns,
)
from assistant.strategies.numbers import quantities
from assistant.strategies.tables import read_tables
from assistant.types import Source

_PERCENT = re.compile(r"\bpercent(?:age)?\s+(?:change|increase|decrease|growth|decline)|%\s*change|growth\s+rate|"
                      r"\b(?:change|variance|increase|decrease)\s+in\s+(?:percent(?:age)?|%)(?!\s+(?:of|points?)\b)", re.I)
_CHANGE = re.compile(r"\b(?:change|difference|increase|decrease|decline|growth|grow|grew)\b", re.I)
_AVERAGE = re.compile(r"\b(?:average|mean)\b", re.I)
_SUM = re.compile(r"\b(?:total|sum|combined|altogether)\b", re.I)
_RESPECTIVE = re.compile(r"\brespective(?:ly)?\b", re.I)
_YEARS = re.compile(r"\b(?:which|what)\s+(?:are\s+the\s+)?(?:fiscal\s+|financial\s+)?years\b|\byears\s+(?:included|shown|"
                    r"listed)\b", re.I)
_HOW_MANY_YEARS = re.compile(r"\bhow\s+many\s+(?:fiscal\s+)?years\b", re.I)
_ABOVE = re.compile(r"\b(?:exceed(?:ed|s|ing)?|(?:greater|more|higher|larger|bigger)\s+than|above|over)\s+\$?\s?"
                    r"(\d[\d,]*(?:\.\d+)?)", re.I)
_BELOW = re.compile(r"\b(?:(?:less|lower|smaller|fewer)\s+than|below|under)\s+\$?\s?(\d[\d,]*(?:\.\d+)?)", re.I)
_SIGN = re.compile(r"\b(negative|positive)\b", re.I)
_RANGE = re.compile(r"\b(?:from\s+|years\s+|between\s+)?(?:fiscal\s+|fy\s*)?(\d{4})\s*(?:to|through|until|[-–])\s*"
                    r"(?:fiscal\s+|fy\s*)?(\d{4})\b", re.I)
_PREVIOUS = re.compile(r"\b(?:previous|prior|preceding|last)\s+(?:fiscal\s+)?year\b|\bfrom\s+the\s+year\s+before\b", re.I)
_DIFFERENCE = re.compile(r"\bdifference\b", re.I)
_WHICH = re.compile(r"\b(?:which|what)\s+(?:fiscal\s+|financial\s+)?year\b", re.I)
_MORE = re.compile(r"\b(?:larger|largest|higher|highest|greater|greatest|more|most|bigger|biggest|maximum)\b", re.I)
_LESS = re.compile(r"\b(?:smaller|smallest|lower|lowest|less|least|fewer|minimum)\b", re.I)
# the words that say what to compute, not which row to read
OPERATION = frozenset({"change", "difference", "increase", "decrease", "decline", "growth", "grow", "grew", "average",
                        "mean", "sum", "combined", "altogether", "percentage", "percent", "rate", "larger", "largest", "higher", "highest", "greater",
                        "greatest", "more", "most", "smaller", "smallest", "lower", "lowest", "less", "least",
                        "between", "compared", "previou", "prior", "which"})


def plain(value: float) -> str:
    """A number for a calculation line: "6,332", "-3.1" in parentheses when negative."""
    text = f"{abs(value):,.4f}".rstrip("0").rstrip(".")
    return f"(-{text})" if value < 0 else text


def rounded(value: float) -> str:
    """A computed answer: two decimals at most, thousands separated ("995,684.5", "-9.03")."""
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def condition(question: str) -> tuple[str, float] | None:
    """The threshold a question puts on a row's cells, as the table writes them ("exceed $1,500 thousand" ->
    (">", 1500.0); "less than 10,000,000" -> ("<", 1e7); "negative" -> ("<", 0.0)); None when it puts none."""
    if m := _ABOVE.search(question):
        return ">", float(m.group(1).replace(",", ""))
    if m := _BELOW.search(question):
        return "<", float(m.group(1).replace(",", ""))
    if m := _SIGN.search(question):
        return ("<" if m.group(1).lower() == "negative" else ">"), 0.0
    return None


def _kind(question: str, years: list[int]) -> tuple[str, list[int]] | None:
    """What to compute and over which years (in the order of the table's time: earlier first; cells: as asked)."""
    amounts = [q for q in quantities(question) if not q.year]
    if condition(question) and len(years) != 1:  # "how many years did ... exceed", "in which year was ... negative"
        if _HOW_MANY_YEARS.search(question):
            return "count", years
        if _WHICH.search(question) or _YEARS.search(question):
            return "where", years
    if _YEARS.search(question) and not years and not amounts:
        return "years", []
    if len(years) >= 2 and _RESPECTIVE.search(question) and not (_RANGE.search(question) and len(years) == 2):
        return "cells", years
    if _WHICH.search(question) and len(years) != 1 and not amounts:  # "(between 2018 and 2019,) which year ..."
        more, less = bool(_MORE.search(question)), bool(_LESS.search(question))
        return ("max" if more else "min", years) if more != less else None
    span = _RANGE.search(question)
    ranged = [int(y) for y in span.groups()] if span and len(years) == 2 else []
    if ranged and abs(ranged[1] - ranged[0]) <= 10:  # "from 2017 to 2019", "2017-2019", "2019 to 2017": each year
        step = 1 if ranged[1] >= ranged[0] else -1
        ranged = list(range(ranged[0], ranged[1] + step, step))
    if _AVERAGE.search(question):  # no year named: over every year of the row's table
        if len(years) == 1:
            return "average", [years[0] - 1, years[0]]
        return "average", sorted(ranged or years)
    if not years and not amounts and (_PERCENT.search(question) or (_CHANGE.search(question)
                                                                  and not _DIFFERENCE.search(question))):
        return ("percent" if _PERCENT.search(question) else "change"), []  # over the table's two years
    if len(years) == 1 and (_PERCENT.search(question) or (_PREVIOUS.search(question) and _CHANGE.search(question))):
        years = [years[0] - 1, years[0]]  # "the percentage change in ... in 2019", "... compared to the previous year"
    if len(ranged) > 2 and _RESPECTIVE.search(question):
        return "cells", ranged
    if len(ranged) > 2 and _SUM.search(question) and not (_PERCENT.search(question) or _CHANGE.search(question)):
        return "sum", ranged
    if len(years) > 2 and not (_PERCENT.search(question) or _CHANGE.search(question) or _SUM.search(question)):
        return "cells", years
    if len(years) != 2:
        return None
    if _PERCENT.search(question):
        return "percent", sorted(years)
    if _CHANGE.search(question):
        return "difference" if _DIFFERENCE.search(question) else "change", sorted(years)
    if _SUM.search(question):
        return "sum", sorted(years)
    return "cells", years


def _numbers(match: RowMatch, columns: list[int]) -> list[tuple[float, str, str]] | None:
    """(value, as answered, scale) of each column's cell; None when one is empty or a percentage mixes in."""
    out = []
    for j in columns:
        if (cell := match.number(j)) is None:
            return None
        out.append((cell[0], cell[1], cell[3]))
    if len({r[1].endswith("%") for r in out}) > 1:
        return None
    return out


def _year_of_columns(match: RowMatch) -> dict[int, int]:
    """Each year the table's headers name alone, with its (first) column."""
    per_year: dict[int, int] = {}
    for j, header in enumerate(match.table.headers):
        header_years = [int(q.value) for q in quantities(header) if q.year]
        if len(header_years) == 1 and j < len(match.row.cells):
            per_year.setdefault(header_years[0], j)
    return per_year


def _compute(kind: str, years: list[int], match: RowMatch, test: tuple[str, float] | None = None,
             ) -> tuple[str, str, list[int]] | None:
    """(answer value, calculation, the columns read) for one row; None when its table lacks a year named.
    `test`: the threshold of "count" and "where" (see `condition`)."""
    if not years and kind in ("average", "change", "percent"):  # every year of the table; a change: its two
        per_year = _year_of_columns(match)
        years = sorted(per_year)
        if len(years) < 2 or (kind != "average" and len(years) != 2):
            return None
    if kind in ("years", "max", "min", "count", "where"):
        per_year = _year_of_columns(match)
        if years and kind != "years":  # "between 2018 and 2019, which year ...": those years only
            per_year = {y: j for y, j in per_year.items() if y in years}
            if len(per_year) != len(years):
                return None
        if len(per_year) < 2:
            return None
        if kind == "years":
            return "; ".join(map(str, per_year)), "", list(per_year.values())
        if (read := _numbers(match, list(per_year.values()))) is None:
            return None
        by_year = dict(zip(per_year, (v for v, _, _ in read), strict=True))
        if kind in ("count", "where") and test is not None:
            op, limit = test
            meeting = [y for y, v in by_year.items() if (v > limit if op == ">" else v < limit)]
            if kind == "count":
                return str(len(meeting)), "", list(per_year.values())
            return ("; ".join(map(str, meeting)), "", list(per_year.values())) if meeting else None
        chosen = (max if kind == "max" else min)(by_year, key=lambda y: by_year[y])
        return str(chosen), "", list(per_year.values())
    columns = []
    for year in years:
        found = year_columns(match.table, year)
        if not found:
            return None
        columns.append(found[0])
    if len(set(columns)) != len(columns) or (read := _numbers(match, columns)) is None:
        return None
    values = [v for v, _, _ in read]
    scale = read[0][2]
    if kind == "cells":
        return "; ".join(f"{shown} {scale}".strip() for _, shown, scale in read), "", columns
    unit = f" {scale}" if scale else ("%" if read[0][1].endswith("%") else "")
    if kind == "difference":  # "the difference between 2018 and 2019": how far apart, the larger less the smaller
        high, low = max(values), min(values)
        return f"{rounded(high - low)}{unit}".replace(" %", "%"), f"{plain(high)} - {plain(low)}", columns
    if kind == "change":
        return f"{rounded(values[1] - values[0])}{unit}".replace(" %", "%"), f"{plain(values[1])} - {plain(values[0])}", columns
    if kind == "percent":
        if values[0] == 0:
            return None
        pct = (values[1] - values[0]) / abs(values[0]) * 100
        return f"{rounded(pct)}%", f"({plain(values[1])} - {plain(values[0])}) / {plain(abs(values[0]))} * 100", columns
    if kind == "sum":
        return f"{rounded(sum(values))}{unit}".replace(" %", "%"), " + ".join(plain(v) for v in values), columns
    mean = sum(values) / len(values)
    calc = f"({' + '.join(plain(v) for v in values)}) / {len(values)}"
    return f"{rounded(mean)}{unit}".replace(" %", "%"), calc, columns


def derive_cell(question: str, sources: Sequence[Source]) -> ExtractedCell | None:
    """The derived answer of the best row the question names (see the module docstring); None when none."""
    years = list(dict.fromkeys(int(q.value) for q in quantities(question) if q.year))
    kind = _kind(question, years)
    if kind is None:
        return None
    what, over = kind
    question_words = table_words(question) - GENERIC - OPERATION - ({PERCENT_WORD} if _PERCENT.search(question) else set())
    matches = match_rows(question_words, sources)
    if what == "years":  # "what years does the table show?": any row of the first table with years will do
        matches += [RowMatch(i, t, t.rows[0], 0.0, None) for i, s in enumerate(sources) for t in read_tables(s.snippet)]
    test = condition(question)
    for match in matches:
        done = _compute(what, over, match, test)
        if done is None:
            continue
        value, calculation, columns = done
        row, headers = match.row, match.table.headers
        scale = next((r[2] for j in columns if (r := match.read(j)) is not None), "")
        named = " and ".join(f'"{headers[j]}"' for j in columns)
        if what in ("max", "min", "count", "where"):
            named = " and ".join(f'"{headers[j]}" ({match.row.cells[j].text})' for j in columns)
        return ExtractedCell(match.source + 1, value, row.label, named, "" if what in ("percent", "years", "count", "where") else scale,
                             row.cells[columns[0]], (row.start, row.end), match.score, calculation, len(columns))
    return None


__all__ = ["OPERATION", "derive_cell", "plain", "rounded"]
