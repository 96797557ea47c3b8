"""Choosing how to learn the router: cross-validate the candidate methods on the training questions and
fit the chosen one on all of them.

    from assistant.router.selection import select_policy, routed_accuracy
    policy, cv = select_policy(signals, rows, costs, seed=0)     # rows[i]: strategy -> correct, question i
    routed_accuracy(policy, test_signals, test_rows)

Candidates, simplest first: best-single, per-strategy at each C of C_GRID (strongest first),
cheapest-correct (see router.learned for the methods). Each is scored by routed accuracy over
scikit-learn's RepeatedKFold (`repeats` shuffles of `folds` folds); the one-standard-error rule keeps the
simplest candidate within one standard error of the best mean, so a policy that reads the signals is used
only when they predict which strategy is right. Tests: `.venv/bin/pytest tests/router/test_learned.py -q`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from assistant.router.learned import METHODS, LearnedPolicy
from assistant.router.oracle import training_label
from assistant.router.signals import Signals

C_GRID = (0.01, 0.1, 1.0)  # per-strategy regularisation strengths select_policy tries
ORDER = {"best-single": 0, "per-strategy": 1, "cheapest-correct": 2}  # simplest first


def fit_method(
    method: str, c: float | None, signals: Sequence[Signals], rows: Sequence[Mapping[str, bool]],
    costs: Mapping[str, float], seed: int,
) -> LearnedPolicy:
    """A policy of `method` (one of METHODS) fitted on these questions; `c` for per-strategy."""
    if method == "cheapest-correct":
        return LearnedPolicy.train([(s, training_label(r, costs)) for s, r in zip(signals, rows, strict=True)],
                                   costs=costs, seed=seed)
    return LearnedPolicy.train_correctness(signals, rows, costs=costs, c=c if c is not None else 1.0, seed=seed,
                                           signals_free=method == "best-single")


def routed_accuracy(policy: LearnedPolicy, signals: Sequence[Signals], rows: Sequence[Mapping[str, bool]]) -> float:
    """The share of questions whose routed strategy answered correctly (not evaluated counts as wrong)."""
    if not rows:
        raise ValueError("no questions to score the policy on")
    return sum(bool(row.get(policy.decide(s).strategy, False)) for s, row in zip(signals, rows, strict=True)) / len(rows)


def select_policy(
    signals: Sequence[Signals],
    rows: Sequence[Mapping[str, bool]],
    costs: Mapping[str, float],
    *,
    methods: Sequence[str] = METHODS,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
) -> tuple[LearnedPolicy, list[dict[str, Any]]]:
    """Cross-validate the candidate policies on these (training) questions and fit the chosen one on all.

    Returns the fitted policy and one row per candidate: method, c, accuracy (mean), se, chosen.
    """
    from sklearn.model_selection import RepeatedKFold

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown router method '{unknown[0]}' (known: {', '.join(METHODS)})")
    if len(signals) != len(rows):
        raise ValueError(f"{len(signals)} signals but {len(rows)} correctness rows: pass one row per question")
    n = len(rows)
    folds = min(folds, n)
    if folds < 2:
        raise ValueError(f"{n} training question(s) are too few to cross-validate a router")
    candidates = [(m, c) for m in sorted(dict.fromkeys(methods), key=ORDER.__getitem__)
                  for c in (C_GRID if m == "per-strategy" else (None,))]
    # every candidate is scored on the same folds, so their means differ by the method, not the split
    splits = list(RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed).split(np.zeros((n, 1))))
    table: list[dict[str, Any]] = []
    for method, c in candidates:
        scores = []
        for train, test in splits:
            policy = fit_method(method, c, [signals[i] for i in train], [rows[i] for i in train], costs, seed)
            scores.append(routed_accuracy(policy, [signals[i] for i in test], [rows[i] for i in test]))
        table.append({"method": method, "c": c, "accuracy": float(np.mean(scores)),
                      "se": float(np.std(scores) / np.sqrt(len(scores) / repeats)), "chosen": False})
    best = max(table, key=lambda row: row["accuracy"])
    chosen = next(row for row in table if row["accuracy"] >= best["accuracy"] - best["se"] - 1e-12)
    chosen["chosen"] = True
    return fit_method(chosen["method"], chosen["c"], signals, rows, costs, seed), table


__all__ = ["C_GRID", "fit_method", "routed_accuracy", "select_policy"]
