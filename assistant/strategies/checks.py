"""The numbers and years of an answer checked against its sources, re-cited where another source shows them.

    from assistant.strategies.checks import check_claims
    report = check_claims("Revenue was $79,368 [1].", sources, question="What was revenue in 2022?")
    report.checks      # [Check(claim='$79,368', supported=False, ...)]
    report.warnings    # ["unsupported number '$79,368': no source shows it (the answer cites [1])"]
    report.grounded    # 0.0: the share of checked claims a source shows; None when there is nothing to check

A claim is a number or year of the answer (assistant.strategies.numbers.claims says which are left out and
numbers.same_quantity what counts as the same number). It is looked for in the sources its sentence cites,
then in every retrieved source. A source supports a number only where the sentence or table row showing it
shares a content word with the answer's sentence or the question ("Total revenues  66,608" for "total
revenue was $66.6 billion"; a bare row of numbers is read with the label line above it): "$1,385" given
as total revenue is not supported by "Research and development  $1,510  $1,140  $1,385", and the warning
quotes that row. Years need no context (they head table columns). When a sentence cites a source that shows none of its claims and another
source shows them, the sentence is re-cited to that source (the sources that do show a claim keep their
marker) and a warning says so; a sentence that cites nothing gets the marker of the source that shows its
claims. A claim no source shows is left as written and flagged, in `checks` and in a warning naming it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from assistant.strategies.evidence import split_units, words_of
from assistant.strategies.numbers import Quantity, claims, describe, page_scales, quantities, same_quantity
from assistant.types import Check, Source

_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_BOUNDARY = re.compile(r"(?<=[.!?])\s+")
_LEADING_MARKS = re.compile(r"(?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])+")
_GROUP = re.compile(r"\[\d+(?:\s*[,;]\s*\d+)*\](?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])*")


@dataclass(frozen=True)
class Shown:
    """A number as a source shows it: the quantity, the line or sentence it stands in, and what that is about."""

    quantity: Quantity
    line: str
    about: frozenset[str]  # the content words of its sentence or table row (and of the row label above it)


@dataclass(frozen=True)
class SourceNumbers:
    """A source's numbers, read once, each with its context, and the scales its page states."""

    shown: tuple[Shown, ...]
    scales: tuple[float, ...]

    @classmethod
    def read(cls, source: Source) -> SourceNumbers:
        text = f"{source.title}\n{source.snippet}"
        units = split_units(text)
        shown, u, previous = [], 0, frozenset[str]()
        for q in quantities(text):
            while u < len(units) and units[u].end < q.end:
                previous = frozenset(words_of(text[units[u].start:units[u].end]))
                u += 1
            unit = units[u] if u < len(units) and units[u].start <= q.start else None
            line = text[unit.start:unit.end] if unit else text[q.start:q.end]
            about = frozenset(words_of(line))
            if len(about) < 2:  # a row of bare numbers: its label stands on the line before
                about |= previous
            shown.append(Shown(q, line, about))
        return cls(tuple(shown), page_scales(text))

    def find(self, claim: Quantity, about: set[str]) -> tuple[Shown | None, Shown | None]:
        """The first place that shows `claim` in a context sharing a word with `about` (years: anywhere),
        and else the first place that shows it at all."""
        anywhere = None
        for s in self.shown:
            if same_quantity(claim, s.quantity, self.scales):
                if claim.year or not about or s.about & about:
                    return s, s
                anywhere = anywhere or s
        return None, anywhere


@dataclass
class ClaimReport:
    """The answer text (re-cited where needed), its citations, the checks, warnings and the grounded share."""

    text: str
    citations: list[int]
    checks: list[Check] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    grounded: float | None = None


def _pieces(text: str) -> list[tuple[int, int]]:
    """The answer cut where a claim's citation ends: each sentence after each group of markers ("[1][2]"); a
    sentence's text after its last marker stays with that marker; markers that open a sentence ("...
    billion. [2] The ...") belong to the sentence before."""
    starts = [0] + [m.end() for m in _BOUNDARY.finditer(text)]
    sentences = [[s, e] for s, e in zip(starts, [*starts[1:], len(text)], strict=True)]
    for i in range(1, len(sentences)):
        lead = _LEADING_MARKS.match(text, sentences[i][0])
        if lead and lead.end() > sentences[i][0]:
            sentences[i - 1][1] = sentences[i][0] = lead.end()
    pieces = []
    for start, end in sentences:
        cuts = [m.end() for m in _GROUP.finditer(text, start, end)]
        bounds = [start, *cuts[:-1], end]  # the last marker's clause runs to the end of the sentence
        pieces += [(a, b) for a, b in pairwise(bounds) if b > a]
    return pieces


def _sentence_of(text: str, start: int) -> int:
    """Where the sentence holding `start` begins (a piece may start mid-sentence, after a marker)."""
    before = [m.end() for m in _BOUNDARY.finditer(text, 0, start)]
    return before[-1] if before else 0


def _short(line: str, width: int = 80) -> str:
    line = " ".join(line.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _cited(sentence: str) -> list[int]:
    found = [int(n) for m in _CITE.finditer(sentence) for n in re.split(r"\s*[,;]\s*", m.group(1))]
    return list(dict.fromkeys(found))


def _marker(numbers: Sequence[int]) -> str:
    return f"[{', '.join(map(str, sorted(numbers)))}]"


def _recite(sentence: str, new: list[int]) -> str:
    """The sentence with its markers replaced by one marker for `new` (added before its end when it had none)."""
    first = _CITE.search(sentence)
    if first:
        rest = _CITE.sub("", sentence[first.end():])
        return re.sub(r"[ \t]+([.,;:!?])", r"\1", sentence[: first.start()] + _marker(new) + rest)
    body = sentence.rstrip()
    tail = sentence[len(body):]
    end = body[-1] if body and body[-1] in ".!?" else ""
    return f"{body[: len(body) - len(end)]} {_marker(new)}{end}{tail}"


def _cover(claim_sources: list[list[int]], keep: list[int]) -> list[int]:
    """Sources that show every claim some source shows: those in `keep` that show one, then the fewest more
    (the higher-ranked first on a tie)."""
    chosen = [k for k in keep if any(k in s for s in claim_sources)]
    todo = [s for s in claim_sources if s and not set(s) & set(chosen)]
    while todo:
        candidates = sorted({i for s in todo for i in s})
        best = max(candidates, key=lambda i: (sum(i in s for s in todo), -i))
        chosen.append(best)
        todo = [s for s in todo if best not in s]
    return chosen


def check_claims(text: str, sources: Sequence[Source], question: str = "") -> ClaimReport:
    """Check the answer's numbers and years against `sources` (1-based as its [n] markers), re-cite what
    another source shows, flag what none shows."""
    read = [SourceNumbers.read(s) for s in sources]
    pieces, warnings = [], []
    found: list[tuple[list[int], str, str]] = []  # per claim in order: sources, how the first writes it, note
    for start, end in _pieces(text):
        sentence = text[start:end]
        cited = [c for c in _cited(sentence) if 1 <= c <= len(sources)]
        sentence_claims = claims(sentence, question)
        about = words_of(text[_sentence_of(text, start):end]) | words_of(question)
        per_claim, elsewhere = [], []
        for claim in sentence_claims:
            looked = [(i, numbers.find(claim, about)) for i, numbers in enumerate(read, 1)]
            shown = [(i, s) for i, (s, _) in looked if s is not None]
            per_claim.append([i for i, _ in shown])
            first = next(((i, s) for i, s in shown if i in cited), shown[0] if shown else None)
            how = describe(first[1].quantity, read[first[0] - 1].scales) if first else ""
            other = next(((i, s) for i, (_, s) in looked if s is not None), None) if not shown else None
            elsewhere.append(other)
            note = f"[{other[0]}] shows it about something else: '{_short(other[1].line)}'" if other else ""
            found.append(([i for i, _ in shown], how, note))
        moved = [(q, s) for q, s in zip(sentence_claims, per_claim, strict=True) if s and not set(s) & set(cited)]
        if moved:
            new = sorted(_cover(per_claim, cited))
            names = ", ".join(f"'{q.text}'" for q, _ in moved)
            it = "it" if len(moved) == 1 else "them"
            if cited:
                note = f"re-cited from {_marker(cited)} to {_marker(new)}"
                added = [n for n in new if n not in cited]
                warnings.append(f"re-cited {names} from {_marker(cited)} to {_marker(new)}: the cited source does "
                                f"not show {it}, source {_marker(added)} does")
            else:
                note = f"cited {_marker(new)}"
                warnings.append(f"cited {_marker(new)} for {names}: the sentence cited no source, that one shows {it}")
            sentence, cited = _recite(sentence, new), new
            first_claim = len(found) - len(per_claim)
            for k, s in enumerate(per_claim):
                if s:
                    found[first_claim + k] = (s, found[first_claim + k][1], note)
        for claim, s, other in zip(sentence_claims, per_claim, elsewhere, strict=True):
            if other:
                warnings.append(f"unsupported {claim.kind} '{claim.text}': source [{other[0]}] shows it only about "
                                f"something else ('{_short(other[1].line)}')")
            elif not s:
                where = f" (the answer cites {_marker(cited)})" if cited else ""
                warnings.append(f"unsupported {claim.kind} '{claim.text}': no source shows it{where}")
        pieces.append(sentence)
    new_text = "".join(pieces)
    final = claims(new_text, question)
    if len(final) != len(found):  # re-citation moved no number; if it ever does, keep the text as written
        new_text, final = text, claims(text, question)
    checks = [
        Check(q.text, "year" if q.year else "number", q.start, q.end, bool(s), tuple(s), how,
              note or ("" if s else "no source shows it"))
        for q, (s, how, note) in zip(final, found, strict=False)
    ]
    citations = sorted({c for c in _cited(new_text) if 1 <= c <= len(sources)})
    grounded = sum(c.supported for c in checks) / len(checks) if checks else None
    return ClaimReport(new_text, citations, checks, warnings, grounded)


__all__ = ["ClaimReport", "Shown", "SourceNumbers", "check_claims"]
