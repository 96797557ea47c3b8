"""Evidence: the sentence(s) or table row of each cited source that best support an answer.

    from assistant.strategies.evidence import find_evidence, split_units
    units = split_units(source.snippet)                  # sentences of prose, rows of tables, with spans
    evidence = find_evidence(question, answer_text, sources, cited=[2], embedder=retriever.embedder)
    evidence[0].quote == sources[1].snippet[evidence[0].start:evidence[0].end]

A source's text is split once into units: a line that reads as a table row (two or more numbers, or cells
set apart by runs of spaces, with a number) is one unit; other lines are joined into paragraphs and split
into sentences. Each unit is scored against the answer by
- sentence similarity: cosine of the unit's embedding and the question + answer's, with the index's own
  embedder (all candidate units of all sources in one `embed_documents` batch);
- word overlap: the share of the answer's content words (and, less, the question's) the unit contains;
- numbers: the share of the answer's checked numbers (see numbers.claims) the unit shows, after
  normalisation (numbers.same_quantity, with the page's stated scale).
Only the 12 best units of a source by overlap and numbers are embedded, which keeps a question at one short
batch. For each cited source the best unit is its evidence (with the next unit when that is nearly as good
and adjacent: "sentence(s)"); an answer that cites nothing gets the best unit of the best source,
marked `cited=False`. Without an embedder the scores are overlap and numbers alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from assistant.strategies.citations import content_words
from assistant.strategies.numbers import Quantity, claims, page_scales, quantities, same_quantity
from assistant.types import Evidence, Source

if TYPE_CHECKING:
    from assistant.embeddings import Embedder

CANDIDATES = 12  # units per source that are embedded
MERGE = 0.9  # the next unit joins the quote when it scores at least this share of the best
_LINE = re.compile(r"[^\n]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9$])")
_NUMERIC_CELL = re.compile(r"[(]?[-−–]?[$€£]?[(]?[-−–]?\d[\d,]*(?:\.\d+)?[)]?(?:\s*%)?[)]?")
_NUMERIC_TAIL = re.compile(rf"(?:\s+(?:{_NUMERIC_CELL.pattern}|—|-))+\s*$")
_CITE = re.compile(r"\s*\[\d+(?:\s*[,;]\s*\d+)*\]")


@dataclass(frozen=True)
class Unit:
    """A sentence or table row of a text: its span."""

    start: int
    end: int
    kind: Literal["sentence", "row"]


def _is_row(line: str) -> bool:
    """A table row: a markdown one ("| Revenue | 1,200 | 1,000 |"), or a line ending in two or more numeric
    cells ("Total revenues  66,608  62,286"), or in one set apart by a run of spaces after a short label
    ("Boeing Capital  199")."""
    if re.fullmatch(r"\s*\|.*\|\s*", line):
        return True
    tail = _NUMERIC_TAIL.search(line)
    if not tail:
        return False
    cells = len(_NUMERIC_CELL.findall(tail.group(0)))
    return cells >= 2 or (tail.group(0).startswith("  ") and len(re.findall(r"[A-Za-z]+", line)) <= 6)


def _trimmed(text: str, start: int, end: int, kind: Literal["sentence", "row"]) -> Unit | None:
    part = text[start:end]
    lead = len(part) - len(part.lstrip())
    part = part.strip()
    if len(re.findall(r"[A-Za-z0-9]", part)) < 3:  # separators ("…"), stray marks
        return None
    return Unit(start + lead, start + lead + len(part), kind)


def split_units(text: str) -> list[Unit]:
    """Sentences and table rows of `text`, in order, as spans of `text`."""
    units: list[Unit] = []
    para: list[re.Match[str]] = []

    def flush() -> None:
        if not para:
            return
        start, end = para[0].start(), para[-1].end()
        cut = start
        for m in _SENTENCE_END.finditer(text, start, end):
            if (unit := _trimmed(text, cut, m.start(), "sentence")) is not None:
                units.append(unit)
            cut = m.end()
        if (unit := _trimmed(text, cut, end, "sentence")) is not None:
            units.append(unit)
        para.clear()

    previous_end = 0
    for line in _LINE.finditer(text):
        if "\n\n" in text[previous_end:line.start()]:  # a blank line ends a paragraph
            flush()
        previous_end = line.end()
        if _is_row(line.group(0)):
            flush()
            if (unit := _trimmed(text, line.start(), line.end(), "row")) is not None:
                units.append(unit)
        elif line.group(0).strip():
            para.append(line)
    flush()
    return units


def words_of(text: str) -> set[str]:
    """Content words of `text` without numbers, plural 's' dropped: what a sentence or row is about."""
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in content_words(text) if not w[0].isdigit()}


@dataclass
class _Candidate:
    source: int  # 0-based
    unit: Unit
    index: int  # the unit's position in its source
    overlap: float
    numbers: float
    score: float = 0.0


def _overlap(unit_words: set[str], answer_words: set[str], question_words: set[str]) -> float:
    parts = [(0.7, answer_words), (0.3, question_words)]
    parts = [(w, ws) for w, ws in parts if ws]
    if not parts:
        return 0.0
    total = sum(w for w, _ in parts)
    return sum(w * len(ws & unit_words) / len(ws) for w, ws in parts) / total


def _numbers_share(found: Sequence[Quantity], wanted: Sequence[Quantity], scales: tuple[float, ...]) -> float:
    if not wanted:
        return 0.0
    return sum(any(same_quantity(w, q, scales) for q in found) for w in wanted) / len(wanted)


def _candidates(question: str, answer: str, sources: Sequence[Source], which: Sequence[int]) -> list[_Candidate]:
    """The best units of the sources `which` (0-based) by overlap and numbers, CANDIDATES per source."""
    answer_words, question_words = words_of(answer), words_of(question)
    wanted = claims(answer, question)
    amounts = [q for q in wanted if not q.year] or wanted  # years match every table header: amounts first
    out = []
    for i in which:
        text = sources[i].snippet
        scales = page_scales(text)
        found = quantities(text)
        scored = []
        for k, unit in enumerate(split_units(text)):
            in_unit = [q for q in found if unit.start <= q.start and q.end <= unit.end]
            words = words_of(text[unit.start:unit.end])
            scored.append(_Candidate(i, unit, k, _overlap(words, answer_words, question_words),
                                     _numbers_share(in_unit, amounts, scales)))
        scored.sort(key=lambda c: (-(c.overlap + c.numbers), c.index))
        out += scored[:CANDIDATES]
    return out


def _score(candidates: list[_Candidate], query: str, sources: Sequence[Source], embedder: Embedder | None,
           with_numbers: bool) -> None:
    cosines = [0.0] * len(candidates)
    if embedder is not None and candidates:
        texts = [sources[c.source].snippet[c.unit.start:c.unit.end] for c in candidates]
        vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
        q = np.asarray(embedder.embed_query(query), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1) * max(float(np.linalg.norm(q)), 1e-12)
        cosines = [float(x) for x in np.clip(vectors @ q / np.maximum(norms, 1e-12), 0.0, 1.0)]
    weights = (0.35, 0.3, 0.35) if with_numbers else (0.55, 0.45, 0.0)
    if embedder is None:
        weights = (0.0, weights[1] / (1 - weights[0]), weights[2] / (1 - weights[0]))
    for c, cos in zip(candidates, cosines, strict=True):
        c.score = weights[0] * cos + weights[1] * c.overlap + weights[2] * c.numbers


def _evidence(best: _Candidate, pool: list[_Candidate], sources: Sequence[Source], cited: bool) -> Evidence:
    src = sources[best.source]
    start, end = best.unit.start, best.unit.end
    after = next((c for c in pool if c.source == best.source and c.index == best.index + 1), None)
    if after and after.unit.kind == best.unit.kind == "sentence" and after.score >= MERGE * best.score:
        end = after.unit.end  # two adjacent sentences support it about equally: quote both
    return Evidence(best.source + 1, src.doc_id, src.locator, src.snippet[start:end], start, end,
                    round(best.score, 4), best.unit.kind, cited)


def find_evidence(question: str, answer: str, sources: Sequence[Source], cited: Sequence[int],
                  embedder: Embedder | None = None) -> list[Evidence]:
    """One Evidence per cited source (1-based `cited`, in order), or for the best source when none is cited."""
    text = _CITE.sub("", answer).strip()
    if not text or not sources:
        return []
    which = sorted({c - 1 for c in cited if 1 <= c <= len(sources)}) or list(range(len(sources)))
    pool = _candidates(question, text, sources, which)
    _score(pool, f"{question}\n{text}", sources, embedder, with_numbers=bool(claims(text, question)))
    out = []
    for i in which:
        mine = [c for c in pool if c.source == i]
        if mine:
            out.append((max(mine, key=lambda c: (c.score, -c.index)), True))
    if not any(1 <= c <= len(sources) for c in cited) and out:
        out = [(max((b for b, _ in out), key=lambda c: (c.score, -c.source)), False)]
    return [_evidence(best, pool, sources, was_cited) for best, was_cited in out]


__all__ = ["Unit", "find_evidence", "split_units", "words_of"]
