"""Metrics against hand-computed cases: label parsing, accuracy, macro-F1, TAT-QA EM/F1, bootstrap,
percentiles and retrieval ranks."""

from __future__ import annotations

import itertools
import random

import pytest

from assistant.evaluation.metrics import (
    accuracy,
    bootstrap_ci,
    macro_f1,
    normalize_label,
    parse_scale,
    percentile,
    recall_at_k,
    reciprocal_rank,
    span_em_f1,
    split_answer,
    tatqa_em_f1,
)

PQA = ["yes", "no", "maybe"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Answer: yes", "yes"),
        ("YES. The abstract shows a clear effect.", "yes"),
        ('"No", because the trial was small.', "no"),
        ("It could be yes or no.\nFinal answer: Maybe.", "maybe"),  # the answer line beats mentions
        ("Answer: maybe\nOn reflection...\nFinal answer: no", "no"),  # the last answer line wins
        ("Noted. So the answer is **yes**.", "yes"),  # "Noted" is not a whole-word "no"
        ("The evidence suggests maybe.", "maybe"),  # the only option mentioned
        ("It could be yes or no.", None),  # ambiguous
        ("Nothing conclusive here.", None),
        ("", None),
    ],
)
def test_normalize_label(text: str, expected: str | None) -> None:
    assert normalize_label(text, PQA) == expected


def test_normalize_label_returns_the_option_as_spelled() -> None:
    assert normalize_label("yes", ["Yes", "No"]) == "Yes"
    assert normalize_label("Answer: B) the second one", ["A)", "B)"]) == "B)"


def test_accuracy_and_macro_f1_by_hand() -> None:
    gold = ["yes", "yes", "yes", "no", "no", "maybe"]
    pred = ["yes", "yes", "no", "no", "maybe", "maybe"]
    # yes:   TP 2, FP 0, FN 1 -> 2*2 / (2*2 + 0 + 1) = 4/5
    # no:    TP 1, FP 1, FN 1 -> 2 / (2 + 1 + 1)     = 1/2
    # maybe: TP 1, FP 1, FN 0 -> 2 / (2 + 1 + 0)     = 2/3
    # macro = (4/5 + 1/2 + 2/3) / 3 = (24 + 15 + 20) / 90 = 59/90
    assert accuracy(pred, gold) == pytest.approx(4 / 6)
    assert macro_f1(pred, gold) == pytest.approx(59 / 90)
    # a listed label with no support and no predictions counts 0 (sklearn, zero_division=0)
    assert macro_f1(pred, gold, labels=["yes", "no", "maybe", "unknown"]) == pytest.approx(59 / 120)
    assert macro_f1(pred, gold, labels=["yes", "no"]) == pytest.approx((4 / 5 + 1 / 2) / 2)


def test_unparsed_predictions_are_wrong_and_only_a_label_when_labels_are_not_given() -> None:
    gold, pred = ["yes", "no"], ["yes", None]
    assert accuracy(pred, gold) == 0.5
    assert macro_f1(pred, gold) == pytest.approx(1 / 3)  # yes 1, no 0, None 0
    assert macro_f1(pred, gold, labels=["yes", "no"]) == pytest.approx(1 / 2)


def test_classification_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError):
        accuracy(["yes"], ["yes", "no"])
    with pytest.raises(ValueError):
        macro_f1([], [])


# ---- TAT-QA (official semantics) ----


@pytest.mark.parametrize(
    ("pred", "gold", "pred_scale", "gold_scale", "expected"),
    [
        ("1,234", ["1234"], "", "", (1.0, 1.0)),
        ("$1.2 million", ["1.2"], "", "million", (1.0, 1.0)),  # the scale word in the text counts
        ("1.2", ["1.2"], "million", "million", (1.0, 1.0)),
        ("1.2", ["1.2"], "thousand", "million", (0.0, 0.0)),  # wrong scale: 1200 vs 1200000
        ("1.2", ["1.2"], "", "million", (0.0, 0.0)),  # missing scale
        ("1,200", ["1.2"], "thousand", "million", (1.0, 1.0)),  # the scale is folded into the value
        ("23.42%", ["23.42"], "", "percent", (1.0, 1.0)),
        ("23.42", ["23.42"], "percent", "percent", (1.0, 1.0)),
        ("0.2342", ["23.42"], "", "percent", (1.0, 1.0)),  # add_percent_pred
        ("23.42", ["23.42"], "", "percent", (0.0, 0.0)),
        ("(5)", ["-5"], "", "", (1.0, 1.0)),
        (["Apple Inc.", "Boeing"], ["boeing", "apple inc"], "", "", (1.0, 1.0)),  # spans in any order
        # both sides become one sorted string: bags {apple, boeing} vs {apple, cisco}, P = R = 1/2
        (["apple", "boeing"], ["apple", "cisco"], "", "", (0.0, 0.5)),
        # a scale on a text span is appended as a word: {apple, million} vs {apple}: P 1/2, R 1 -> 0.67
        ("apple", ["apple"], "million", "", (0.0, 0.67)),
        ("", ["1"], "", "", (0.0, 0.0)),
    ],
)
def test_tatqa_em_f1(
    pred: str | list[str], gold: list[str], pred_scale: str, gold_scale: str, expected: tuple[float, float]
) -> None:
    assert tatqa_em_f1(pred, gold, pred_scale, gold_scale) == expected


def test_tatqa_arithmetic_and_count_score_f1_as_em() -> None:
    # "5.5 dollars" is not a number (the second word is no scale): bags {5.5, dollars} vs {5.5} -> 0.67
    assert tatqa_em_f1("5.5 dollars", "5.5") == (0.0, 0.67)
    assert tatqa_em_f1("5.5 dollars", "5.5", answer_type="arithmetic") == (0.0, 0.0)


def test_span_em_f1_aligns_bags_and_ignores_drop_number_rule() -> None:
    # gold "boeing co" ~ pred "boeing" (P 1, R 1/2 -> 2/3), gold "apple" ~ pred "apple inc" (2/3)
    assert span_em_f1(["apple inc", "boeing"], ["boeing co", "apple"]) == (0.0, 0.67)
    # one gold span unmatched counts 0: (1 + 0) / 2
    assert span_em_f1(["apple"], ["apple", "boeing"]) == (0.0, 0.5)
    # TAT-QA switched off DROP's "numbers must match": {revenue, 2019} vs {revenue, 2018} -> 1/2
    assert span_em_f1("revenue 2019", "revenue 2018") == (0.0, 0.5)


def test_span_alignment_matches_brute_force() -> None:
    """The optimal one-to-one alignment (scipy's linear_sum_assignment) against every permutation."""
    rng = random.Random(0)
    vocab = ["apple", "boeing", "cisco", "inc", "co", "revenue", "2019"]

    def bag_f1(p: set[str], g: set[str]) -> float:
        inter = len(p & g)
        precision, recall = inter / len(p), inter / len(g)
        return 2 * precision * recall / (precision + recall) if inter else 0.0

    for _ in range(200):
        pred = [" ".join(rng.sample(vocab, rng.randint(1, 3))) for _ in range(rng.randint(1, 4))]
        gold = [" ".join(rng.sample(vocab, rng.randint(1, 3))) for _ in range(rng.randint(1, 4))]
        pb, gb = [set(x.split()) for x in pred], [set(x.split()) for x in gold]
        size = max(len(pb), len(gb))
        if len(gb) <= len(pb):
            best = max(sum(bag_f1(pb[j], g) for g, j in zip(gb, perm, strict=True))
                       for perm in itertools.permutations(range(len(pb)), len(gb)))
        else:
            best = max(sum(bag_f1(p, gb[j]) for p, j in zip(pb, perm, strict=True))
                       for perm in itertools.permutations(range(len(gb)), len(pb)))
        assert span_em_f1(pred, gold)[1] == pytest.approx(best / size, abs=0.005 + 1e-9)  # F1 is rounded to 2 places


def test_zero_answers_and_empty_bags_keep_the_official_behaviour() -> None:
    # no span on one side: nothing to align, F1 0 (EM only when both sides have no span at all)
    assert span_em_f1([], ["apple"]) == (0.0, 0.0)
    assert span_em_f1(["apple"], []) == (0.0, 0.0)
    assert span_em_f1([], []) == (1.0, 0.0)
    # a span that normalizes to nothing is an empty bag: DROP's F1 of two empty bags is 1 (P = R = 1) ...
    assert span_em_f1("the", "a") == (1.0, 1.0)
    # ... and against a non-empty bag 0 (P 1, R 0 -> 2PR/(P+R) = 0)
    assert span_em_f1("the", "apple") == (0.0, 0.0)
    # an extra empty predicted span is an unmatched span: (1 + 0) / 2
    assert span_em_f1(["apple", "the"], ["apple"]) == (0.0, 0.5)
    # no prediction or no gold answer at all: TAT-QA scores 0, 0
    assert tatqa_em_f1("", ["1"]) == (0.0, 0.0)
    assert tatqa_em_f1("1", []) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("text", "answer", "scale"),
    [
        ("$1.2 million", "$1.2", "million"),
        ("12.5%", "12.5", "percent"),
        ("about 3 Billion dollars", "about 3 dollars", "billion"),
        ("12 per cent", "12", "percent"),
        ("1,234", "1,234", ""),
        ("The percentage rose", "The percentage rose", ""),
    ],
)
def test_parse_scale_and_split_answer(text: str, answer: str, scale: str) -> None:
    assert parse_scale(text) == scale
    assert split_answer(text) == (answer, scale)


def test_split_answer_feeds_tatqa() -> None:
    answer, scale = split_answer("$1.2 million")
    assert tatqa_em_f1(answer, ["1.2"], pred_scale=scale, gold_scale="million") == (1.0, 1.0)


# ---- statistics ----


def test_bootstrap_ci_properties() -> None:
    values = [0.0, 1.0] * 10
    mean, low, high = bootstrap_ci(values, seed=1)
    assert mean == 0.5
    assert low <= mean <= high
    assert bootstrap_ci(values, seed=1) == (mean, low, high)  # deterministic for a seed
    assert bootstrap_ci(values, seed=2) != (mean, low, high)
    _, big_low, big_high = bootstrap_ci([0.0, 1.0] * 1000, seed=1)
    assert big_high - big_low < (high - low) / 3  # ~sqrt(100) = 10 times narrower
    assert bootstrap_ci([0.7]) == (0.7, 0.7, 0.7)
    assert bootstrap_ci([1.0] * 5, n_resamples=3) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], confidence=1.0)


def test_percentile_interpolates_linearly() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5  # position 1.5 in [1, 2, 3, 4]
    assert percentile(values, 95) == pytest.approx(3.85)  # position 2.85: 3 + 0.85
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


# ---- retrieval ----


def test_recall_at_k_and_reciprocal_rank() -> None:
    retrieved = ["d3", "d1", "d2"]
    assert recall_at_k(retrieved, ["d1"], 1) == 0.0
    assert recall_at_k(retrieved, ["d1"], 2) == 1.0
    assert recall_at_k(retrieved, ["d9", "d2"], 10) == 1.0
    assert reciprocal_rank(retrieved, ["d1"]) == 0.5
    assert reciprocal_rank(retrieved, ["d2", "d1"]) == 0.5  # the first gold hit counts
    assert reciprocal_rank(retrieved, ["d9"]) == 0.0
    assert reciprocal_rank([], ["d1"]) == 0.0
    with pytest.raises(ValueError):
        recall_at_k(retrieved, ["d1"], 0)
    with pytest.raises(ValueError):
        reciprocal_rank(retrieved, [])
