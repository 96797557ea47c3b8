"""The scope a question names: the companies (and years) of an index's documents that it asks about.

    scope = question_scope("What was Boeing's total revenue in 2022?", {"company": ["BOEING", "PFIZER"],
                                                                       "year": [2021, 2022, 2023]})
    scope                   # {"company": ["BOEING"], "year": [2022, 2023]}
    describe_scope(scope)   # "scoped to company BOEING, year 2022 or 2023 (named in the question)"

An index of many filings ranks the right statement of the wrong company as high as the right one: "total
revenues" is on every income statement. When the question names a company the index holds, retrieval is
scoped to it (RAG, `assistant search`: assistant.strategies.scoping), the answer's reason says so, and the user can turn it off
(`--no-scope`, `retrieval.scope: false`) or set filters of their own, which always win.

A company matches when a run of one to four of the question's words spells its `company` value, ignoring
case, punctuation and possessives ("Johnson & Johnson's" is JOHNSON_JOHNSON, "Best Buy" is BESTBUY), or when
a capitalised word of three letters or more begins exactly one company's value ("Ulta" is ULTABEAUTY). A
year scopes only together with a company: a figure for year Y is reported in the annual filings of Y to Y+2
(three years of comparatives), so the scope is those of the index's years.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from assistant.text import squash
from assistant.types import MetaValue

MAX_WORDS = 4  # the longest run of words a company name is looked for in
YEARS_REPORTED = 3  # an annual report carries its year and two before
_WORD = re.compile(r"[A-Za-z0-9&]+(?:[’'][A-Za-z]+)?")
_YEAR = re.compile(r"\b(?:FY\s?)?((?:19|20)\d{2})\b", re.IGNORECASE)



def _words(question: str) -> list[str]:
    return [re.sub(r"[’']s$", "", w) for w in _WORD.findall(question)]


def companies_named(question: str, companies: Sequence[str]) -> list[str]:
    """The `companies` values the question names (see the module docstring), in the index's order."""
    keys = {squash(c): c for c in companies if squash(c)}
    words = _words(question)
    found: set[str] = set()
    for i in range(len(words)):
        for n in range(1, MAX_WORDS + 1):
            key = squash("".join(words[i:i + n]))
            if key in keys:
                found.add(keys[key])
    for word in words:
        if len(word) >= 3 and word[0].isupper():
            starts = [c for k, c in keys.items() if k.startswith(squash(word)) and k != squash(word)]
            if len(starts) == 1:
                found.add(starts[0])
    return [c for c in companies if c in found]


def question_scope(question: str, columns: Mapping[str, Sequence[Any]]) -> dict[str, list[MetaValue]]:
    """Metadata filters for the companies (and years) `question` names among `columns`' values; {} if none."""
    companies = [c for c in columns.get("company", ()) if isinstance(c, str)]
    named = companies_named(question, companies)
    if not named:
        return {}
    scope: dict[str, list[MetaValue]] = {"company": list(named)}
    have = {int(y) for y in columns.get("year", ()) if isinstance(y, int | str) and str(y).isdigit()}
    asked = {int(y) for y in _YEAR.findall(question)}
    years = sorted(y for y in have if any(a <= y < a + YEARS_REPORTED for a in asked))
    if years and len(years) < len(have):
        scope["year"] = list(years)
    return scope


def describe_scope(scope: Mapping[str, Sequence[MetaValue]]) -> str:
    """"scoped to company BOEING, year 2022 or 2023 (named in the question)", or "" for no scope."""
    parts = [f"{key} {' or '.join(map(str, values))}" for key, values in scope.items() if values]
    return f"scoped to {', '.join(parts)} (named in the question)" if parts else ""


__all__ = ["companies_named", "describe_scope", "question_scope"]
