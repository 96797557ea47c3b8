"""`data synth --method tables`: questions from the tables of a corpus's PDF pages, no model needed.

    from assistant.corpus.synth_tables import tables_task
    out = tables_task("BOEING_2022_10K.pdf", [(55, "filings:BOEING_2022_10K:p55", page_text)], meta)
    out["items"][2]["question"]   # "What was Boeing's total revenues for the year ended December 31, 2022
                                  #  (in millions), per its Consolidated Statements of Operations?"
    out["items"][2]["answer"]     # "66,608 million"  (answer_raw "66,608", scale "million")

Each numeric cell of a table whose column heading names one period ("2022", "December 31, 2022",
"13 Weeks Ended January 28, 2023") becomes "What was <company>'s <row label> <period> (<scale>), per its
<table title>?"; its answer is the cell's signed value ("(53,969)" -> "-53,969", the accounting sign)
with its TAT-QA scale, so the project's numeracy metric scores it ("$66,608 million" and "66608 million"
are right, "66,608" is not; "(53,969)" reads as positive to that metric, hence the minus sign). Per-share rows carry no scale; percentages carry "percent". Kept only when the cell's
number is found in the page's text (the corpus document, what retrieval sees) and not in the question.

`tables_task` runs in a worker process (`assistant.corpus.synth` runs a pool): it opens the PDF with
pdfplumber, reads the tables of the given pages (`assistant.corpus.synth_pdf`) and returns plain data.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

from assistant.corpus.synth_cells import Cell, Row, Table, scale_of
from assistant.corpus.synth_pdf import page_tables

MAX_EXAMPLES = 3  # per problem reason
MAX_QUESTION = 300
MIN_QUESTION = 20
MIN_LABEL, MAX_LABEL = 2, 150
MAX_MEASURE_WORDS = 6
_NUMERIC_LINE = re.compile(r"\(?\$?\d[\d,]*(?:\.\d+)?\)?%?")
_YEAR = re.compile(r"^(?:FY)?((?:19|20)\d{2})$", re.I)
_MONTH = re.compile(r"^(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?$", re.I)
_PERIOD_WORDS = {"weeks", "week", "months", "month", "ended", "ending", "year", "years", "fiscal", "quarter",
                 "three", "six", "nine", "twelve", "thirteen", "as", "of", "at", "fy", "first", "second", "third",
                 "fourth", "q1", "q2", "q3", "q4", "full", "for", "the"}
_NOISE = re.compile(r"\((?:unaudited|audited|[a-z]|\d{1,2})\)|\bunaudited\b|[*†‡]+", re.I)
_FOOTNOTE = re.compile(r"\s*(?:\((?:[a-z]|\d{1,2})\)|[*†‡]+|\d\))\s*$")
_STUB_PERIOD = re.compile(r"\b(?:fiscal\s+)?years?\s+ended\s+((?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2})",
                          re.I)
_STUB_DATE = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},?(?=\s*$|\s+[A-Z(])", re.I)
_SCALE_NOTE = re.compile(r"\s*\((?:\$|dollars)?\s*(?:in\s+)?(?:thousands|millions|billions)\)", re.I)
_GENERIC = {"total", "other", "net", "basic", "diluted", "other, net", "total other", "subtotal", "all other",
            "thereafter", "gross", "ending balance", "beginning balance", "balance", "amount", "change"}
_PER_SHARE = re.compile(r"per (?:common |ordinary |diluted |basic )?share|\beps\b|dividends? declared per", re.I)
_PERCENT_WORDS = re.compile(r"%|\bpercent(?:age)?\b", re.I)
_HUGE = {"thousand": 1e9, "million": 1e7, "billion": 1e5}  # a value this large at this scale is not one
SCALE_WORDS = {"thousand": "thousands", "million": "millions", "billion": "billions", "percent": "percent"}


def table_page(text: str, min_lines: int = 3) -> bool:
    """Whether a page's text has at least `min_lines` lines that read like table rows (a short label, then
    two or more numbers or dashes, ending with one): a page worth reading tables from. The rest (prose,
    about half of a 10-K's pages) is never opened: pdfplumber's character parsing is the slow part."""
    rows = 0
    for line in text.splitlines():
        tokens = line.split()
        values = [t for t in tokens if _NUMERIC_LINE.fullmatch(t) or t in ("—", "–", "-", "$", "%")]
        if len(values) - tokens.count("$") - tokens.count("%") >= 2 and tokens[-1] in values \
                and len(tokens) - len(values) <= 15:
            rows += 1
    return rows >= min_lines


def company_name(meta: dict[str, Any]) -> str:
    """How a question names the filer: "BOEING" -> "Boeing", "3M" stays, else the document's name."""
    raw = str(meta.get("company") or meta.get("document") or "").replace("_", " ").strip()
    return " ".join(w if any(ch.isdigit() for ch in w) else w.capitalize() for w in raw.split())


def split_period(header: str) -> tuple[str, str] | None:
    """(period, measure) of a column heading: "13 Weeks Ended January 28, 2023" -> (that, ""),
    "2022 Net Sales" -> ("2022", "Net Sales"); None unless it names exactly one year."""
    tokens = _NOISE.sub(" ", header).split()
    years = [i for i, t in enumerate(tokens) if _YEAR.match(t.strip(",.:;"))]
    if len(years) != 1:
        return None

    def periodic(tok: str) -> bool:
        word = tok.strip(",.:;()").lower()
        return word in _PERIOD_WORDS or bool(_MONTH.match(word)) or (word.isdigit() and len(word) <= 2)

    i = j = years[0]
    while i > 0 and periodic(tokens[i - 1]):
        i -= 1
    while j + 1 < len(tokens) and periodic(tokens[j + 1]):
        j += 1
    period = " ".join(tokens[i:j + 1]).strip(" ,:;")
    measure = " ".join(tokens[:i] + tokens[j + 1:]).strip(" ,:;-—")
    if len(measure.split()) > MAX_MEASURE_WORDS:
        return None
    return period, measure


def period_phrase(period: str, stub: str) -> str:
    """How the question says when: "in 2022", "as of December 31, 2022", "for the year ended ...", ..."""
    words = [w if _MONTH.match(w) or w.lower() not in _PERIOD_WORDS else w.lower() for w in period.split()]
    text = " ".join(words)
    first = words[0].lower().strip(",")
    if _YEAR.match(text):  # "2022" under "Years ended December 31," or "December 31,"
        day = _STUB_PERIOD.search(stub)
        if day:
            return f"for the year ended {day.group(1)}, {text}"
        date = _STUB_DATE.search(stub)
        return f"as of {date.group(0).rstrip(',')}, {text}" if date else f"in {text}"
    if _MONTH.match(first):
        return f"as of {text}"
    if first.isdigit() or first in ("three", "six", "nine", "twelve", "thirteen", "year", "years", "quarter"):
        return "for the " + re.sub(r"^years\b", "year", text)
    if first in ("as", "at", "for"):
        return text
    return f"in {text}"


def row_phrase(row: Row) -> str:
    label = _FOOTNOTE.sub("", _SCALE_NOTE.sub("", row.label)).strip(" :")
    if label.lower() in _GENERIC and row.section:
        label = f"{row.section} ({label.lower()})"
    words = label.split()
    # sentence case ("Total revenues") reads lower-cased in a question; a name ("Boeing Capital") does not
    if words and words[0][:1].isupper() and words[0][1:].islower() and (len(words) == 1 or not words[1][:1].isupper()):
        label = label[:1].lower() + label[1:]
    return label


def cell_scale(table: Table, row: Row, cell: Cell, measure: str) -> str:
    """The TAT-QA scale of one cell: percent, none for per-share amounts, else the table's (or the row's:
    "Net sales (millions)")."""
    if cell.percent or "%" in measure or "%" in row.label:
        return "percent"
    if _PER_SHARE.search(f"{row.label} {row.section}"):
        return ""
    return scale_of(row.label) or table.scale


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}


def in_text(number: str, text: str) -> bool:
    """Whether `number` ("66,608") is printed in `text` as a whole number (not inside "166,608.5")."""
    return re.search(rf"(?<![\d.,]){re.escape(number)}(?![\d]|[.,]\d)", text) is not None


class Problems:
    """Counts by reason, with a few examples of each: what the report shows for bad input."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, reason: str, example: str, n: int = 1) -> None:
        self.counts[reason] += n
        kept = self.examples.setdefault(reason, [])
        if len(kept) < MAX_EXAMPLES:
            kept.append(example)

    def merge(self, counts: dict[str, int], examples: dict[str, list[str]]) -> None:
        self.counts.update(counts)
        for reason, some in examples.items():
            kept = self.examples.setdefault(reason, [])
            kept += some[: MAX_EXAMPLES - len(kept)]


def table_items(table: Table, doc_id: str, meta: dict[str, Any], page_text: str, problems: Problems) -> list[dict[str, Any]]:
    """The question records of one table (filters applied, problems counted)."""
    where = f"{meta.get('file', doc_id)}, page {table.page}, table {table.index + 1}"
    periods = [split_period(c.header) for c in table.columns]
    if not table.rows:
        problems.add("table_without_rows", where)
        return []
    if not any(periods):
        problems.add("table_without_period_headers", f"{where} ('{table.rows[0].label}' ...; headings "
                     f"{[c.header for c in table.columns]})")
        return []
    for reason, n in table.skipped_rows.items():
        problems.add(reason, where, n)
    company = company_name(meta)
    items = []
    for r, row in enumerate(table.rows):
        label = row_phrase(row)
        if not MIN_LABEL <= len(label) <= MAX_LABEL or not re.search(r"[A-Za-z]{3}", label):
            problems.add("label_length", f"{where}: '{row.label}'")
            continue
        for c, (cell, period) in enumerate(zip(row.cells, periods, strict=True)):
            if cell is None or cell.kind != "number" or period is None:
                continue
            when, measure = period
            scale = cell_scale(table, row, cell, measure)
            if scale == "percent":
                measure = _PERCENT_WORDS.sub("", measure).strip(" ,()")
            what = f"{label} ({measure})" if measure else label
            unit = f" (in {SCALE_WORDS[scale]})" if scale else ""
            per = f", per its {table.title}" if table.title else ""
            question = f"What was {company}'s {what} {period_phrase(when, table.stub)}{unit}{per}?"
            answer = f"{cell.value}%" if scale == "percent" else f"{cell.value} {scale}".strip()
            example = f"{where}: {question} -> {answer}"
            if scale in _HUGE and abs(float(cell.number.replace(",", ""))) >= _HUGE[scale]:
                problems.add("implausible_scale", example)  # a share count in a table of dollars in millions
                continue
            if not in_text(cell.number, page_text):
                problems.add("answer_not_in_page_text", example)
                continue
            if cell.number.replace(",", "") in _numbers(question):
                problems.add("answer_in_question", example)
                continue
            if not MIN_QUESTION <= len(question) <= MAX_QUESTION:
                problems.add("question_length", example)
                continue
            items.append({
                "question": question, "answer": answer, "answer_raw": cell.value, "scale": scale,
                "doc_id": doc_id, "page": table.page, "table": table.index, "row": r, "column": c,
                "row_label": row.label, "column_header": table.columns[c].header, "period": when,
                "title": table.title, "cell": cell.text,
            })
    return items


def tables_task(path: str, pages: list[tuple[int, str, str]], meta: dict[str, Any]) -> dict[str, Any]:
    """A pool task: the question records of `pages` ((1-based page, document id, page text)) of one PDF,
    with the pages and tables read and the problems met, as plain data (it is cached as JSON)."""
    import logging

    import pdfplumber

    logging.getLogger("pdfminer").setLevel(logging.ERROR)  # "Cannot set gray non-stroke color" and the like
    start, cpu = time.perf_counter(), time.process_time()
    problems = Problems()
    items: list[dict[str, Any]] = []
    n_tables = 0
    try:
        pdf = pdfplumber.open(path)
    except Exception as exc:  # corrupt, changed since prepare, locked
        problems.add("unreadable_pdf", f"{meta.get('file', path)}: {exc.__class__.__name__}: {exc}")
        return {"items": [], "pages": 0, "tables": 0, "problems": dict(problems.counts),
                "examples": problems.examples, "seconds": time.perf_counter() - start,
                "cpu_seconds": time.process_time() - cpu}
    with pdf:
        for number, doc_id, text in pages:
            try:
                page = pdf.pages[number - 1]
                tables = page_tables(page, number)
                page.close()  # frees its parsed objects: a 300-page 10-K otherwise grows to GBs
            except Exception as exc:
                problems.add("unreadable_page", f"{meta.get('file', path)}, page {number}: {exc.__class__.__name__}: {exc}")
                continue
            n_tables += len(tables)
            for table in tables:
                items += table_items(table, doc_id, meta, text, problems)
    return {"items": items, "pages": len(pages), "tables": n_tables, "problems": dict(problems.counts),
            "examples": problems.examples, "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu}


__all__ = ["Problems", "company_name", "in_text", "period_phrase", "row_phrase", "split_period", "table_items",
           "table_page", "tables_task"]
