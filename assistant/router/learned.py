"""The learned routing policy: small scikit-learn models on Signals, trained on evaluation records.

    from assistant.router.learned import LearnedPolicy, select_policy
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
`select_policy` cross-validates the candidates on the training questions only and keeps the most accurate
(ties: the simpler one). At decision time the policy takes argmax over strategies of
score(strategy) - cost_weight * cost(strategy) / max cost : a cost weight of 0 follows the scores, a larger
one trades accuracy for latency. `calibrate` searches the weight that meets a cost or accuracy constraint on
given data, over every weight at which some decision changes.

Saved as a pickle of the scikit-learn model plus a JSON sidecar (features, strategies, costs, cost weight,
training data hash, metrics); loading refuses a policy trained on other features. Pickles run code when
loaded: load only policies this program wrote. scikit-learn is imported only inside the functions using it.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from assistant.router.policy import Decision
from assistant.router.signals import FEATURES, Signals

KINDS = ("logistic", "tree", "boosting")
METHODS = ("cheapest-correct", "per-strategy", "best-single")
C_GRID = (0.01, 0.1, 1.0)  # per-strategy regularisation strengths select_policy tries
FORMAT = 1
MAX_CANDIDATES = 2000  # cost weights tried by calibrate (quantiles of the breakpoints beyond that)
TOP_FEATURES = 3


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


def _make(kind: str, seed: int, c: float = 1.0) -> Any:
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
            model = _make(kind, seed).fit(x, labels)
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
                models[strategy] = _make(kind, seed, c).fit(x[where], y)
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
        path = Path(path)
        if path.suffix == ".json":
            raise ValueError(f"{path}: the model file needs a suffix other than .json (e.g. policy.pkl)")
        path.parent.mkdir(parents=True, exist_ok=True)
        sidecar = path.with_suffix(".json")
        info = replace(self, data_hash=data_hash, metrics=dict(metrics)).describe()
        try:
            import sklearn

            info["sklearn_version"] = sklearn.__version__
        except ImportError:  # a ConstantModel needs no scikit-learn
            info["sklearn_version"] = None
        info["model_file"] = path.name
        _atomic_write(path, pickle.dumps(self.model, protocol=pickle.HIGHEST_PROTOCOL))
        _atomic_write(sidecar, (json.dumps(info, indent=2, default=str) + "\n").encode())
        return sidecar

    @classmethod
    def load(cls, path: Path) -> LearnedPolicy:
        """Read a policy `save` wrote (the model file or its .json sidecar)."""
        path = Path(path)
        sidecar = path if path.suffix == ".json" else path.with_suffix(".json")
        if not sidecar.is_file():
            raise ValueError(f"no router policy sidecar at {sidecar}: train one with `assistant router train`")
        info = json.loads(sidecar.read_text())
        if info.get("format") != FORMAT:
            raise ValueError(f"{sidecar}: router policy format {info.get('format')!r}, expected {FORMAT}: "
                             "retrain with `assistant router train`")
        if tuple(info.get("features", ())) != FEATURES:
            raise ValueError(f"{sidecar}: the policy was trained on features {info.get('features')} but this "
                             f"version computes {list(FEATURES)}: retrain with `assistant router train`")
        model_file = sidecar.with_name(info.get("model_file", path.name))
        if not model_file.is_file():
            raise ValueError(f"{sidecar}: its model file {model_file} is missing: retrain with "
                             "`assistant router train`")
        model = pickle.loads(model_file.read_bytes())
        return cls(model, tuple(info["strategies"]), info["costs"], float(info.get("cost_weight", 0.0)),
                   info.get("kind", "logistic"), FEATURES, info.get("data_hash", ""), info.get("metrics", {}),
                   info.get("method", "cheapest-correct"), info.get("c"))


def _fit(
    method: str, c: float | None, signals: Sequence[Signals], rows: Sequence[Mapping[str, bool]],
    costs: Mapping[str, float], seed: int,
) -> LearnedPolicy:
    if method == "cheapest-correct":
        from assistant.router.oracle import training_label

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

    Candidates, simplest first: best-single, per-strategy at each C of C_GRID (strongest first),
    cheapest-correct. Each is scored by routed accuracy over `repeats` shuffles of `folds` folds; the
    one-standard-error rule keeps the simplest candidate within one standard error of the best mean, so
    a policy that reads the signals is used only when they predict which strategy is right. Returns the
    fitted policy and one row per candidate: method, c, accuracy (mean), se, chosen.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown router method '{unknown[0]}' (known: {', '.join(METHODS)})")
    if len(signals) != len(rows):
        raise ValueError(f"{len(signals)} signals but {len(rows)} correctness rows: pass one row per question")
    n = len(rows)
    folds = min(folds, n)
    if folds < 2:
        raise ValueError(f"{n} training question(s) are too few to cross-validate a router")
    order = {"best-single": 0, "per-strategy": 1, "cheapest-correct": 2}
    candidates = [(m, c) for m in sorted(dict.fromkeys(methods), key=order.__getitem__)
                  for c in (C_GRID if m == "per-strategy" else (None,))]
    rng = np.random.default_rng(seed)
    splits = [np.array_split(rng.permutation(n), folds) for _ in range(repeats)]
    table: list[dict[str, Any]] = []
    for method, c in candidates:
        scores = []
        for parts in splits:
            for k, test in enumerate(parts):
                train = np.concatenate([p for j, p in enumerate(parts) if j != k])
                policy = _fit(method, c, [signals[i] for i in train], [rows[i] for i in train], costs, seed)
                scores.append(routed_accuracy(policy, [signals[i] for i in test], [rows[i] for i in test]))
        table.append({"method": method, "c": c, "accuracy": float(np.mean(scores)),
                      "se": float(np.std(scores) / np.sqrt(len(scores) / repeats)), "chosen": False})
    best = max(table, key=lambda row: row["accuracy"])
    chosen = next(row for row in table if row["accuracy"] >= best["accuracy"] - best["se"] - 1e-12)
    chosen["chosen"] = True
    return _fit(chosen["method"], chosen["c"], signals, rows, costs, seed), table


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


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


__all__ = ["C_GRID", "KINDS", "METHODS", "ConstantModel", "CorrectnessModel", "LearnedPolicy", "routed_accuracy",
           "select_policy"]
