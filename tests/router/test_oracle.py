"""Oracle, best single strategy, gap closed and router evaluation against hand-computed tables; the split."""

from __future__ import annotations

import pytest

from assistant.evaluation.store import Record
from assistant.router.oracle import (
    best_single,
    cheapest_correct,
    check_disjoint,
    compare,
    correctness_table,
    evaluate_router,
    fold_of,
    gap_closed,
    oracle_accuracy,
    oracle_decisions,
    records_hash,
    split_items,
    strategy_accuracy,
    strategy_costs,
    training_label,
)

T, F = True, False
TABLE = {
    "q1": {"base": T, "rag": T, "adapter:x": F},
    "q2": {"base": F, "rag": T, "adapter:x": F},
    "q3": {"base": F, "rag": F, "adapter:x": T},
    "q4": {"base": F, "rag": F, "adapter:x": F},
}
COSTS = {"base": 1.0, "adapter:x": 2.0, "rag": 3.0}


def rec(item: str, strategy: str, correct: bool, latency: float = 1.0, run: str = "r1") -> Record:
    return Record(run, item, strategy, "pubmedqa", "label", f"question {item}?", "yes", correct=correct,
                  latency=latency)


def test_hand_computed_table() -> None:
    assert oracle_accuracy(TABLE) == 0.75
    assert strategy_accuracy(TABLE) == {"adapter:x": 0.25, "base": 0.25, "rag": 0.5}
    assert best_single(TABLE) == ("rag", 0.5)
    assert [cheapest_correct(TABLE[q], COSTS) for q in ("q1", "q2", "q3", "q4")] == ["base", "rag", "adapter:x",
                                                                                     None]
    assert training_label(TABLE["q4"], COSTS) == "base"  # nobody right: the cheapest overall
    assert oracle_decisions(TABLE, COSTS) == {"q1": "base", "q2": "rag", "q3": "adapter:x", "q4": "base"}


def test_best_single_ties_prefer_cheaper() -> None:
    table = {"a": {"base": T, "rag": F}, "b": {"base": F, "rag": T}}
    assert best_single(table) == ("base", 0.5)
    assert best_single(table, {"base": 5.0, "rag": 1.0}) == ("rag", 0.5)


def test_gap_closed() -> None:
    assert gap_closed(0.625, 0.5, 0.75) == pytest.approx(0.5)
    assert gap_closed(0.75, 0.5, 0.75) == pytest.approx(1.0)
    assert gap_closed(0.4, 0.5, 0.75) == pytest.approx(-0.4)
    assert gap_closed(0.5, 0.5, 0.5) is None


def test_evaluate_router_counts_missing_as_wrong() -> None:
    result = evaluate_router({"q1": "base", "q2": "rag", "q3": "rag", "q4": "cot"}, TABLE, COSTS)
    assert result["n"] == 4 and result["correct"] == 2 and result["accuracy"] == 0.5
    assert result["missing"] == 1  # cot was never evaluated on q4
    assert result["mean_cost"] == pytest.approx((1 + 3 + 3) / 3)  # cot has no cost
    assert result["routes"] == {"base": 0.25, "cot": 0.25, "rag": 0.5}
    with pytest.raises(ValueError, match="no routing decisions"):
        evaluate_router({}, TABLE, COSTS)


def test_compare_router_single_oracle() -> None:
    decisions = {"q1": "base", "q2": "rag", "q3": "rag", "q4": "base"}
    result = compare(decisions, TABLE, COSTS)
    assert result["router"]["accuracy"] == 0.5
    assert result["oracle"]["accuracy"] == 0.75
    assert result["oracle"]["mean_cost"] == pytest.approx((1 + 3 + 2 + 1) / 4)
    assert result["best_single"] == ("rag", 0.5)
    assert result["single"]["rag"]["mean_cost"] == 3.0
    assert result["gap_closed"] == pytest.approx(0.0)
    assert compare(oracle_decisions(TABLE, COSTS), TABLE, COSTS)["gap_closed"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no evaluation records"):
        compare({"q9": "rag"}, TABLE, COSTS)


def test_tables_and_costs_from_records() -> None:
    records = [rec("q1", "base", T, 1.0), rec("q1", "rag", F, 3.0), rec("q2", "base", F, 2.0),
               rec("q2", "rag", T, 0.0), rec("q1", "rag", T, 5.0, run="r2")]
    assert correctness_table(records) == {"q1": {"base": T, "rag": T}, "q2": {"base": F, "rag": T}}  # last wins
    assert strategy_costs(records) == {"base": 1.5, "rag": 4.0}  # the untimed record is left out
    assert records_hash(records) == records_hash(list(reversed(records)))
    assert records_hash(records) != records_hash(records[:-1])
    with pytest.raises(ValueError, match="no cost for strategy 'rag'"):
        cheapest_correct({"rag": T}, {"base": 1.0})
    with pytest.raises(ValueError, match="empty correctness table"):
        oracle_accuracy({})


def test_any_record_with_the_read_attributes_will_do() -> None:
    """The oracle reads run_id, item_id, strategy, correct and latency, and imports no storage type."""
    from typing import NamedTuple

    class Row(NamedTuple):
        run_id: str
        item_id: str
        strategy: str
        correct: bool
        latency: float

    rows = [Row("r1", "q1", "base", T, 1.0), Row("r1", "q1", "rag", F, 3.0)]
    stored = [rec("q1", "base", T, 1.0), rec("q1", "rag", F, 3.0)]
    assert correctness_table(rows) == correctness_table(stored) == {"q1": {"base": T, "rag": F}}
    assert strategy_costs(rows) == strategy_costs(stored) and records_hash(rows) == records_hash(stored)


def test_split_is_deterministic_stable_and_disjoint() -> None:
    ids = [f"pubmedqa:{i}" for i in range(1000)]
    train, test = split_items(ids, test_fraction=0.3, seed=0)
    assert train | test == set(ids) and not train & test
    assert 0.25 < len(test) / len(ids) < 0.35
    assert split_items(reversed(ids), 0.3, 0) == (train, test)
    more_train, more_test = split_items([*ids, *(f"tatqa:{i}" for i in range(200))], 0.3, 0)
    assert test <= more_test and train <= more_train  # adding questions never moves old ones
    assert split_items(ids, 0.3, seed=1)[1] != test
    check_disjoint(train, test)
    with pytest.raises(ValueError, match="strictly between"):
        split_items(ids, test_fraction=1.0)


def test_overlap_raises_naming_ids() -> None:
    with pytest.raises(ValueError, match=r"2 question\(s\) are in both.*q1, q2"):
        check_disjoint({"q1", "q2", "q3"}, {"q2", "q1", "q9"})


def test_folds_are_stable_and_cover_every_question() -> None:
    ids = [f"pubmedqa:{i}" for i in range(500)]
    folds = [fold_of(i, 5) for i in ids]
    assert set(folds) == {0, 1, 2, 3, 4} and all(60 < folds.count(k) < 140 for k in range(5))
    assert [fold_of(i, 5) for i in ids] == folds and fold_of("x", 1) == 0
    assert [fold_of(i, 5, seed=3) for i in ids] != folds
    with pytest.raises(ValueError, match="at least 1"):
        fold_of("x", 0)
