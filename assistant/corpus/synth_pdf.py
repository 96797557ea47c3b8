"""Tables of a PDF page, read with pdfplumber: rows with their labels, numeric cells, column headers, scale
and title. The geometry half of `data synth --method tables` (`assistant.corpus.synth_tables` makes the
questions).

    import pdfplumber
    from assistant.corpus.synth_pdf import page_tables
    with pdfplumber.open("BOEING_2022_10K.pdf") as pdf:
        tables = page_tables(pdf.pages[54], 55)
    tables[0].rows[2].label, tables[0].columns[0].header, tables[0].scale   # 'Total revenues', '2022', 'million'

pdfplumber's ruled-table finder (`find_tables`, "lines" strategy) says *where* the tables are: EDGAR 10-Ks
draw row shading and rules, so it finds the body of every financial statement; but its cells split "$" and
"%" from their numbers, a shaded-row layout (the Ulta release) comes out as one table per row, and the
column headings sit above the ruled body. So the regions it finds are merged when they touch, and within a
region the rows are read from pdfplumber's words: a label (the text at the left), then value cells
("$55,893", "(53,969)", "37.6%", "—"). Columns are the overlapping x-spans of the cells; each column's
header is the heading text above the region assigned to it by position; the scale comes from the nearest
"in millions" note above (or the row label); the title from the nearest short line above the headings.
"""

from __future__ import annotations

import re
from typing import Any

from assistant.corpus.synth_cells import (
    MERGE_GAP,
    SCALE,
    Cell,
    Column,
    ParsedLine,
    Row,
    Table,
    Word,
    column_of,
    columns_of,
    lines_of,
    merge_regions,
    parse_line,
    phrases,
    scale_of,
)

HEADER_GAP = 30.0  # heading lines are at most this far apart (and from the table's top)
MAX_HEADER_LINES = 8
TITLE_WORDS = 14  # a longer line above a table is prose, not its title

_STATEMENT = re.compile(r"statements?\b|balance sheets?|consolidated|summary|schedule|results of", re.I)
_DATE = re.compile(r"^(?:as of |at )?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2}\b", re.I)
_SENTENCE = re.compile(r"\b(?:as follows|following|consist(?:s|ed)? of|were|was|is|are|summarizes|shows|includes)\b", re.I)
_PERIOD_GROUP = re.compile(r"\b(weeks|months|quarters?|years?|fiscal)\b.*\b(ended|ending)\b|\bended\b", re.I)


def _title(text: str) -> str:
    text = SCALE.sub("", text)
    text = re.sub(r"\(\s*(?:dollars|except[^)]*|unaudited)?\s*,?\s*(?:except[^)]*)?\)", "", text, flags=re.I)
    text = " ".join(text.split()).strip(" :,;-—")
    if not re.search(r"[A-Za-z]{3}", text) or len(text.split()) > TITLE_WORDS or text.endswith(".") \
            or text.startswith("(") or _SENTENCE.search(text):
        return ""
    if re.search(r"table of contents|and subsidiaries|^page\b", text, re.I) or _PERIOD_GROUP.search(text) \
            or _DATE.match(text):
        return ""
    return text.title() if text.isupper() else text


def _aligned(p: ParsedLine, spans: list[tuple[float, float]]) -> bool:
    """Every cell of the row falls within a column (with a little slack): a row of this table."""
    return all(any(s0 - 10 <= (c.x0 + c.x1) / 2 <= s1 + 10 for s0, s1 in spans) for c in p.cells)


def _gap(upper: list[Word], lower: list[Word]) -> float:
    return min(w.top for w in lower) - max(w.bottom for w in upper)


def table_lines(lines: list[list[Word]], parsed: list[ParsedLine], region: tuple[float, float, float, float],
                taken: set[int]) -> list[int]:
    """The indices of the page lines that make the table in `region`: those inside it, extended to the
    aligned rows right above and below it (a shaded-row table leaves its unshaded first and last rows
    out), without the lines another table took already."""
    _, top, _, bottom = region
    body = [i for i, line in enumerate(lines)
            if i not in taken and top - 1 <= (line[0].top + line[0].bottom) / 2 <= bottom + 1]
    data = [parsed[i] for i in body if parsed[i].is_data]
    if not data:
        return body
    spans = columns_of(data)
    i = body[0] - 1
    while i >= 0 and i not in taken and parsed[i].is_data and _aligned(parsed[i], spans) \
            and _gap(lines[i], lines[i + 1]) <= MERGE_GAP:
        body.insert(0, i)
        i -= 1
    j = body[-1] + 1
    while j < len(lines) and j not in taken and _gap(lines[j - 1], lines[j]) <= MERGE_GAP:
        if parsed[j].is_data and _aligned(parsed[j], spans):
            body.append(j)
        elif (not parsed[j].cells and parsed[j].label and j + 1 < len(lines) and parsed[j + 1].is_data
              and _aligned(parsed[j + 1], spans) and _gap(lines[j], lines[j + 1]) <= MERGE_GAP):
            body += [j, j + 1]
            j += 1
        else:
            break
        j += 1
    return body


def read_table(lines: list[list[Word]], parsed: list[ParsedLine], body: list[int], floor: int, page: int,
               index: int) -> Table:
    """The rows, columns, headings, scale and title of the table made of lines `body` of a page; its
    headings, title and scale note are looked for in the lines from `floor` (after the table above) on."""
    rows = [parsed[i] for i in body]
    first_line, last_line = lines[body[0]], lines[body[-1]]
    bbox = (min(w.x0 for i in body for w in lines[i]), first_line[0].top,
            max(w.x1 for i in body for w in lines[i]), max(w.bottom for w in last_line))
    table = Table(page, index, bbox, [], [], "", "", "")
    data = [p for p in rows if p.is_data]
    if not data:
        return table
    first = next(k for k, p in enumerate(rows) if p.is_data)  # the lines before it are headings
    spans = columns_of(data)
    # a heading phrase ends before the first column (the stub: "Years ended December 31,"), or starts
    # near or right of it (a column heading); one that starts well left of it and runs into it is a title
    left = spans[0][0] - max(30.0, spans[0][1] - spans[0][0])
    heading = [lines[i] for i in body[:first]]
    above = lines[floor:body[0]]
    stub: list[str] = []
    title = ""
    notes: list[str] = [p.label for p in rows[:first]]  # text that may state the scale
    ceiling = lines[body[first]] if not heading else heading[0]
    above_k = len(above) - 1  # the line above the headings (-1: none), a title candidate
    for k in range(len(above) - 1, -1, -1):
        line, p = above[k], parsed[floor + k]
        above_k = k
        if _gap(line, ceiling) > HEADER_GAP or len(heading) >= MAX_HEADER_LINES:
            break
        if p.is_data or len(line) > 2 * TITLE_WORDS:
            break
        if any(a < left and b > spans[0][0] - 2 for _, a, b in phrases(line)):
            title = _title(" ".join(w.text for w in line))
            notes.append(" ".join(w.text for w in line))
            break
        heading.insert(0, line)
        ceiling = line
        above_k = k - 1
    columns: list[list[str]] = [[] for _ in spans]
    for line in heading:
        parts = phrases(line)
        stub += [t for t, a, b in parts if b <= spans[0][0] - 2]
        heads = [(t, a, b) for t, a, b in parts if b > spans[0][0] - 2]
        if not heads:
            continue
        # a line of fewer period groups than columns ("13 Weeks Ended", "52 Weeks Ended") spans them:
        # each column takes the nearest; otherwise a column takes the heading over its own slot
        group = all(_PERIOD_GROUP.search(t) for t, _, _ in heads) and len(heads) < len(spans)
        for j, (s0, s1) in enumerate(spans):
            lo = (spans[j - 1][1] + s0) / 2 if j else s0 - max(15.0, s1 - s0)
            hi = (s1 + spans[j + 1][0]) / 2 if j + 1 < len(spans) else s1 + max(15.0, s1 - s0)
            centre = (s0 + s1) / 2
            near = sorted(heads, key=lambda h: abs((h[1] + h[2]) / 2 - centre))
            pick = near[0] if group else next((h for h in near if h[1] < hi and h[2] > lo), None)
            if pick is not None:
                columns[j].append(pick[0])
    notes = stub[::-1] + notes
    if not title:
        # nearest first; a statement's name before a section's ("Current assets:", "Assets")
        named = [(t, s) for t, s in ((_title(s), s) for s in reversed(stub)) if t]
        title = next((t for t, _ in named if _STATEMENT.search(t)),
                     next((t for t, s in named if " " in t and not s.rstrip().endswith(":")), ""))
    if not title:  # the nearest short line above the headings
        k = above_k
        if k >= 0 and not parsed[floor + k].is_data and _gap(above[k], ceiling) <= HEADER_GAP * 1.5:
            title = _title(" ".join(w.text for w in above[k]))
    scale = next((s for s in map(scale_of, notes) if s), "")
    if not scale:  # the nearest note above the table on the page
        scale = next((s for s in (scale_of(" ".join(w.text for w in line)) for line in reversed(lines[:body[0]])) if s), "")
    table.columns = [Column(" ".join(h), a, b) for h, (a, b) in zip(columns, spans, strict=True)]
    table.scale, table.title, table.stub = scale, title, " ".join(stub)
    _rows(table, rows[first:], spans)
    return table


def _rows(table: Table, parsed: list[ParsedLine], spans: list[tuple[float, float]]) -> None:
    """Fill in the table's rows: label-only lines become the section of the rows below them, or the start
    of a label that wraps onto the next line."""
    section = ""
    pending = ""  # a label-only line whose label may continue on the next line
    for p in parsed:
        if not p.cells and p.label and not p.text_after:
            section, pending = p.label, p.label
            continue
        label = p.label
        if pending and label[:1].islower():  # "Net costs for significant" / "litigation  205  ..."
            label = f"{pending} {label}"
            section = ""
        pending = ""
        if not p.cells:
            continue
        if p.text_after:
            table.skipped_rows["text_in_values"] += 1
            continue
        if not label:
            table.skipped_rows["unlabeled_row"] += 1
            continue
        cells: list[Cell | None] = [None] * len(spans)
        clash = False
        for cell in p.cells:
            j = column_of(cell, spans)
            clash = clash or cells[j] is not None
            cells[j] = cell
        if clash:
            table.skipped_rows["misaligned_row"] += 1
            continue
        table.rows.append(Row(label, section.rstrip(":"), tuple(cells)))


def words_of(page: Any) -> list[Word]:
    """pdfplumber's words of a page as Word records."""
    return [Word(w["text"], float(w["x0"]), float(w["x1"]), float(w["top"]), float(w["bottom"]))
            for w in page.extract_words(keep_blank_chars=False, use_text_flow=False)]


def page_tables(page: Any, number: int) -> list[Table]:
    """The tables of a pdfplumber page (`number` is 1-based), top to bottom."""
    boxes = [(float(a), float(b), float(c), float(d)) for a, b, c, d in (t.bbox for t in page.find_tables())]
    if not boxes:
        return []
    lines = lines_of(words_of(page))
    parsed = [parse_line(line) for line in lines]
    taken: set[int] = set()
    tables: list[Table] = []
    floor = 0
    for region in merge_regions(boxes):
        body = table_lines(lines, parsed, region, taken)
        if not body:
            continue
        taken.update(body)
        tables.append(read_table(lines, parsed, body, floor, number, len(tables)))
        floor = body[-1] + 1
    return tables


__all__ = ["page_tables", "read_table", "table_lines", "words_of"]
