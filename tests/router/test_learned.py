"""The learned policy recovers a planted rule from synthetic records, calibrates its cost weight, round-trips."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from assistant.evaluation.store import Record
from assistant.router.learned import LearnedPolicy
from assistant.router.oracle import (
    check_disjoint,
    correctness_table,
    evaluate_router,
    split_items,
    strategy_costs,
    training_label,
)
from assistant.router.selection import select_policy
from assistant.router.signals import Signals

LATENCY = {"base": 1.0, "adapter:x": 5.0, "rag": 10.0}
# The planted rule: label questions are answered right only by adapter:x, numeric ones only by rag,
# free-form ones by nobody (so their label is the cheapest strategy, base).
PLANTED = {"label": "adapter:x", "numeric": "rag", "free": "base"}


def synthetic(n: int, seed: int = 0) -> tuple[dict[str, Signals], list[Record]]:
    rng = random.Random(seed)
    signals: dict[str, Signals] = {}
    records: list[Record] = []
    for i in range(n):
        item = f"q{i}"
        kind = rng.choice(["label", "numeric", "free"])
        top = rng.uniform(0.2, 0.9)
        signals[item] = Signals("medical", rng.uniform(0.3, 0.8), top, rng.uniform(0, 0.2), rng.uniform(0, 1),
                                kind, ("x",))
        for strategy, latency in LATENCY.items():
            records.append(Record("run", item, strategy, "pubmedqa", kind, f"question {i}?", "gold",
                                  correct=strategy == PLANTED[kind] and kind != "free",
                                  latency=latency * rng.uniform(0.9, 1.1)))
    return signals, records


@pytest.fixture(scope="module")
def data() -> dict[str, object]:
    signals, records = synthetic(300)
    table, costs = correctness_table(records), strategy_costs(records)
    train, test = split_items(table, test_fraction=0.33, seed=0)
    check_disjoint(train, test)
    ordered = sorted(train)
    examples = [(signals[i], training_label(table[i], costs)) for i in ordered]
    return {"signals": signals, "table": table, "costs": costs, "train": ordered, "test": sorted(test),
            "examples": examples}


@pytest.mark.parametrize("kind", ["logistic", "tree", "boosting"])
def test_recovers_planted_rule(data: dict, kind: str) -> None:
    assert len(data["examples"]) >= 180
    policy = LearnedPolicy.train(data["examples"], costs=data["costs"], seed=0, kind=kind)
    assert set(policy.strategies) == set(LATENCY)
    held_out = data["test"]
    decisions = {i: policy.decide(data["signals"][i]).strategy for i in held_out}
    matches = sum(decisions[i] == PLANTED[data["signals"][i].question_type] for i in held_out)
    assert matches / len(held_out) >= 0.95
    result = evaluate_router(decisions, data["table"], data["costs"])
    assert result["missing"] == 0 and result["accuracy"] > 0.6


def test_reason_names_strategy_probability_and_features(data: dict) -> None:
    policy = LearnedPolicy.train(data["examples"], costs=data["costs"])
    decision = policy.decide(Signals("medical", 0.6, 0.7, 0.1, 0.5, "numeric", ("x",)))
    assert decision.strategy == "rag"
    assert decision.reason.startswith("learned policy: rag (p=")
    assert "top features: type_" in decision.reason
    out = policy.decide(Signals(None, 0.12, question_type="numeric"))
    assert out.strategy == "base" and "outside the known domains (best similarity 0.12)" in out.reason
    assert policy.decide(data["signals"][data["test"][0]], available={"base"}).strategy == "base"
    with pytest.raises(ValueError, match="available"):
        policy.decide(data["signals"][data["test"][0]], available={"cot"})


def test_cost_weight_trades_accuracy_for_latency(data: dict) -> None:
    policy = LearnedPolicy.train(data["examples"], costs=data["costs"])
    examples = data["examples"]
    rows = [data["table"][i] for i in data["train"]]
    curve = policy.tradeoff(examples, rows)
    assert curve[0]["cost_weight"] == 0.0
    free_cost = curve[0]["mean_cost"]
    assert free_cost > 3.0 and curve[-1]["mean_cost"] == pytest.approx(data["costs"]["base"])

    w = policy.calibrate(examples, rows, max_cost=3.0)
    cheap = policy.with_cost_weight(w)
    decisions = {i: cheap.decide(data["signals"][i]).strategy for i in data["train"]}
    routed = evaluate_router(decisions, data["table"], data["costs"])
    assert routed["mean_cost"] <= 3.0
    assert routed["accuracy"] == pytest.approx(next(p for p in curve if p["cost_weight"] == w)["accuracy"])
    assert routed["accuracy"] >= max(p["accuracy"] for p in curve if p["mean_cost"] <= 3.0) - 1e-9
    assert "cost weight" in cheap.decide(Signals("medical", 0.6, 0.7, 0.1, 0.5, "numeric", ("x",))).reason

    w_acc = policy.calibrate(examples, rows, min_accuracy=0.3)
    point = next(p for p in curve if p["cost_weight"] == w_acc)
    assert point["accuracy"] >= 0.3
    assert point["mean_cost"] == min(p["mean_cost"] for p in curve if p["accuracy"] >= 0.3)
    with pytest.raises(ValueError, match="cheapest routing costs"):
        policy.calibrate(examples, rows, max_cost=0.5)
    with pytest.raises(ValueError, match="best routing reaches"):
        policy.calibrate(examples, rows, min_accuracy=0.99)
    with pytest.raises(ValueError, match="exactly one"):
        policy.calibrate(examples, rows)


def test_save_load_round_trip(data: dict, tmp_path: Path) -> None:
    policy = LearnedPolicy.train(data["examples"], costs=data["costs"]).with_cost_weight(0.25)
    sidecar = policy.save(tmp_path / "medical" / "policy.pkl", data_hash="abc123", metrics={"accuracy": 0.66})
    info = json.loads(sidecar.read_text())
    assert info["data_hash"] == "abc123" and info["metrics"] == {"accuracy": 0.66}
    assert info["cost_weight"] == 0.25 and len(info["features"]) == 17
    loaded = LearnedPolicy.load(tmp_path / "medical" / "policy.pkl")
    assert loaded.data_hash == "abc123" and loaded.cost_weight == 0.25 and loaded.strategies == policy.strategies
    assert LearnedPolicy.load(sidecar).strategies == policy.strategies
    for i in data["test"][:30]:
        assert loaded.decide(data["signals"][i]) == policy.decide(data["signals"][i])

    info["features"] = info["features"][:-1]
    sidecar.write_text(json.dumps(info))
    with pytest.raises(ValueError, match="trained on features"):
        LearnedPolicy.load(sidecar)
    with pytest.raises(ValueError, match="no router policy sidecar"):
        LearnedPolicy.load(tmp_path / "missing.pkl")


def test_bad_training_input() -> None:
    s = Signals("medical", 0.5, 0.6, question_type="label")
    with pytest.raises(ValueError, match="no training examples"):
        LearnedPolicy.train([], costs={})
    with pytest.raises(ValueError, match="no cost for strategy rag"):
        LearnedPolicy.train([(s, "rag")], costs={"base": 1.0})
    single = LearnedPolicy.train([(s, "rag"), (s, "rag")], costs={"rag": 2.0})
    assert single.decide(s).strategy == "rag" and "every training question" in single.decide(s).reason
    with pytest.raises(ValueError, match="unknown classifier kind"):
        LearnedPolicy.train([(s, "rag"), (s, "base")], costs={"rag": 2.0, "base": 1.0}, kind="forest")


# ------------------------------------------------------------------ per-strategy correctness and selection
def _rows(data: dict, ids: list[str]) -> list[dict[str, bool]]:
    return [data["table"][i] for i in ids]


def test_per_strategy_models_recover_the_planted_rule(data: dict) -> None:
    train = data["train"]
    policy = LearnedPolicy.train_correctness([data["signals"][i] for i in train], _rows(data, train),
                                             costs=data["costs"], c=1.0)
    assert policy.method == "per-strategy" and set(policy.strategies) == set(LATENCY)
    answerable = [i for i in data["test"] if data["signals"][i].question_type != "free"]
    decisions = {i: policy.decide(data["signals"][i]).strategy for i in answerable}
    assert sum(decisions[i] == PLANTED[data["signals"][i].question_type] for i in answerable) / len(answerable) >= 0.95
    probs = policy.probabilities(Signals("medical", 0.6, 0.7, 0.1, 0.5, "numeric", ("x",)))
    assert probs["rag"] > 0.8 and probs["base"] < 0.2  # P(correct) per strategy, not a distribution
    reason = policy.decide(Signals("medical", 0.6, 0.7, 0.1, 0.5, "numeric", ("x",))).reason
    assert reason.startswith("learned policy: rag (p=") and "type_" in reason
    # base never answered correctly: a constant, explained as such
    assert "right on all or none" in policy._explain(data["signals"][train[0]], "base")


def test_best_single_ignores_the_signals() -> None:
    s = [Signals("medical", 0.5, 0.1 * k, question_type="label") for k in range(10)]
    rows = [{"base": k < 3, "rag": k < 7} for k in range(10)]
    policy = LearnedPolicy.train_correctness(s, rows, costs={"base": 1.0, "rag": 5.0}, signals_free=True)
    assert policy.method == "best-single" and policy.c is None
    assert {policy.decide(x).strategy for x in s} == {"rag"}
    assert "did not predict" in policy.decide(s[0]).reason
    assert policy.probabilities(s[0])["rag"] == pytest.approx(7.5 / 11)  # smoothed accuracy
    with pytest.raises(ValueError, match="not evaluated on any training question"):
        LearnedPolicy.train_correctness(s[:1], [{"base": True}], costs={"base": 1.0, "rag": 5.0})
    with pytest.raises(ValueError, match="one row per question"):
        LearnedPolicy.train_correctness(s, rows[:3], costs={"base": 1.0, "rag": 5.0})


def test_selection_reads_signals_only_when_they_predict(data: dict) -> None:
    train = data["train"]
    signals = [data["signals"][i] for i in train]
    policy, cv = select_policy(signals, _rows(data, train), data["costs"], seed=0)
    assert [r["method"] for r in cv] == ["best-single", "per-strategy", "per-strategy", "per-strategy",
                                         "cheapest-correct"]
    assert sum(r["chosen"] for r in cv) == 1
    chosen = next(r for r in cv if r["chosen"])
    baseline = cv[0]["accuracy"]
    assert chosen["method"] != "best-single" and chosen["accuracy"] > baseline + 0.2
    assert policy.method == chosen["method"] and policy.c == chosen["c"]

    # noise: which strategy is right does not depend on the signals; rag is right more often
    rng = random.Random(1)
    noise_signals = [Signals("medical", rng.uniform(0.3, 0.8), rng.uniform(0.2, 0.9), rng.uniform(0, 0.2),
                             rng.uniform(0, 1), rng.choice(["label", "numeric"]), ("x",)) for _ in range(150)]
    noise_rows = [{"base": rng.random() < 0.4, "rag": rng.random() < 0.6, "adapter:x": rng.random() < 0.45}
                  for _ in range(150)]
    policy, cv = select_policy(noise_signals, noise_rows, LATENCY, seed=0)
    assert policy.method == "best-single" and {policy.decide(s).strategy for s in noise_signals} == {"rag"}
    with pytest.raises(ValueError, match="unknown router method"):
        select_policy(noise_signals, noise_rows, LATENCY, methods=["magic"])
    with pytest.raises(ValueError, match="too few to cross-validate"):
        select_policy(noise_signals[:1], noise_rows[:1], LATENCY)


def test_per_strategy_policy_round_trips(data: dict, tmp_path: Path) -> None:
    train = data["train"]
    policy = LearnedPolicy.train_correctness([data["signals"][i] for i in train], _rows(data, train),
                                             costs=data["costs"], c=0.1)
    policy.save(tmp_path / "p.pkl", data_hash="h", metrics={})
    loaded = LearnedPolicy.load(tmp_path / "p.pkl")
    assert loaded.method == "per-strategy" and loaded.c == 0.1
    for i in data["test"][:20]:
        assert loaded.decide(data["signals"][i]) == policy.decide(data["signals"][i])
    curve = loaded.tradeoff([data["signals"][i] for i in train], _rows(data, train))
    assert curve[-1]["mean_cost"] == pytest.approx(data["costs"]["base"])  # the cost weight works the same way


def test_per_strategy_fast_path_matches_scikit_learn(data: dict) -> None:
    train = data["train"]
    policy = LearnedPolicy.train_correctness([data["signals"][i] for i in train], _rows(data, train),
                                             costs=data["costs"], c=0.5)
    model = policy.model
    assert set(model.linear) == set(model.models) and model.models  # every fitted model takes the fast path
    x = np.array([data["signals"][i].to_features() for i in data["test"]], dtype=float)
    fast = model.predict_proba(x)
    for j, strategy in enumerate(model.classes_):
        fitted = model.models.get(str(strategy))
        expected = model.rates[str(strategy)] if fitted is None else fitted.predict_proba(x)[:, 1]
        assert np.allclose(fast[:, j], expected, atol=1e-9)


def test_policies_saved_before_the_split_still_load() -> None:
    """Pickles written when the models lived in router.learned name them there: the names must resolve."""
    import pickle

    from assistant.router import estimators, learned

    assert learned.CorrectnessModel is estimators.CorrectnessModel
    assert learned.ConstantModel is estimators.ConstantModel
    old = pickle.dumps(estimators.ConstantModel("rag"), protocol=0).replace(b"assistant.router.estimators",
                                                                b"assistant.router.learned")
    assert list(pickle.loads(old).classes_) == ["rag"]
