"""The classifiers behind the learned routing policy: scikit-learn models over Signals features, and two
stand-ins that need no fitting.

    from assistant.router.estimators import make_classifier, ConstantModel, CorrectnessModel
    model = make_classifier("logistic", seed=0, c=0.1).fit(x, labels)          # or "tree", "boosting"
    CorrectnessModel(("base", "rag"), {"rag": fitted}, {"base": 0.4, "rag": 0.7}).predict_proba(x)

Every model answers `predict_proba(X)` with columns in the order of `classes_`, which is all
LearnedPolicy (router.learned) needs. scikit-learn is imported only inside make_classifier.
Tests: `.venv/bin/pytest tests/router/test_learned.py -q`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

KINDS = ("logistic", "tree", "boosting")


class ConstantModel:
    """Stands in for a classifier when the training labels hold a single strategy."""

    def __init__(self, label: str) -> None:
        self.classes_ = np.array([label])

    def predict_proba(self, x: Any) -> np.ndarray:
        return np.ones((len(x), 1))


class CorrectnessModel:
    """One binary model per strategy: predict_proba(X)[:, j] = P(strategy j answers correctly | signals).

    A strategy whose training answers were all right or all wrong, or every strategy when `models` is
    empty (the "best-single" method), is its (smoothed) accuracy on the training questions, a constant.
    """

    def __init__(self, strategies: Sequence[str], models: Mapping[str, Any], rates: Mapping[str, float]) -> None:
        self.classes_ = np.array(list(strategies))
        self.models = dict(models)
        self.rates = {s: float(rates[s]) for s in strategies}
        # standardise + logistic regression is a dot product: numpy does it in microseconds where a
        # scikit-learn predict_proba call costs ~0.5 ms of input checks (routing must stay under 5 ms)
        self.linear = {s: lin for s, m in self.models.items() if (lin := _linear(m)) is not None}

    def predict_proba(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        columns = []
        for s in map(str, self.classes_):
            model = self.models.get(s)
            if model is None:
                columns.append(np.full(len(x), self.rates[s]))
            elif s in self.linear:
                mean, scale, coef, intercept = self.linear[s]
                columns.append(1.0 / (1.0 + np.exp(-(((x - mean) / scale) @ coef + intercept))))
            else:
                columns.append(model.predict_proba(x)[:, list(model.classes_).index(True)])
        return np.column_stack(columns) if columns else np.zeros((len(x), 0))


def _linear(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """(mean, scale, coef, intercept) of a fitted StandardScaler + binary LogisticRegression pipeline whose
    positive class is True, else None."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) != 2:
        return None
    scaler, logistic = steps[0][1], steps[1][1]
    if not hasattr(scaler, "mean_") or getattr(logistic, "coef_", np.zeros((2, 0))).shape[0] != 1:
        return None
    if [bool(c) for c in logistic.classes_] != [False, True]:
        return None
    scale = scaler.scale_ if scaler.scale_ is not None else np.ones_like(scaler.mean_)
    return (np.asarray(scaler.mean_, dtype=float), np.asarray(scale, dtype=float),
            np.asarray(logistic.coef_[0], dtype=float), float(logistic.intercept_[0]))


def make_classifier(kind: str, seed: int, c: float = 1.0) -> Any:
    """An unfitted classifier of `kind` (see KINDS); `c` is the logistic regression's regularisation strength."""
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
    if kind == "tree":
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(max_depth=4, min_samples_leaf=3, random_state=seed)
    if kind == "boosting":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(n_estimators=100, max_depth=2, random_state=seed)
    raise ValueError(f"unknown classifier kind '{kind}' (known: {', '.join(KINDS)})")


__all__ = ["KINDS", "ConstantModel", "CorrectnessModel", "make_classifier"]
