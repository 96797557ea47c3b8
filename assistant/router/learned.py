"""The learned routing policy: small scikit-learn models on Signals, trained on evaluation records.

    from assistant.router.learned import LearnedPolicy
    from assistant.router.selection import select_policy
    from assistant.router.oracle import correctness_table, strategy_costs, training_label
    costs = strategy_costs(records)
    rows = [table[i] for i in train_ids]                                             # strategy -> correct
    policy, cv = select_policy([signals[i] for i in train_ids], rows, costs)          # method chosen by CV
    policy = LearnedPolicy.train_correctness(sigs, rows, costs=costs, c=0.1)          # or one method directly
    policy = LearnedPolicy.train([(s, training_label(r, costs)) ...], costs=costs)    # Adaptive-RAG labels
    w = policy.calibrate(sigs, rows, max_cost=4.0)                                    # RouteLLM-style threshold
    policy = policy.with_cost_weight(w)
    policy.save(path, data_hash=records_hash(records), metrics={...})
    LearnedPolicy.load(path).decide(signals)          # Decision("rag", "learned policy: rag (p=0.82, ...")

Three methods (METHODS), each giving a score per strategy for a question:
- "cheapest-correct" (Adaptive-RAG): one multi-class classifier of each question's label, the cheapest
  strategy that answered it correctly; its probability for a strategy estimates P(correct and cheapest).
- "per-strategy" (RouteLLM-style): one binary classifier per strategy of P(strategy answers correctly),
  L2-regularised logistic regression whose strength C is chosen by cross-validation. Strong regularisation
  shrinks every model to its strategy's base rate, so when the signals carry no information the policy
  falls back to the best single strategy instead of fitting noise.
- "best-single": no signals at all, each strategy's accuracy on the training questions (the baseline a
  learned router has to beat).
`select_policy` (router.selection) cross-validates the candidates on the training questions only and keeps
the most accurate (one-standard-error rule: the simpler one). At decision time the policy takes argmax over
strategies of score(strategy) - cost_weight * cost(strategy) / max cost : a cost weight of 0 follows the
scores, a larger one trades accuracy for latency. `calibrate` searches the weight that meets a cost or accuracy constraint on
given data, over every weight at which some decision changes.

Saved as a pickle of the scikit-learn model plus a JSON sidecar (router.policy_file: features, strategies,
costs, cost weight, training data hash, metrics); loading refuses a policy trained on other features.
Pickles run code when loaded: load only policies this program wrote. The classifiers live in
router.estimators; scikit-learn is imported only inside the functions using it.
Tests: `.venv/bin/pytest tests/router/test_learned.py -q`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from assistant.router.estimators import KINDS, ConstantModel, CorrectnessModel, make_classifier
from assistant.router.policy import Decision
from assistant.router.policy_file import FORMAT, read_policy, write_policy
from assistant.router.signals import FEATURES, Signals

METHODS = ("cheapest-correct", "per-strategy", "best-single")
MAX_CANDIDATES = 2000  # cost weights tried by calibrate (quantiles of the breakpoints beyond that)
TOP_FEATURES = 3


def _signals(examples: Sequence[Signals | tuple[Signals, str]]) -> list[Signals]:
    return [e[0] if isinstance(e, tuple) else e for e in examples]


@dataclass(frozen=True, eq=False)
class LearnedPolicy:
    """A fitted classifier over FEATURES whose classes are strategy specs, with their costs (seconds)."""

    model: Any  # fitted: predict_proba(X) and classes_ (a scikit-learn estimator or ConstantModel)
    strategies: tuple[str, ...]  # model.classes_, in its order
    costs: Mapping[str, float]
    cost_weight: float = 0.0
    kind: str = "logistic"
    features: tuple[str, ...] = FEATURES
    data_hash: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    method: str = "cheapest-correct"  # see METHODS
    c: float | None = None  # the per-strategy models' regularisation strength

    def __post_init__(self) -> None:
        if tuple(str(c) for c in self.model.classes_) != tuple(self.strategies):
            raise ValueError(f"the model's classes {list(self.model.classes_)} are not the policy's strategies "
                             f"{list(self.strategies)}")
        missing = [s for s in self.strategies if s not in self.costs]
        if missing:
            raise ValueError(f"no cost for strategy {', '.join(missing)}: give every strategy a cost")
        if self.cost_weight < 0:
            raise ValueError(f"cost_weight must be >= 0, got {self.cost_weight}")
        if self.method not in METHODS:
            raise ValueError(f"unknown router method '{self.method}' (known: {', '.join(METHODS)})")
        object.__setattr__(self, "costs", {s: float(self.costs[s]) for s in self.strategies})

    # ------------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        examples: Sequence[tuple[Signals, str]],
        *,
        costs: Mapping[str, float],
        cost_weight: float = 0.0,
        seed: int = 0,
        kind: str = "logistic",
    ) -> LearnedPolicy:
        """Fit on (signals, label strategy) pairs; `costs` must price every label (mean latency, seconds).

        kind: "logistic" (standardised features, multinomial logistic regression; the default: smooth
        probabilities for the cost trade-off), "tree" (depth 4) or "boosting" (100 depth-2 trees).
        """
        if not examples:
            raise ValueError("no training examples: evaluate some strategies first (`assistant eval`)")
        labels = [str(label) for _, label in examples]
        unpriced = sorted(set(labels) - set(costs))
        if unpriced:
            raise ValueError(f"no cost for strategy {', '.join(unpriced)}: `costs` must price every label")
        x = np.array([s.to_features() for s, _ in examples], dtype=float)
        if len(set(labels)) == 1:
            model: Any = ConstantModel(labels[0])
        else:
            model = make_classifier(kind, seed).fit(x, labels)
        strategies = tuple(str(c) for c in model.classes_)
        return cls(model, strategies, {s: costs[s] for s in strategies}, cost_weight, kind)

    @classmethod
    def train_correctness(
        cls,
        signals: Sequence[Signals],
        rows: Sequence[Mapping[str, bool]],
        *,
        costs: Mapping[str, float],
        c: float = 0.1,
        kind: str = "logistic",
        seed: int = 0,
        signals_free: bool = False,
    ) -> LearnedPolicy:
        """Fit P(strategy answers correctly | signals) per strategy: rows[i] is question i's correctness
        (strategy -> correct). A strategy is fitted on the questions it was evaluated on; every strategy in
        `costs` must be evaluated on at least one. signals_free=True fits no model: each strategy is its
        accuracy on these questions (the "best-single" method). c: the logistic models' regularisation
        strength (smaller is stronger: towards each strategy's accuracy)."""
        if not rows:
            raise ValueError("no training examples: evaluate some strategies first (`assistant eval`)")
        if len(signals) != len(rows):
            raise ValueError(f"{len(signals)} signals but {len(rows)} correctness rows: pass one row per question")
        strategies = tuple(sorted(costs))
        x = np.array([s.to_features() for s in signals], dtype=float)
        models: dict[str, Any] = {}
        rates: dict[str, float] = {}
        for strategy in strategies:
            where = [i for i, row in enumerate(rows) if strategy in row]
            if not where:
                raise ValueError(f"strategy '{strategy}' was not evaluated on any training question")
            y = np.array([bool(rows[i][strategy]) for i in where])
            rates[strategy] = (y.sum() + 0.5) / (len(y) + 1.0)  # smoothed: a perfect few is not a certainty
            if not signals_free and 0 < y.sum() < len(y):
                models[strategy] = make_classifier(kind, seed, c).fit(x[where], y)
        method = "best-single" if signals_free else "per-strategy"
        return cls(CorrectnessModel(strategies, models, rates), strategies, {s: costs[s] for s in strategies},
                   0.0, kind, method=method, c=None if signals_free else float(c))

    def with_cost_weight(self, cost_weight: float) -> LearnedPolicy:
        return replace(self, cost_weight=float(cost_weight))

    # ------------------------------------------------------------------ deciding
    def _norm_costs(self) -> np.ndarray:
        raw = np.array([self.costs[s] for s in self.strategies], dtype=float)
        top = raw.max() if len(raw) else 0.0
        return raw / top if top > 0 else np.zeros_like(raw)

    def probabilities(self, signals: Signals) -> dict[str, float]:
        """strategy -> its score for this question: P(it is the cheapest correct strategy) for the
        cheapest-correct method, P(it answers correctly) for the others."""
        proba = self.model.predict_proba(np.array([signals.to_features()], dtype=float))[0]
        return {s: float(p) for s, p in zip(self.strategies, proba, strict=True)}

    def decide(self, signals: Signals, available: Collection[str] | None = None) -> Decision:
        """The strategy with the best P - cost_weight * normalised cost, among `available` when given.

        An out-of-domain question (signals.domain None) goes to "base": the policy never saw such questions.
        """
        if signals.domain is None:
            return Decision("base", "question is outside the known domains (best similarity "
                            f"{signals.domain_similarity:.2f}): base model, no retrieval")
        proba = self.probabilities(signals)
        norm = dict(zip(self.strategies, self._norm_costs(), strict=True))
        choices = [s for s in self.strategies if available is None or s in available]
        if not choices:
            raise ValueError(f"none of the learned policy's strategies ({', '.join(self.strategies)}) is "
                             "available: retrain the router on current strategies")
        scores = {s: proba[s] - self.cost_weight * norm[s] for s in choices}
        chosen = max(choices, key=lambda s: (scores[s], -self.costs[s]))
        if self.method == "best-single":
            reason = (f"learned policy: {chosen} (p={proba[chosen]:.2f}, cost {self.costs[chosen]:.1f} s): the "
                      "signals did not predict the right strategy in cross-validation, so it is the strategy "
                      "most often right on the training questions")
        else:
            reason = (f"learned policy: {chosen} (p={proba[chosen]:.2f}, cost {self.costs[chosen]:.1f} s); "
                      f"top features: {self._explain(signals, chosen)}")
        likeliest = max(choices, key=lambda s: (proba[s], -self.costs[s]))
        if likeliest != chosen:
            reason += (f"; cost weight {self.cost_weight:.2f} chose it over {likeliest} "
                       f"(p={proba[likeliest]:.2f}, cost {self.costs[likeliest]:.1f} s)")
        return Decision(chosen, reason)

    def _explain(self, signals: Signals, strategy: str) -> str:
        """The features that weigh most in this decision: signed contributions to the chosen class for the
        logistic model, global importances for trees."""
        if isinstance(self.model, ConstantModel):
            return f"none (every training question had the label {strategy})"
        model = self.model
        values = np.array(signals.to_features(), dtype=float)
        if isinstance(model, CorrectnessModel):
            if strategy in model.linear:  # the contributions the fast path adds up, without scikit-learn
                mean, scale, coef, _ = model.linear[strategy]
                return self._top(values, coef * (values - mean) / scale)
            model = model.models.get(strategy)
            if model is None:
                return f"none ({strategy} was right on all or none of its training questions)"
            strategy = "True"  # the binary model's positive class
        estimator = model[-1] if hasattr(model, "steps") else model
        if hasattr(estimator, "coef_"):
            z = model[:-1].transform(values[None, :])[0] if hasattr(model, "steps") else values
            classes = [str(c) for c in estimator.classes_]
            coef = estimator.coef_
            row = coef[0] * (1 if classes.index(strategy) == 1 else -1) if coef.shape[0] == 1 \
                else coef[classes.index(strategy)]
            weights = row * z
        else:
            weights = np.asarray(getattr(estimator, "feature_importances_", np.zeros_like(values)))
        return self._top(values, weights)

    def _top(self, values: np.ndarray, weights: np.ndarray) -> str:
        order = np.argsort(-np.abs(weights), kind="stable")[:TOP_FEATURES]
        return ", ".join(f"{self.features[i]}={_value(values[i])} ({weights[i]:+.2f})" for i in order)

    # ------------------------------------------------------------------ calibration
    def tradeoff(
        self, examples: Sequence[Signals | tuple[Signals, str]], correctness: Sequence[Mapping[str, bool]]
    ) -> list[dict[str, float]]:
        """Accuracy and mean cost (seconds) of routing `examples` for every distinct cost weight, ascending.

        correctness[i] is example i's row of the correctness table (strategy -> correct); a strategy not
        evaluated on a question counts as wrong. The weights are 0, the midpoints between the weights at which
        some decision changes, and one beyond the last (at most MAX_CANDIDATES of them).
        """
        signals = _signals(examples)
        if len(signals) != len(correctness):
            raise ValueError(f"{len(signals)} examples but {len(correctness)} correctness rows: pass one row "
                             "per example")
        if not signals:
            raise ValueError("no examples to calibrate on")
        proba = self.model.predict_proba(np.array([s.to_features() for s in signals], dtype=float))
        norm = self._norm_costs()
        raw = np.array([self.costs[s] for s in self.strategies], dtype=float)
        right = np.array([[bool(row.get(s, False)) for s in self.strategies] for row in correctness])
        weights = _candidate_weights(proba, norm)
        out: list[dict[str, float]] = []
        for start in range(0, len(weights), 256):
            w = weights[start:start + 256]
            choice = np.argmax(proba[None, :, :] - w[:, None, None] * norm[None, None, :], axis=2)  # (m, n)
            accuracy = right[np.arange(len(signals))[None, :], choice].mean(axis=1)
            cost = raw[choice].mean(axis=1)
            out += [{"cost_weight": float(a), "accuracy": float(b), "mean_cost": float(c)}
                    for a, b, c in zip(w, accuracy, cost, strict=True)]
        return out

    def calibrate(
        self,
        examples: Sequence[Signals | tuple[Signals, str]],
        correctness: Sequence[Mapping[str, bool]],
        *,
        max_cost: float | None = None,
        min_accuracy: float | None = None,
    ) -> float:
        """The cost weight that meets exactly one constraint on the given data (see `tradeoff`).

        max_cost (seconds per question): the most accurate weight whose mean cost is at most max_cost.
        min_accuracy: the cheapest weight whose accuracy is at least min_accuracy.
        Ties go to the smaller weight. ValueError, naming what is reachable, when no weight meets it.
        """
        if (max_cost is None) == (min_accuracy is None):
            raise ValueError("give exactly one of max_cost and min_accuracy")
        curve = self.tradeoff(examples, correctness)
        if max_cost is not None:
            feasible = [p for p in curve if p["mean_cost"] <= max_cost + 1e-9]
            if not feasible:
                cheapest = min(p["mean_cost"] for p in curve)
                raise ValueError(f"no cost weight keeps the mean cost at or below {max_cost:.2f} s per question: "
                                 f"the cheapest routing costs {cheapest:.2f} s")
            best = min(feasible, key=lambda p: (-p["accuracy"], p["cost_weight"]))
        else:
            assert min_accuracy is not None
            feasible = [p for p in curve if p["accuracy"] >= min_accuracy - 1e-9]
            if not feasible:
                top = max(p["accuracy"] for p in curve)
                raise ValueError(f"no cost weight reaches accuracy {min_accuracy:.3f}: the best routing reaches "
                                 f"{top:.3f}")
            best = min(feasible, key=lambda p: (p["mean_cost"], -p["accuracy"], p["cost_weight"]))
        return best["cost_weight"]

    # ------------------------------------------------------------------ persistence
    def describe(self) -> dict[str, Any]:
        """Everything but the model: what `assistant router show` prints and the sidecar stores."""
        return {"format": FORMAT, "policy": "learned", "method": self.method, "c": self.c, "kind": self.kind,
                "features": list(self.features),
                "strategies": list(self.strategies), "costs": dict(self.costs), "cost_weight": self.cost_weight,
                "data_hash": self.data_hash, "metrics": dict(self.metrics)}

    def save(self, path: Path, *, data_hash: str, metrics: Mapping[str, Any]) -> Path:
        """Write the model to `path` (a pickle) and its JSON sidecar next to it; returns the sidecar path."""
        info = replace(self, data_hash=data_hash, metrics=dict(metrics)).describe()
        return write_policy(Path(path), self.model, info)

    @classmethod
    def load(cls, path: Path) -> LearnedPolicy:
        """Read a policy `save` wrote (the model file or its .json sidecar)."""
        info, model = read_policy(Path(path))
        return cls(model, tuple(info["strategies"]), info["costs"], float(info.get("cost_weight", 0.0)),
                   info.get("kind", "logistic"), FEATURES, info.get("data_hash", ""), info.get("metrics", {}),
                   info.get("method", "cheapest-correct"), info.get("c"))


def _candidate_weights(proba: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """0, the midpoints between the positive weights where two strategies' scores cross for some example,
    and one weight past the last crossing."""
    d_cost = norm[:, None] - norm[None, :]  # (k, k)
    d_proba = proba[:, :, None] - proba[:, None, :]  # (n, k, k)
    mask = np.broadcast_to(d_cost > 0, d_proba.shape)
    points = np.unique(d_proba[mask] / np.broadcast_to(d_cost, d_proba.shape)[mask])
    points = points[np.isfinite(points) & (points > 0)]
    if len(points) > MAX_CANDIDATES:
        points = np.unique(np.quantile(points, np.linspace(0, 1, MAX_CANDIDATES)))
    if not len(points):
        return np.array([0.0])
    middle = (points[:-1] + points[1:]) / 2
    return np.concatenate([[0.0], middle, [points[-1] * 2 + 1e-6]])


def _value(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


__all__ = ["KINDS", "METHODS", "ConstantModel", "CorrectnessModel", "LearnedPolicy"]
