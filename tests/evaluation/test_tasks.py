"""Scoring one answer by the item's type."""

from __future__ import annotations

from assistant.config import EvaluationConfig
from assistant.evaluation.tasks import final_answer, option_replies, score_item
from assistant.types import QAItem

CFG = EvaluationConfig()


def item(answer_type: str, answer: str, **kw: object) -> QAItem:
    return QAItem("x", "c", "Q?", answer, "test", answer_type=answer_type, **kw)  # type: ignore[arg-type]


def test_labels_use_the_scored_option_and_keep_the_parsed_text() -> None:
    v = score_item(item("label", "yes", options=("yes", "no", "maybe")), "No, it does not.", "yes", CFG)
    assert v.correct and v.parsed == "no"
    v = score_item(item("label", "yes"), "Answer: maybe", None, CFG)
    assert not v.correct and v.parsed == "maybe"
    assert option_replies(["yes", "no"]) == ["Yes.", "No."]


def test_tatqa_answers_with_scale_and_labelled_calculation() -> None:
    arith = item("arithmetic", "20", metadata={"answer_raw": 20, "scale": ""})
    v = score_item(arith, "Revenue rose.\nCalculation: 120 - 100\nAnswer: 21", None, CFG)
    assert v.correct and v.derivation == "120 - 100" and v.parsed == "20"
    assert not score_item(arith, "From 2017-2019 it grew. Answer: 21", None, CFG).correct
    span = item("span", "1.2", metadata={"answer_raw": ["1.2"], "scale": "million"})
    assert score_item(span, "Answer: 1.2 (million)", None, CFG).correct
    assert not score_item(span, "Answer: 1.2 (thousand)", None, CFG).correct


def test_free_text_is_correct_at_the_f1_threshold() -> None:
    free = item("free", "glaucoma damages the optic nerve")
    assert score_item(free, "Glaucoma damages the optic nerve.", None, CFG).correct
    assert not score_item(free, "It is a disease of the heart.", None, CFG).correct
    assert score_item(free, "", None, CFG).parsed is None
    assert final_answer("reasoning\nAnswer: 42\n") == "42"
