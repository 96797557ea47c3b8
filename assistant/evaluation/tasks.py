"""How one answer to one QA item is scored, chosen by the item's type.

- closed labels ("label": PubMedQA yes/no/maybe): the option with the highest log-likelihood as the
  reply (`scored`) is the verdict; the generated text parsed into an option (`parsed`) is kept beside it;
- TAT-QA types ("span", "multi-span", "arithmetic", "count"): the official exact match and numeracy-aware
  F1 with the scale; an arithmetic answer that states a calculation ("Calculation: (5 - 4) / 4") is
  evaluated by the safe arithmetic parser and that value is the answer;
- free text (MedQuAD): token F1 against the gold answer, correct at `evaluation.free_f1_threshold`.
Citation markers ("[1]", "[2, 3]") are not part of an answer: they are dropped before an open answer is scored.

    verdict = score_item(item, "Yes. The trial shows ...", scored="yes", config=config.evaluation)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.config import EvaluationConfig
from assistant.evaluation.arithmetic import ArithmeticParseError, evaluate, extract_derivation
from assistant.evaluation.metrics import normalize_label, span_em_f1, split_answer, tatqa_em_f1
from assistant.types import QAItem

TATQA_TYPES = ("span", "multi-span", "arithmetic", "count")
DEFAULT_LABELS = ("yes", "no", "maybe")
_FINAL = re.compile(r"^\s*(?:final\s+)?answer\s*[:：]\s*(.+?)\s*$", re.I | re.M)
_CITATION = re.compile(r"\s*\[\d+(?:\s*[,;]\s*\d+)*\]")


@dataclass(frozen=True)
class Verdict:
    parsed: str | None  # the answer read from the text; None: it could not be parsed (a format failure)
    correct: bool
    em: float | None = None
    f1: float | None = None
    derivation: str | None = None  # the calculation that was evaluated, for arithmetic answers


def label_options(item: QAItem) -> tuple[str, ...]:
    """The closed labels of a label item (its own options, else yes/no/maybe)."""
    return tuple(o.lower() for o in item.options) or DEFAULT_LABELS


def option_replies(options: Sequence[str]) -> list[str]:
    """The replies whose likelihood is compared: "Yes." for "yes", the way adapters learn to start
    (`prompts.target_answer`)."""
    return [f"{o[:1].upper()}{o[1:]}." for o in options]


def final_answer(text: str) -> str:
    """The last 'Answer: ...' line of a reasoned reply, else the whole text."""
    found = _FINAL.findall(text)
    return found[-1] if found else text.strip()


def _gold(item: QAItem) -> str | list[str]:
    raw = item.metadata.get("answer_raw", item.answer)
    if isinstance(raw, list):
        return [str(v) for v in raw]
    return str(raw)


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else "nan"


def score_item(item: QAItem, text: str, scored: str | None, config: EvaluationConfig) -> Verdict:
    """The verdict on `text` (and, for labels, the scored option) against the item's gold answer."""
    if item.answer_type == "label":
        parsed = normalize_label(text, label_options(item)) if text.strip() else None
        chosen = scored if scored is not None else parsed
        return Verdict(parsed, chosen is not None and chosen == item.answer.strip().lower())
    answer = _CITATION.sub("", final_answer(text)).strip()
    if not answer:
        return Verdict(None, False, 0.0, 0.0)
    if item.answer_type in TATQA_TYPES:
        # only a calculation the model labels as one (the CoT prompt asks for "Calculation: ..."): a
        # year range in prose ("2017-2019") is not a derivation
        derivation = extract_derivation(text, labelled_only=True) if item.answer_type == "arithmetic" else None
        pred, scale = split_answer(answer)
        pred = re.sub(r"\(\s*\)", "", pred).strip()  # "12.5 (percent)" leaves "12.5 ()" once the scale is read
        if derivation:
            try:
                pred = _number(evaluate(derivation))
            except ArithmeticParseError:
                derivation = None
        preds: str | list[str] = [p.strip() for p in pred.split(";") if p.strip()] if ";" in pred else pred
        em, f1 = tatqa_em_f1(preds, _gold(item), scale, str(item.metadata.get("scale") or ""),
                             answer_type=item.answer_type)
        parsed = (pred + (f" {scale}" if scale else "")).strip()
        return Verdict(parsed or None, em == 1.0, em, f1, derivation)
    em, f1 = span_em_f1(answer, item.answer)
    return Verdict(answer, f1 >= config.free_f1_threshold, em, f1)


__all__ = ["DEFAULT_LABELS", "TATQA_TYPES", "Verdict", "final_answer", "label_options", "option_replies", "score_item"]
