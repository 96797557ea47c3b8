"""Error buckets: one planted record per bucket, the precedence between buckets, the text detectors."""

from __future__ import annotations

from typing import Any

import pytest

from assistant.evaluation.buckets import (
    BUCKETS,
    classify,
    count_buckets,
    duplicate_ngram_share,
    is_refusal,
    is_repetitive,
)
from assistant.evaluation.store import Record


def rec(**kw: Any) -> Record:
    base: dict[str, Any] = dict(run_id="r", item_id="q1", strategy="base", corpus="pubmedqa", answer_type="label",
                                question="Does X cause Y?", gold="yes", answer="no", parsed="no", scored="no")
    base.update(kw)
    return Record(**base)


LOOP = "The drug lowers blood pressure in adults. " * 5

CASES = [
    ("correct", rec(correct=True, answer="yes", parsed="yes", scored="yes"), ""),
    ("error wins over everything", rec(error="CUDA OOM", answer="I cannot answer", finish_reason="length"), "error"),
    ("error even if marked correct", rec(error="boom", correct=True), "error"),
    ("refusal", rec(scored=None, answer="I'm sorry, but the sources do not contain that."), "refusal"),
    ("refusal, case-insensitive", rec(scored=None, answer="NOT ENOUGH INFORMATION to say."), "refusal"),
    ("refusal: cannot be determined", rec(scored=None, answer="This cannot be determined from the text."), "refusal"),
    ("refusal before repetition", rec(scored=None, answer="I don't know. " * 4), "refusal"),
    ("repetitive: one sentence 3 times", rec(scored=None, answer="Maybe. Maybe. Maybe."), "repetitive"),
    ("repetitive: duplicated 4-grams", rec(scored=None, answer=LOOP, finish_reason="length"), "repetitive"),
    ("too long", rec(scored=None, answer="A long, varied explanation that never ended", finish_reason="length"), "too_long"),
    ("format", rec(answer="Perhaps, it depends", parsed=None, scored=None), "format"),
    ("scored label is not a format error", rec(parsed=None, scored="no"), "wrong"),
    ("scored label: a cut or odd generated text is not why it is wrong",
     rec(answer="I cannot say. " * 4, finish_reason="length", scored="no"), "wrong"),
    ("retrieval miss", rec(gold_ids=["d1"], retrieved_ids=["d2", "d3"]), "retrieval_miss"),
    ("retrieval miss via extra", rec(gold_ids=["d1"], extra={"uses_retrieval": True}), "retrieval_miss"),
    ("wrong with gold", rec(gold_ids=["d1", "d9"], retrieved_ids=["d2", "d9"]), "wrong_with_gold"),
    ("RAG without gold ids", rec(retrieved_ids=["d2"]), "wrong"),
    ("non-RAG with gold ids", rec(gold_ids=["d1"]), "wrong"),
    ("plain wrong", rec(), "wrong"),
]


@pytest.mark.parametrize(("record", "bucket"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(record: Record, bucket: str) -> None:
    assert classify(record) == bucket
    assert bucket == "" or bucket in BUCKETS


def test_buckets_in_precedence_order() -> None:
    assert list(BUCKETS) == ["error", "refusal", "repetitive", "too_long", "format", "retrieval_miss",
                             "wrong_with_gold", "wrong"]
    assert all(isinstance(d, str) and d for d in BUCKETS.values())


@pytest.mark.parametrize(("text", "expected"), [
    ("I cannot answer this question.", True),
    ("i can't tell", True),
    ("I am unable to determine the answer.", True),
    ("I do not know.", True),
    ("The context does not mention aspirin.", True),
    ("Yes. The trial shows a benefit.", False),
    ("Patients who cannot walk were excluded; the answer is no.", False),
    ("", False),
])
def test_is_refusal(text: str, expected: bool) -> None:
    assert is_refusal(text) is expected


@pytest.mark.parametrize(("text", "expected"), [
    (LOOP, True),
    ("yes yes yes", False),  # too short for 4-grams, and one sentence
    ("Yes.\nYes.\nYes.", True),
    ("Yes. No. Yes.", False),
    ("The study enrolled 120 patients and followed them for two years; mortality fell by a third in the "
     "treatment arm while adverse events were rare and mild.", False),
    ("", False),
])
def test_is_repetitive(text: str, expected: bool) -> None:
    assert is_repetitive(text) is expected


def test_duplicate_ngram_share() -> None:
    assert duplicate_ngram_share("a b c") == 0.0
    assert duplicate_ngram_share("a b c d") == 0.0
    # 8 words -> 5 four-grams, of which "a b c d" appears twice: 1 duplicate of 5
    assert duplicate_ngram_share("a b c d a b c d") == pytest.approx(1 / 5)


def test_count_buckets_in_order_without_zeros() -> None:
    records = [rec(correct=True, parsed="yes", scored="yes"), rec(), rec(), rec(error="x"),
               rec(answer="I'm sorry", scored=None)]
    counts = count_buckets(records)
    assert counts == {"error": 1, "refusal": 1, "wrong": 2}
    assert list(counts) == ["error", "refusal", "wrong"]
