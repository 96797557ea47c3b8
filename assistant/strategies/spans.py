"""The part of an evidence sentence that answers a question: an amount, a date or a phrase, not the whole sentence.

    answer_span("What was the federal alternative minimum tax credit carryforwards?",
                "In addition, the Company has $0.3 million of federal alternative minimum tax credit carryforwards ...")
    # '$0.3 million'
    answer_span("What does working capital consist of?", "Working capital consists of current assets less current liabilities.")
    # 'current assets less current liabilities'
    answer_span("When did trading commence?", "Trading commenced on March 29, 1988.")     # 'March 29, 1988'

What is read, by the question's form:
- an amount ("how much", "how many", "what is / was / were the ..."): the sentence's number nearest the words
  it shares with the question, with its currency, scale word and a duration's unit ("2.5 years"); a year the
  question names picks its place in a list ("$131 million, $117 million and $180 million" for "2019, 2018 and
  2017 respectively"), two years give both, ";"-separated. Years and the days of dates are not amounts;
- a date ("when", "what date", "in which month"): the sentence's date ("March 29, 1988", "27 May 2019", "May
  2014") nearest those words;
- otherwise, a phrase: what follows the words that restate the question ("Working capital consists of" | "current
  assets less ...") up to the end of the sentence or to where its words come back ("The Company relies on" |
  "royalty reports received from third party licensees" | "to record its revenue"), less the linking word
  it starts with ("of", "to", "on", "can") and the function words it ends with.
None when the sentence restates too little of the question to tell where the answer stands, or nothing is
left; the caller then answers with the whole sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.strategies.numbers import Quantity, quantities

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|"
          r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_DATE = re.compile(rf"\b(?:{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}\s+{_MONTH}\s+\d{{4}}|{_MONTH}\s+\d{{4}})\b")
_AMOUNT_Q = re.compile(r"(?:^|,)\W*(?:in\s+)?(?:how\s+(?:much|many)\b|what\s+(?:is|was|are|were)\b)", re.I)
_UNIT_Q = re.compile(r"\bhow\s+many\s+(years?|months?|days?)\b", re.I)
_DATE_Q = re.compile(r"^\W*(?:when\b|on\s+what\s+date|what\s+date|in\s+which\s+month)", re.I)
# questions a table's number does not answer: a reason, a manner, a person, a date
_TEXT_Q = re.compile(r"^\W*(?:why|who|whom|when)\b|^\W*how\s+(?:is|are|was|were|do|does|did|has|have)\b|"
                     r"\breasons?\b|\bwhat\s+(?:led|leads|caused|causes|drove|drives|contributed)\b|\bdue\s+to\W*$", re.I)
_DURATION = re.compile(r"\s+(?:years?|months?|days?)\b", re.I)
_TOKEN = re.compile(r"[^\s]+")
# question words that ask rather than say what the sentence is about
_ASK = frozenset("what which who whom whose when where why how much many is are was were be been do does did the a an "
                 "of to in on for with by and or its their it this that these those company company's value amount "
                 "has have had there any".split())
# words an answer phrase neither starts nor ends with
_LEAD = frozenset("of to on from in as is are was were be been can may will would could should that which".split())
_TRAIL = frozenset("the a an and or of to in on for with by as at from that which while".split())
MIN_RESTATED = 0.5  # the share of the question's words the sentence must restate for its rest to be the answer


def _stem(word: str) -> str:
    w = re.sub(r"[^\w%$-]", "", word.lower().replace("’", "'")).removesuffix("'s")
    for suffix, to in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: len(w) - len(suffix)] + to
            break
    return w.removesuffix("e") if len(w) > 3 else w


def _asked(question: str) -> set[str]:
    """The question's own words, stemmed: what a sentence restating it repeats."""
    return {s for t in _TOKEN.findall(question) if (s := _stem(t)) and s not in _ASK and not s[0].isdigit()}


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int
    stem: str


def _tokens(text: str) -> list[_Token]:
    return [_Token(m.group(0), m.start(), m.end(), _stem(m.group(0))) for m in _TOKEN.finditer(text)]


def _restating(tokens: list[_Token], asked: set[str]) -> tuple[int, int] | None:
    """The first stretch of the sentence that restates the question (its words, at most two others between
    them; a word said again only when a new one follows): (first token, last token)."""
    marked = [i for i, t in enumerate(tokens) if t.stem in asked]
    if not marked:
        return None
    first = last = marked[0]
    seen = {tokens[first].stem}
    for k, i in enumerate(marked[1:], 1):
        repeated = tokens[i].stem in seen  # "Adjusted gross margin represents | gross profit": an answer word
        if i - last > 3 or (repeated and not any(j - i <= 2 and tokens[j].stem not in seen for j in marked[k + 1:])):
            break
        seen.add(tokens[i].stem)
        last = i
    return first, last


def _phrase(sentence: str, tokens: list[_Token], asked: set[str], after: int) -> str | None:
    """The phrase after token `after`, to the end of its sentence or to where the question's words come back
    (two of them, at most one word apart)."""
    end = len(tokens)
    said = False  # an answer word seen: the question's words coming back after it end the phrase
    for i in range(after + 1, len(tokens)):
        back = tokens[i].stem in asked and any(t.stem in asked for t in tokens[i + 1: i + 3])
        if said and back:
            end = i
            break
        if re.search(r"[.!?]$", tokens[i].text) and i + 1 < len(tokens) and tokens[i + 1].text[:1].isupper():
            end = i + 1
            break
        said = said or (bool(tokens[i].stem) and tokens[i].stem not in _TRAIL)
    start = after + 1
    while start < end and (tokens[start].stem in _LEAD or not tokens[start].stem):
        start += 1
    while end > start and (tokens[end - 1].stem in _TRAIL or not tokens[end - 1].stem):
        end -= 1
    if end <= start:
        return None
    phrase = sentence[tokens[start].start: tokens[end - 1].end].strip(" ,;:").rstrip(".")
    return phrase if re.search(r"[A-Za-z]{2}", phrase) else None  # a footnote mark "(2)" or a lone number is not one


def _nearest(spans: list[tuple[int, int]], marks: list[tuple[int, int]]) -> int:
    """The span nearest (in characters) to one of the sentence's words that restate the question."""
    def distance(s: tuple[int, int]) -> int:
        return min(max(m[0] - s[1], s[0] - m[1], 0) for m in marks)
    return min(range(len(spans)), key=lambda k: distance(spans[k]))


def _amounts(question: str, sentence: str, marks: list[tuple[int, int]]) -> str | None:
    dates = [m.span() for m in _DATE.finditer(sentence)]
    named = {q.value for q in quantities(question)}  # "Section 106" in the question is not its answer
    found: list[Quantity] = []
    years: list[int] = []
    for q in quantities(sentence):
        footnote = re.fullmatch(r"\(\d\)", q.text) is not None  # "(2) Qdoba evaluation costs ..."
        if (any(s <= q.start < e for s, e in dates) or q.value in named or footnote) and not q.year:
            continue
        if q.year:
            years.append(int(q.value))
        else:
            found.append(q)
    if not found:
        return None

    def shown(q: Quantity) -> str:
        unit = _DURATION.match(sentence, q.end)
        return sentence[q.start: unit.end() if unit else q.end].strip()

    asked_years = [int(q.value) for q in quantities(question) if q.year]
    if asked_years and len(years) == len(found) > 1 and re.search(r"\brespectively\b", sentence, re.I):
        picked = [found[years.index(y)] for y in asked_years if y in years]
        if picked:
            return "; ".join(shown(q) for q in picked)
    if unit := _UNIT_Q.search(question):  # "how many years": an amount of years
        word = unit.group(1).lower().rstrip("s")
        found = [q for q in found if shown(q).lower().rstrip("s").endswith(word)] or found
    return shown(found[_nearest([(q.start, q.end) for q in found], marks)])


def restated(question: str, text: str) -> float:
    """The share of the question's own words (stemmed) that `text` says."""
    asked = _asked(question)
    return len(asked & {t.stem for t in _tokens(text)}) / len(asked) if asked else 0.0


def asks_for_text(question: str) -> bool:
    """Whether the question asks for a reason, a manner, a person or a date ("Why did revenue increase?", "How is
    EBITDA calculated?", "When did trading commence?"), which a table's number does not answer."""
    return _TEXT_Q.search(question) is not None


def answer_span(question: str, sentence: str) -> str | None:
    """The amount, date or phrase of `sentence` that answers `question` (see the module docstring); None when
    none can be told apart from the rest of the sentence."""
    asked = _asked(question)
    tokens = _tokens(sentence)
    if not asked or not tokens:
        return None
    stretch = _restating(tokens, asked)
    present = {t.stem for t in tokens} & asked
    if stretch is None or len(present) < MIN_RESTATED * len(asked):
        return None
    marks = [(t.start, t.end) for t in tokens if t.stem in asked]
    if _DATE_Q.match(question):
        dates = [m.span() for m in _DATE.finditer(sentence)]
        if dates:
            s, e = dates[_nearest(dates, marks)]
            return sentence[s:e]
    if _AMOUNT_Q.search(question) and (amount := _amounts(question, sentence, marks)):
        return amount
    return _phrase(sentence, tokens, asked, stretch[1])


__all__ = ["MIN_RESTATED", "answer_span", "asks_for_text", "restated"]
