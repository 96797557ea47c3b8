"""Answer modes of the retrieval strategies: answer with the model's reply, with the sources' evidence, or with
the reply while its numbers are in the sources and with the evidence otherwise.

    generation: {answer_mode: auto}                   # assistant.yaml; per question: AskOptions(answer_mode=...)
    assistant eval --domain finance --strategies rag,rag/extractive,rag/auto      # modes as rungs

- `generate`: the model's reply, checked and quoted (assistant.strategies.grounding);
- `extractive`: no generation; the answer is the evidence itself (assistant.strategies.extract): the cell
  at the row and column the question names, with its scale and period, else the best evidence sentence, led
  by the amount, date or phrase of it that answers (assistant.strategies.spans: "Answer: $58.2 million [2]"
  over the quoted sentence). A question asking why, how, who or when reads no table; a sentence's amount
  wins over a cell whose row and column say much less of the question (SENTENCE_OVER_CELL);
- `auto`: the reply is generated and checked; when every number and year it states is supported
  (`Answer.grounded` is None or at least AUTO_GROUNDED) and, where the sources answer the question with a
  number (the cell the question names, a calculation over its cells, or a sentence's amount), it states that
  value, it stands;
  a reply that states no number keeps only when at least AUTO_WORDS of its words are in the sources (or it
  says the sources do not answer); otherwise the answer leads with the extracted cell or sentence and a
  warning says why ("the generated number '$79,368' is not in the sources; answering with ...", "the
  generated answer does not state 66,608 million, the value the table gives; answering with the cell ...",
  "only 20% of the generated answer's words are in the sources; answering with the best evidence
  sentence ..."). The reply is kept in `details["generated_answer"]`.
Closed-label questions (AskOptions.choices: yes/no/maybe, scored by option likelihood) are always
generated: the modes apply to free and numeric answers. `details["answer_mode"]` records the mode asked
for and `details["answered_with"]` what the answer is: generated, table cell or evidence sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from assistant.generation_config import check_answer_mode
from assistant.guard import neutralise
from assistant.strategies.checks import check_claims
from assistant.strategies.derive import derive_cell
from assistant.strategies.derive_rows import derive_rows
from assistant.strategies.evidence import split_units, words_of
from assistant.strategies.extract import ExtractedCell, best_sentence, cell_evidence, cell_text, extract_cell
from assistant.strategies.grounding import ground
from assistant.strategies.numbers import SCALES, claims, quantities, same_quantity
from assistant.strategies.spans import answer_span, asks_for_text, restated
from assistant.types import Answer, Check, Evidence, Source

if TYPE_CHECKING:
    from assistant.config import Config
    from assistant.embeddings import Embedder
    from assistant.strategies.core import AskOptions

AUTO_GROUNDED = 1.0  # auto keeps a reply only when every number it states is in a source
# an amount a sentence states beats the table's cell when the sentence says this much more of the question than
# the cell's row and column do ("the amortization and deferred cost expense ... was $2.7 billion" over the row
# "Prepaid expenses and other"); measured on 500 TAT-QA train questions: 0.2 to 0.3 best, 0.5 a little less
SENTENCE_OVER_CELL = 0.3
AUTO_WORDS = 0.5  # ... and, when it states no number, when at least this share of its words is in the sources
_ABSTAINS = re.compile(r"\b(?:do(?:es)?\s+not|don't|doesn't|cannot|can't)\s+(?:contain|say|mention|provide|state|"
                       r"include|answer|know|find)|\bno\s+information\b|\bnot\s+(?:mentioned|stated|provided|given)\b", re.I)
GENERATED, CELL, SENTENCE, CLOSED = "generated", "table cell", "evidence sentence", "generated (closed labels)"


def answer_mode(config: Config, options: AskOptions) -> tuple[str, str]:
    """(the mode asked for, the mode applied): the question's own, else generation.answer_mode; closed-label
    questions are generated whatever was asked."""
    asked = check_answer_mode(options.answer_mode or config.generation.answer_mode)
    return asked, "generate" if options.choices else asked


def quotable(source: Source) -> Source:
    """`source` with text that speaks to the model (assistant.guard) blanked out, from the sentence or row it
    starts in to the end of its paragraph, as the prompt drops it; same length, so spans still hold. An
    extractive answer quotes sources, and must never quote a planted order or the link it asks to pass on."""
    text = source.snippet
    if not neutralise(text)[1]:
        return source
    out, pos = [], 0
    for para in re.finditer(r"[^\n]+(?:\n(?!\s*\n)[^\n]*)*", text):
        body = para.group(0)
        if not neutralise(body)[1]:
            continue
        first = next((u for u in split_units(body) if neutralise(body[u.start:u.end])[1]), None)
        cut = para.start() + (first.start if first is not None else 0)
        out.append(text[pos:cut] + re.sub(r"[^\n]", " ", text[cut:para.end()]))
        pos = para.end()
    return replace(source, snippet="".join(out) + text[pos:])


def extractive_answer(question: str, sources: Sequence[Source], embedder: Embedder | None = None,
                      short: bool = True) -> tuple[str, Evidence, ExtractedCell | None] | None:
    """The extractive answer's text, its evidence and the cell it names (None for a sentence): a derived
    answer where the question asks for one, else the cell it names, else the best evidence sentence, led by
    the part of it that answers when `short` (DomainConfig.short_answers); None when the sources hold
    nothing to quote. Text addressed to the model is never quoted (see `quotable`)."""
    sources = [quotable(s) for s in sources]
    cell = None if asks_for_text(question) else (derive_cell(question, sources) or derive_rows(question, sources)
                                                  or extract_cell(question, sources))
    quote = best_sentence(question, sources, embedder)
    sentence = " ".join(quote.quote.split()) if quote else ""
    span = None if "|" in sentence or not sentence else answer_span(question, sentence)  # a row: the cell's
    if cell is not None and not (span and re.search(r"\d", span) and restated(question, sentence)
                                 >= restated(question, f"{cell.row} {cell.column}") + SENTENCE_OVER_CELL):
        return cell_text(cell), cell_evidence(cell, sources), cell
    if quote is None:
        return None
    if span is None or not short:
        return f"{sentence} [{quote.source}]", replace(quote, cited=True), None
    return f"Answer: {span} [{quote.source}]\nFrom source [{quote.source}]: \"{sentence}\"", replace(quote, cited=True), None


def cell_checks(text: str, cell: ExtractedCell, question: str = "") -> list[Check]:
    """The checks of a cell's answer: the numbers of its answer line are the cell the row and column name
    (read with the scale its header or page states, which the number checks cannot know: "2019 £m"), or
    computed from the row's cells by the calculation it states. The lines under it restate headers and cells."""
    line = text.split("\n", 1)[0]
    if cell.calculation:
        found, note = cell.calculation, f"computed from the cells of source [{cell.source}]: {cell.calculation}"
    else:
        found, note = cell.cell.text, f"the cell of source [{cell.source}]'s table in column '{cell.column}'"
    return [Check(q.text, q.kind, q.start, q.end, True, (cell.source,), found, note)  # type: ignore[arg-type]
            for q in claims(line, question)]


# words a reply uses to talk about the task rather than answer it, and verdicts that claim no fact
_META = frozenset({"answer", "question", "source", "context", "passage", "text", "information", "document", "test"})
_VERDICT = re.compile(r"^\W*(?:yes|no|maybe)\b", re.I)


def words_supported(text: str, sources: Sequence[Source]) -> float | None:
    """The share of a reply's content words (citation markers and words about the task aside) that some
    source contains: 0.0 for a reply that only talks about the question or its sources ("The answer to the
    question is: <source 5>"), None for one that claims nothing to check (empty, or a yes/no verdict)."""
    words = words_of(re.sub(r"\[\d+\]", " ", text))
    if not words or _VERDICT.match(text):
        return None
    said = words - _META
    if not said:
        return 0.0
    seen = set().union(*(words_of(s.snippet) for s in sources)) if sources else set()
    return len(said & seen) / len(said)


def states_value(text: str, value: str, scale: str = "") -> bool:
    """Whether a reply states `value` (a cell's, a derived one, a sentence's amount): one of its numbers is the
    value, read bare with the scale too ("6,577" for "$6,577 million")."""
    wanted = [q for q in quantities(value) if not q.year]
    scales = (SCALES[scale],) if scale in SCALES else ()
    return any(same_quantity(c, w, scales) or same_quantity(w, c) for c in claims(text) for w in wanted)


def stated_amount(text: str) -> str:
    """The amount an extractive sentence answer leads with ("Answer: $58.2 million [2]" -> "$58.2 million"), or ""
    (a phrase, a date, or the whole sentence)."""
    line = re.match(r"Answer:\s*(.*?)\s*(?:\[\d+\])?\s*(?:\n|$)", text)
    return line.group(1) if line and any(not q.year for q in quantities(line.group(1))) else ""


def answer_extractively(answer: Answer, embedder: Embedder | None = None, replacing: list[str] | None = None,
                        found: tuple[str, Evidence, ExtractedCell | None] | None = None, why: str = "",
                        short: bool = True) -> bool:
    """Make `answer` the sources' evidence (text, citations, checks, evidence); False when they hold nothing to
    quote. `replacing`: the generated numbers no source shows, named in the warning that says why; `why`: the
    warning's reason otherwise; `found`: the extractive answer, when already made; `short`: see
    `extractive_answer`."""
    found = found or extractive_answer(answer.question, answer.sources, embedder, short)
    if found is None:
        return False
    text, evidence, cell = found
    evidence = replace(evidence, quote=answer.sources[evidence.source - 1].snippet[evidence.start:evidence.end])
    if cell is None:  # a quoted sentence: its numbers checked as any answer's
        report = check_claims(text, answer.sources, answer.question)
        answer.text, answer.citations, answer.checks, answer.grounded = (report.text, report.citations, report.checks,
                                                                         report.grounded)
        answer.warnings.extend(report.warnings)
    else:
        answer.text, answer.citations = text, [cell.source]
        answer.checks = cell_checks(text, cell, answer.question)
        answer.grounded = 1.0 if answer.checks else None
    answer.evidence = [evidence]
    answer.details["answered_with"] = CELL if cell is not None else SENTENCE
    if cell is not None:
        answer.details["extracted"] = {"source": cell.source, "row": cell.row, "column": cell.column,
                                       "value": cell.value, "scale": cell.scale}
    what = (f"the cell of source [{cell.source}]'s table (row '{cell.row}', column '{cell.column}')" if cell
            else f"the best evidence sentence of source [{evidence.source}]")
    if cell is not None and cell.rows > 1:
        what = f"the rows {cell.row} of source [{cell.source}]'s table"
    if replacing is not None:
        names = ", ".join(f"'{c}'" for c in replacing)
        numbers = "number" if len(replacing) == 1 else "numbers"
        verb = "is" if len(replacing) == 1 else "are"
        answer.warnings.insert(0, f"the generated {numbers} {names} {verb} not in the sources; answering with {what}")
    elif why:
        answer.warnings.insert(0, f"{why}; answering with {what}")
    return True


def finish_in_mode(answer: Answer, mode: str, embedder: Embedder | None = None, short: bool = True) -> Answer:
    """The last step of a retrieval strategy's finish for a generated reply: check and quote it (generate),
    and in `auto` replace it with the evidence when a number it states is in no source, or when the sources'
    tables answer the question (a cell, or a calculation over the cells the question names) and the reply
    does not state that value: the table is the evidence, a reply that disagrees with it is not kept."""
    start = len(answer.warnings)
    ground(answer, embedder)
    answer.details.setdefault("answered_with", GENERATED)
    if mode != "auto" or not answer.sources:
        return answer
    supported = answer.grounded is None or answer.grounded >= AUTO_GROUNDED
    found: tuple[str, Evidence, ExtractedCell | None] | None = None
    why = ""
    if supported:
        found = extractive_answer(answer.question, answer.sources, embedder, short)
        if found is None:
            return answer
        if found[2] is not None:  # a table answers the question: the reply must state its value
            if states_value(answer.text, found[2].value, found[2].scale):
                return answer
            why = f"the generated answer does not state {found[2].value}, the value the table gives"
        elif amount := stated_amount(found[0]):  # so does a source's sentence stating an amount
            if states_value(answer.text, amount):
                return answer
            why = f"the generated answer does not state {amount}, the amount the source states"
        else:  # no number to check: the reply's words must be the sources' (an abstention claims nothing)
            share = words_supported(answer.text, answer.sources)
            if answer.grounded is not None or share is None or share >= AUTO_WORDS or _ABSTAINS.search(answer.text):
                return answer
            why = f"only {share:.0%} of the generated answer's words are in the sources"
    unsupported = [c.claim for c in answer.checks if not c.supported]
    generated = (answer.text, answer.citations, answer.checks, answer.grounded, answer.evidence,
                 answer.warnings[start:])
    del answer.warnings[start:]  # the replaced reply's warnings: one warning below says what happened instead
    if not answer_extractively(answer, embedder, replacing=None if supported else unsupported, found=found, why=why,
                               short=short):
        answer.text, answer.citations, answer.checks, answer.grounded, answer.evidence, kept = generated
        answer.warnings.extend(kept)
        return answer
    answer.details["generated_answer"] = generated[0]
    answer.details["generated_unsupported"] = unsupported
    return answer


__all__ = ["AUTO_GROUNDED", "answer_extractively", "answer_mode", "cell_checks", "extractive_answer", "finish_in_mode",
           "quotable", "stated_amount", "states_value", "words_supported"]
