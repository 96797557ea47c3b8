"""What the evaluation records say about routing: who got each question right, at what cost, and the ceiling.

    from assistant.router.oracle import (correctness_table, strategy_costs, training_label, oracle_accuracy,
                                         best_single, gap_closed, split_items, evaluate_router)
    table = correctness_table(records)            # item_id -> {strategy: correct}
    costs = strategy_costs(records)               # strategy -> mean latency in seconds
    train, test = split_items(table, test_fraction=0.3, seed=0)
    labels = {i: training_label(table[i], costs) for i in train}     # Adaptive-RAG style labels
    router = evaluate_router(decisions, {i: table[i] for i in test}, costs)
    gap_closed(router["accuracy"], best_single(test_table)[1], oracle_accuracy(test_table))

Definitions:
- a question's label is the cheapest strategy that answered it correctly (`cheapest_correct`); a question
  no strategy answered correctly is labelled with the cheapest strategy evaluated on it (nothing is gained
  by paying more), see `training_label`;
- the oracle picks, per question, a strategy that answered correctly: its accuracy is the share of questions
  some strategy got right, its cost that of the cheapest correct (else cheapest) strategy;
- a strategy not evaluated on a question counts as wrong on it.
Cost is seconds of latency per question (evaluation.report turns it into dollars with the machine's price).
Records are anything with the attributes of `ScoredAnswer` (evaluation.store.Record is one): the router's
core reads no storage. Tests: `.venv/bin/pytest tests/router/test_oracle.py -q`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from statistics import fmean
from typing import Any, Protocol

Table = dict[str, dict[str, bool]]


class ScoredAnswer(Protocol):
    """What the oracle reads of one evaluation record: one question answered by one strategy, scored."""

    @property
    def run_id(self) -> str: ...
    @property
    def item_id(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def correct(self) -> bool: ...
    @property
    def latency(self) -> float: ...


def correctness_table(records: Iterable[ScoredAnswer]) -> Table:
    """item_id -> {strategy: correct}. When several records share (item, strategy), say the same question
    in two runs, the last one wins."""
    table: Table = {}
    for r in records:
        table.setdefault(r.item_id, {})[r.strategy] = bool(r.correct)
    return table


def strategy_costs(records: Iterable[ScoredAnswer]) -> dict[str, float]:
    """strategy -> mean latency in seconds over its records that recorded one (latency > 0), as
    evaluation.report does; a strategy with no timed record costs 0.0."""
    timed: dict[str, list[float]] = {}
    for r in records:
        timed.setdefault(r.strategy, [])
        if r.latency > 0:
            timed[r.strategy].append(float(r.latency))
    return {s: fmean(values) if values else 0.0 for s, values in timed.items()}


def records_hash(records: Iterable[ScoredAnswer]) -> str:
    """A short sha256 of what the router learns from (run, item, strategy, verdict, latency), independent of
    record order: saved with a learned policy so a stale one can be recognised."""
    rows = sorted((r.run_id, r.item_id, r.strategy, bool(r.correct), round(float(r.latency), 6)) for r in records)
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def _cost(costs: Mapping[str, float], strategy: str) -> float:
    if strategy not in costs:
        raise ValueError(f"no cost for strategy '{strategy}' (known: {', '.join(sorted(costs)) or 'none'})")
    return float(costs[strategy])


def cheapest_correct(row: Mapping[str, bool], costs: Mapping[str, float]) -> str | None:
    """The cheapest strategy that answered the question correctly (ties: alphabetical); None when none did."""
    correct = [s for s, ok in row.items() if ok]
    return min(correct, key=lambda s: (_cost(costs, s), s)) if correct else None


def training_label(row: Mapping[str, bool], costs: Mapping[str, float]) -> str:
    """The label a learned policy trains on: the cheapest correct strategy, else the cheapest one evaluated."""
    if not row:
        raise ValueError("no strategy was evaluated on this question: it cannot be labelled")
    return cheapest_correct(row, costs) or min(row, key=lambda s: (_cost(costs, s), s))


def oracle_decisions(table: Mapping[str, Mapping[str, bool]], costs: Mapping[str, float]) -> dict[str, str]:
    """The oracle's route for every question: its training label."""
    return {item: training_label(row, costs) for item, row in table.items()}


def _require(table: Mapping[str, Mapping[str, bool]]) -> None:
    if not table:
        raise ValueError("empty correctness table: there are no evaluation records for these questions")


def oracle_accuracy(table: Mapping[str, Mapping[str, bool]]) -> float:
    """The share of questions that at least one strategy answered correctly."""
    _require(table)
    return sum(any(row.values()) for row in table.values()) / len(table)


def strategy_accuracy(table: Mapping[str, Mapping[str, bool]]) -> dict[str, float]:
    """strategy -> accuracy over every question of the table (not evaluated counts as wrong)."""
    _require(table)
    names = sorted({s for row in table.values() for s in row})
    return {s: sum(row.get(s, False) for row in table.values()) / len(table) for s in names}


def best_single(
    table: Mapping[str, Mapping[str, bool]], costs: Mapping[str, float] | None = None
) -> tuple[str, float]:
    """The single strategy with the best accuracy over the table, and that accuracy. Ties go to the cheaper
    strategy when `costs` is given, then alphabetically."""
    scores = strategy_accuracy(table)
    price = costs or {}
    name = min(scores, key=lambda s: (-scores[s], price.get(s, 0.0), s))
    return name, scores[name]


def gap_closed(router_accuracy: float, best_single_accuracy: float, oracle_accuracy: float) -> float | None:
    """(router - best single) / (oracle - best single): 1.0 matches the oracle, 0.0 the best single strategy,
    negative is worse than it. None when the oracle is no better than the best single strategy."""
    gap = oracle_accuracy - best_single_accuracy
    if gap <= 1e-12:
        return None
    return (router_accuracy - best_single_accuracy) / gap


# ---------------------------------------------------------------------------------- train/test separation


def _unit(item_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_items(
    item_ids: Iterable[str], test_fraction: float = 0.3, seed: int = 0
) -> tuple[set[str], set[str]]:
    """(train ids, test ids): a question goes to test when the hash of (seed, id) falls below `test_fraction`.

    Deterministic and stable: the same id lands on the same side in every run, on every machine, whatever
    other ids are present (adding questions never moves old ones across).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    train: set[str] = set()
    test: set[str] = set()
    for item in item_ids:
        (test if _unit(item, seed) < test_fraction else train).add(item)
    return train, test


def fold_of(item_id: str, folds: int, seed: int = 0) -> int:
    """The cross-fitting fold (0 .. folds-1) of a question, by the same stable hash as split_items."""
    if folds < 1:
        raise ValueError(f"folds must be at least 1, got {folds}")
    return min(folds - 1, int(_unit(item_id, seed + 1) * folds))


def check_disjoint(train_ids: Collection[str], test_ids: Collection[str]) -> None:
    """Raise ValueError naming the overlap when a question is in both the training and the test set."""
    overlap = sorted(set(train_ids) & set(test_ids))
    if overlap:
        shown = ", ".join(overlap[:5]) + (f", ... ({len(overlap)} in all)" if len(overlap) > 5 else "")
        raise ValueError(f"{len(overlap)} question(s) are in both the training and the test set: {shown}; "
                         "evaluate the router only on questions it was not trained on")


# ---------------------------------------------------------------------------------- router evaluation


def evaluate_router(
    decisions: Mapping[str, str], table: Mapping[str, Mapping[str, bool]], costs: Mapping[str, float]
) -> dict[str, Any]:
    """Accuracy and cost of routing each question (item_id -> strategy) over the evaluation records.

    Returns {"n", "correct", "accuracy", "mean_cost", "routes" (strategy -> share of questions), "missing"}.
    A decision whose strategy was not evaluated on that question (or a question with no records) counts as
    wrong and is counted in "missing"; mean_cost averages the decisions whose strategy has a known cost
    (None when none has).
    """
    if not decisions:
        raise ValueError("no routing decisions to evaluate")
    correct = missing = 0
    priced: list[float] = []
    routes: dict[str, int] = {}
    for item, strategy in decisions.items():
        row = table.get(item, {})
        if strategy in row:
            correct += bool(row[strategy])
        else:
            missing += 1
        if strategy in costs:
            priced.append(float(costs[strategy]))
        routes[strategy] = routes.get(strategy, 0) + 1
    n = len(decisions)
    return {
        "n": n,
        "correct": correct,
        "accuracy": correct / n,
        "mean_cost": fmean(priced) if priced else None,
        "routes": {s: routes[s] / n for s in sorted(routes)},
        "missing": missing,
    }


def compare(
    decisions: Mapping[str, str], table: Mapping[str, Mapping[str, bool]], costs: Mapping[str, float]
) -> dict[str, Any]:
    """The router against every single strategy and the oracle, on the decided questions.

    Every decided question must have evaluation records (ValueError otherwise). Returns {"router",
    "single": {strategy: ...}, "oracle"} (each an `evaluate_router` dict), "best_single": (name, accuracy)
    (ties: the cheaper) and "gap_closed" (None when the oracle is no better than the best single strategy).
    """
    if not decisions:
        raise ValueError("no routing decisions to evaluate")
    unrecorded = sorted(item for item in decisions if not table.get(item))
    if unrecorded:
        raise ValueError(f"{len(unrecorded)} routed question(s) have no evaluation records, e.g. "
                         f"{', '.join(unrecorded[:5])}: evaluate on questions from the same runs")
    sub = {item: table[item] for item in decisions}
    strategies = sorted({s for row in sub.values() for s in row})
    single = {s: evaluate_router(dict.fromkeys(sub, s), sub, costs) for s in strategies}
    oracle = evaluate_router(oracle_decisions(sub, costs), sub, costs)
    router = evaluate_router(decisions, sub, costs)
    best = min(strategies, key=lambda s: (-single[s]["accuracy"], costs.get(s, 0.0), s))
    best_accuracy = single[best]["accuracy"]
    return {
        "router": router,
        "single": single,
        "oracle": oracle,
        "best_single": (best, best_accuracy),
        "gap_closed": gap_closed(router["accuracy"], best_accuracy, oracle["accuracy"]),
    }

__all__ = [
    "ScoredAnswer",
    "Table",
    "best_single",
    "cheapest_correct",
    "check_disjoint",
    "compare",
    "correctness_table",
    "evaluate_router",
    "fold_of",
    "gap_closed",
    "oracle_accuracy",
    "oracle_decisions",
    "records_hash",
    "split_items",
    "strategy_accuracy",
    "strategy_costs",
    "training_label",
]
