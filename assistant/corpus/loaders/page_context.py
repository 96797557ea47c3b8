"""What each page of a long PDF is about, for the chunks cut from it: who issued the document, what kind of
document it is and for which period, the part it sits in and the page's own heading.

    contexts = page_contexts(texts, {"company": "BOEING", "year": 2022, "form": "10K"})
    contexts[114]   # "The Boeing Company, Form 10-K annual report, fiscal 2022. Item 8. Financial Statements
                    #  and Supplementary Data. Consolidated Statements of Operations. (in millions)"

A chunk from the middle of a 10-K page reads "Total revenues  66,608  62,286": neither the company, the
year nor the statement is in it, so neither an embedder nor BM25 can tell it from another filing's. The
index puts this context before every chunk of the page (assistant.index.chunking), so that "Boeing's
total revenue in 2022" finds Boeing's income statement.

Heuristics, all on the text of the pages alone: the registrant is the line above "(Exact name of registrant
as specified in its charter)" on the cover; the part is the last "Item N." heading seen (carried over the
pages that follow; a page listing three or more Items is a table of contents and changes nothing); the
page's heading is its first one or two short title-like lines ("Table of Contents" running heads skipped);
the units are the page's first "(in millions)"-style note.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from assistant.text import squash
from assistant.types import MetaValue

KINDS = {"10K": "Form 10-K annual report", "10-K": "Form 10-K annual report", "10Q": "Form 10-Q quarterly report",
         "10-Q": "Form 10-Q quarterly report", "8K": "Form 8-K current report", "8-K": "Form 8-K current report",
         "20F": "Form 20-F annual report", "EARNINGS": "earnings release"}
COVER_PAGES = 5
SUFFIXES = {"inc", "company", "corporation", "corp", "co", "plc", "ltd", "llc", "sa", "ag", "nv"}
MAX_HEADING = 90
_REGISTRANT = re.compile(r"\(\s*exact name of (?:the )?registrant", re.IGNORECASE)
_ITEM = re.compile(r"^(?:PART\s+[IV]+\s*[.,:-]?\s*)?ITEM\s+(\d{1,2}[A-C]?)\s*[.:-]?\s*(.*)$", re.IGNORECASE)
_UNITS = re.compile(r"\(\s*(?:\$|dollars|amounts|in|u\.s\.)?[^()\n]{0,20}?\b(thousands|millions|billions)\b[^()\n]{0,40}\)",
                    re.IGNORECASE)
_RUNNING_HEAD = re.compile(r"^(?:table of contents|index|back to contents|\d+|page \d+)$", re.IGNORECASE)



def registrant(texts: Sequence[str | None], company: str = "") -> str:
    """The issuer's name as the first pages state it, or "": the line above "(Exact name of registrant ...)",
    else a short line there that spells the file name's company ("THE BOEING COMPANY" for BOEING)."""
    pages = [[line.strip() for line in (text or "").splitlines()] for text in texts[:COVER_PAGES]]
    for lines in pages:
        for i, line in enumerate(lines):
            if _REGISTRANT.search(line):
                above = [x for x in lines[:i] if x]
                if above and len(above[-1]) <= MAX_HEADING:
                    return " ".join(re.split(r"\s{2,}", above[-1])[0].split())
    key = squash(company)
    for lines in pages if key else []:
        for line in lines:
            words = re.split(r"\s{2,}", line)[0].split()
            if len(" ".join(words)) > 60:
                continue
            first = 1 if words and words[0].lower() == "the" else 0
            for n in range(first + 1, len(words) + 1):
                squashed = squash(" ".join(words[first:n]))
                if squashed == key:
                    while n < len(words) and squash(words[n]) in SUFFIXES:
                        n += 1
                    name = " ".join(words[:n])
                    if n > 1 or name.isupper():
                        return name
                if not key.startswith(squashed):
                    break
    return ""


def describe(meta: Mapping[str, MetaValue], issuer: str = "") -> str:
    """"The Boeing Company, Form 10-K annual report, fiscal 2022" from a filing's metadata (see
    loaders.files.filing_metadata) and the registrant's name; "" when there is neither."""
    company = issuer or " ".join(str(meta.get("company", "")).replace("_", " ").split())
    form = str(meta.get("form", ""))
    kind = KINDS.get(form.upper(), form)
    year, quarter = meta.get("year"), meta.get("quarter")
    period = f"{quarter} {year}" if quarter and year else f"fiscal {year}" if year else ""
    return ", ".join(p for p in (company, kind, period) if p)


def _is_title(line: str) -> bool:
    words = re.findall(r"[A-Za-z][A-Za-z'’&-]*", line)
    if not words or len(line) > MAX_HEADING or re.search(r"\s{2,}", line) or line[-1] in ".,;":
        return False
    if sum(c.isdigit() for c in line) > len(line) / 3:
        return False
    long = [w for w in words if len(w) > 3]
    return line.isupper() or not long or sum(w[0].isupper() for w in long) >= 0.6 * len(long)


def heading(text: str) -> str:
    """The page's own heading: its first one or two title-like lines, running heads and Item headings (the
    part, see `items`) skipped; or ""."""
    lines = [line.strip() for line in text.splitlines() if line.strip()][:5]
    lines = [x for x in lines if not _RUNNING_HEAD.match(x) and not _ITEM.match(" ".join(x.split()))]  # Items: the part
    out: list[str] = []
    for line in lines[:3]:
        if not _is_title(line):
            break
        out.append(line.rstrip(":"))
        if len(out) == 2:
            break
    return " — ".join(out)


def items(text: str) -> list[str]:
    """The "Item N. Title" headings on a page, as written."""
    found = []
    for line in text.splitlines():
        line = " ".join(line.split())
        match = _ITEM.match(line)
        if match and len(line) <= 2 * MAX_HEADING and not line.endswith((",", ";")) and (
                not match[2] or match[2][0].isupper()):
            found.append(line.split("  ")[0])
    return found


def units(text: str) -> str:
    match = _UNITS.search(text)
    return f"(in {match[1].lower()})" if match else ""


def page_contexts(texts: Sequence[str | None], meta: Mapping[str, MetaValue]) -> list[str]:
    """One context line per page (see the module docstring)."""
    head = describe(meta, registrant(texts, str(meta.get("company", ""))))
    part = ""
    out = []
    for text in texts:
        text = text or ""
        found = items(text)
        if 0 < len(found) < 3:  # three or more: a table of contents
            part = found[-1]
        page_head = heading(text)
        pieces = [head, part if part and part != page_head else "", page_head, units(text)]
        out.append(". ".join(p.rstrip(".") for p in pieces if p))
    return out


__all__ = ["describe", "heading", "items", "page_contexts", "registrant", "units"]
