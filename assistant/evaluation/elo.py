"""Elo ratings of answer strategies from pairwise games: per-question correctness (one game per pair of
strategies per question) or pairwise judge votes ("A", "B", "tie", "both_bad").

    from assistant.evaluation.elo import elo_ratings, games_from_correctness
    games = games_from_correctness({"q1": {"rag": True, "base": False}, "q2": {"rag": True, "base": True}})
    table = elo_ratings(games, rounds=100, seed=0)     # {"rag": EloRow(...), "base": EloRow(...)}

Standard Elo: expected score E_a = 1 / (1 + 10^((R_b - R_a) / 400)), then R_a += k (S_a - E_a) and
R_b -= k (S_a - E_a). Sequential Elo depends on the order of the games, and correctness games have no
natural order, so with rounds > 1 every round replays all games from the initial ratings in its own
shuffled order (random.Random(seed): deterministic for a seed) and the ratings are averaged over the
rounds; this is the order-shuffling the early LMSYS Chatbot Arena leaderboard used, without bootstrap
resampling of the games. rounds=1 plays the games once in the order given.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class EloRow:
    """One player's rating and record; `games` = wins + ties + losses, counted once, not per round."""

    name: str
    rating: float
    games: int
    wins: int
    ties: int
    losses: int


_SCORES = (0.0, 0.5, 1.0)


def _play(games: list[tuple[str, str, float]], k: float, initial: float) -> dict[str, float]:
    ratings: dict[str, float] = {}
    for a, b, score in games:
        ra, rb = ratings.get(a, initial), ratings.get(b, initial)
        expected = 1 / (1 + 10 ** ((rb - ra) / 400))
        ratings[a] = ra + k * (score - expected)
        ratings[b] = rb - k * (score - expected)
    return ratings


def elo_ratings(
    games: Iterable[tuple[str, str, float]],
    k: float = 32,
    initial: float = 1000,
    rounds: int = 1,
    seed: int | None = None,
) -> dict[str, EloRow]:
    """Ratings of every player in `games` (a, b, score_a), score_a 1 (a wins), 0.5 (tie) or 0 (b wins),
    highest rating first. rounds > 1 averages over shuffled orders (see the module docstring)."""
    played = [(a, b, float(s)) for a, b, s in games]
    for a, b, s in played:
        if s not in _SCORES:
            raise ValueError(f"score of {a} vs {b} must be 1, 0.5 or 0, got {s}")
        if a == b:
            raise ValueError(f"{a} cannot play against itself")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if rounds == 1:
        ratings = _play(played, k, initial)
    else:
        rng = random.Random(seed)
        ratings = {}
        for _ in range(rounds):
            order = played[:]
            rng.shuffle(order)
            for name, rating in _play(order, k, initial).items():
                ratings[name] = ratings.get(name, 0.0) + rating / rounds
    record: dict[str, list[int]] = {}  # name -> [wins, ties, losses]
    for a, b, s in played:
        ra, rb = record.setdefault(a, [0, 0, 0]), record.setdefault(b, [0, 0, 0])
        ra[2 - int(s * 2)] += 1  # 1 -> wins, 0.5 -> ties, 0 -> losses
        rb[int(s * 2)] += 1
    rows = [EloRow(n, ratings[n], sum(r), r[0], r[1], r[2]) for n, r in record.items()]
    rows.sort(key=lambda row: (-row.rating, row.name))
    return {row.name: row for row in rows}


def games_from_correctness(records: Mapping[str, Mapping[str, bool]]) -> list[tuple[str, str, float]]:
    """One game per pair of strategies per question from {question_id: {strategy: correct}}: the correct
    one wins, both right or both wrong is a tie. Questions and strategies in sorted order (a < b), so
    the list does not depend on the mappings' order."""
    games = []
    for qid in sorted(records):
        answers = records[qid]
        for a, b in itertools.combinations(sorted(answers), 2):
            ca, cb = bool(answers[a]), bool(answers[b])
            games.append((a, b, 0.5 if ca == cb else 1.0 if ca else 0.0))
    return games


def vote_to_score(vote: str) -> float | None:
    """score_a of a pairwise judge vote: "A" 1, "B" 0, "tie" 0.5, and "both_bad" also 0.5 (a tie, as
    Chatbot Arena counts "tie (bothbad)"); None for anything else. Case, spaces and hyphens are ignored
    ("Both bad", "both-bad", "bothbad", "tie (bothbad)")."""
    key = vote.strip().lower().replace(" ", "_").replace("-", "_")
    return {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5, "bothbad": 0.5, "tie_(bothbad)": 0.5}.get(key)
