"""Elo ratings by hand, order averaging, games from correctness, and judge votes."""

from __future__ import annotations

import pytest

from assistant.evaluation.elo import EloRow, elo_ratings, games_from_correctness, vote_to_score


def test_one_win_from_equal_ratings() -> None:
    # expected 0.5 each, so A gains 32 * (1 - 0.5) = 16
    table = elo_ratings([("A", "B", 1.0)])
    assert table["A"] == EloRow("A", 1016.0, 1, 1, 0, 0)
    assert table["B"] == EloRow("B", 984.0, 1, 0, 0, 1)
    assert list(table) == ["A", "B"]  # highest rating first


def test_tie_between_equals_changes_nothing() -> None:
    table = elo_ratings([("A", "B", 0.5)])
    assert table["A"].rating == table["B"].rating == 1000.0
    assert (table["A"].ties, table["B"].ties) == (1, 1)


def test_sequential_update_by_hand() -> None:
    # after A beats B: 1016 / 984. Then B beats A: E_B = 1 / (1 + 10^(32/400)) = 1 / 2.202264 = 0.454078,
    # B += 32 * (1 - 0.454078) = 17.4695 -> 1001.4695, A -> 998.5305
    table = elo_ratings([("A", "B", 1), ("A", "B", 0)])
    assert table["B"].rating == pytest.approx(1001.4695, abs=1e-3)
    assert table["A"].rating == pytest.approx(998.5305, abs=1e-3)
    assert (table["A"].wins, table["A"].losses, table["A"].games) == (1, 1, 2)


def test_rounds_average_over_shuffled_orders() -> None:
    games = [("A", "B", 1), ("A", "B", 0)]
    table = elo_ratings(games, rounds=1000, seed=0)
    # each order gives A either 998.53 or 1001.47; the average over many orders is about 1000
    assert table["A"].rating == pytest.approx(1000, abs=0.5)
    assert table["A"].rating + table["B"].rating == pytest.approx(2000)  # zero-sum
    assert table["A"].games == 2  # the record counts each game once, not once per round
    assert elo_ratings(games, rounds=7, seed=3) == elo_ratings(games, rounds=7, seed=3)


def test_k_and_initial() -> None:
    table = elo_ratings([("A", "B", 0.0)], k=10, initial=1500)
    assert (table["A"].rating, table["B"].rating) == (1495.0, 1505.0)


@pytest.mark.parametrize("games", [[("A", "B", 0.7)], [("A", "A", 1.0)]])
def test_invalid_games(games: list[tuple[str, str, float]]) -> None:
    with pytest.raises(ValueError):
        elo_ratings(games)


def test_games_from_correctness_is_deterministic() -> None:
    records = {
        "q2": {"rag": True, "base": False, "cot": False},
        "q1": {"rag": True, "base": True},
    }
    assert games_from_correctness(records) == [
        ("base", "rag", 0.5),  # q1: both right
        ("base", "cot", 0.5),  # q2: both wrong
        ("base", "rag", 0.0),
        ("cot", "rag", 0.0),
    ]
    table = elo_ratings(games_from_correctness(records))
    assert next(iter(table)) == "rag"
    assert (table["rag"].wins, table["rag"].ties, table["rag"].losses) == (2, 1, 0)


@pytest.mark.parametrize(
    ("vote", "score"),
    [("A", 1.0), ("b", 0.0), ("tie", 0.5), ("both_bad", 0.5), ("Both bad", 0.5), ("C", None), ("", None)],
)
def test_vote_to_score(vote: str, score: float | None) -> None:
    assert vote_to_score(vote) == score
