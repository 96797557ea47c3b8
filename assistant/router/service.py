"""The router at work: signals from the index and the evaluation records, the policy in use, and
`assistant router train | eval | show`.

    from assistant.router.service import route, train_router, eval_router, show_router
    decision, signals = route(ctx, "Do statins reduce mortality?")          # inside the "auto" strategy
    summary = train_router("medical", ["medical-20261122-..."], config)      # learned policy from records

Signals cost one probe of the domain's index (the candidates a hybrid retrieval searches anyway, kept
for it), a nearest-neighbour lookup in each other domain's index and a few dot products. The learned
policy lives in `runs/router/<domain>.pkl` (+ .json sidecar: data hash, the runs and the index and
model they were made with, held-out question ids, metrics) and is used automatically while the index
and model still match; otherwise the rule policy decides and the reason says why.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import Config
from assistant.errors import AssistantError, InputError, NotFoundError
from assistant.router.policy import Decision, RulePolicy
from assistant.router.signals import Signals, domain_of, question_type, retrieval_signals

if TYPE_CHECKING:
    from assistant.evaluation.store import Record
    from assistant.retrieval import Retriever
    from assistant.router.learned import LearnedPolicy
    from assistant.strategies import StrategyContext

RULES = RulePolicy()
_CACHE: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def policy_path(domain: str, config: Config) -> Path:
    return config.runs_dir / "router" / f"{domain}.pkl"


def current_fingerprint(domain: str, config: Config) -> dict[str, Any]:
    """What a learned policy depends on: the generation model and the index it routes over."""
    from assistant.index.manifest import read_manifest

    try:
        m = read_manifest(domain, config)
    except NotFoundError:
        m = {}
    return {"model": config.generation.model, "index": m.get("collection"), "embedding": m.get("embedding", {}).get("model")}


def _cached(key: tuple[str, str], make: Callable[[], Any]) -> Any:
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = make()
        return _CACHE[key]


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def load_policy(domain: str, config: Config) -> tuple[RulePolicy | LearnedPolicy, str]:
    """The learned policy when one was trained for this index and model, else the rules (and why)."""
    from assistant.router.learned import LearnedPolicy

    path = policy_path(domain, config)
    if not path.with_suffix(".json").is_file():
        return RULES, "rules (no learned policy yet: `assistant router train`)"
    try:
        policy = LearnedPolicy.load(path)
    except ValueError as exc:
        return RULES, f"rules (the learned policy cannot be used: {exc})"
    trained_on = policy.metrics.get("fingerprint", {})
    if trained_on != current_fingerprint(domain, config):
        return RULES, "rules (the learned policy was trained for another index or model: retrain it)"
    learned = policy.metrics.get("router", {}).get("accuracy")
    rules = policy.metrics.get("rules", {}).get("accuracy")
    if learned is not None and rules is not None and learned < rules:
        return RULES, (f"rules (the learned policy scored {learned:.3f} on its held-out questions, below the "
                       f"rules' {rules:.3f}: evaluate more questions and retrain)")
    return policy, f"learned ({path.name}, trained on runs {', '.join(policy.metrics.get('runs', []))})"


def domain_adapters(domain: str, config: Config) -> tuple[str, ...]:
    """The domain's SFT adapters, newest first (RAFT ones are told apart by the policy by name)."""
    from assistant.training.adapters import domain_adapters as adapters_of

    return tuple(a.name for a in adapters_of(config, domain))


def evaluated_accuracy(domain: str, config: Config, adapters: Sequence[str]) -> dict[str, float]:
    """Accuracy per strategy in the domain's latest evaluation run, for strategies that still exist."""
    from assistant.evaluation.store import RunStore

    store = RunStore.open(config)
    run = store.latest_run(domain)
    if run is None:
        return {}
    from assistant.router.oracle import correctness_table

    table = correctness_table(store.records(run.run_id))
    exists = set(adapters)
    strategies = {s for row in table.values() for s in row}
    return accuracy_where_evaluated(table.values(), [
        s for s in strategies if ":" not in s or s.partition(":")[2] in exists or s.startswith("fewshot:")])


def accuracy_where_evaluated(rows: Iterable[Mapping[str, bool]], strategies: Iterable[str]) -> dict[str, float]:
    """Each strategy's share of correct answers over the questions it was evaluated on (0.0 for none)."""
    rows = list(rows)
    return {s: sum(r[s] for r in rows if s in r) / max(1, sum(s in r for r in rows)) for s in strategies}


def other_retrievers(domain: str, config: Config) -> dict[str, Retriever]:
    """Open retrievers of the other configured domains that have an index (once per process)."""
    from assistant.index import list_indexes
    from assistant.retrieval import Retriever

    def make() -> dict[str, Retriever]:
        out = {}
        for status in list_indexes(config):
            if status.name != domain and status.name in config.domains:
                try:
                    out[status.name] = Retriever.open(status.name, config)
                except AssistantError:
                    continue
        return out

    return dict(_cached(("others", f"{config.home}:{domain}"), make))


def signals_for(
    question: str,
    domain: str,
    retriever: Retriever | None,
    config: Config,
    *,
    filters: Mapping[str, Any] | None = None,
    adapters: Sequence[str] = (),
    accuracy: Mapping[str, float] | None = None,
) -> tuple[Signals, dict[str, float]]:
    """The question's Signals, and its nearest-neighbour similarity to every domain with an index."""
    qtype = question_type(question)
    if retriever is None:
        return Signals(domain, 1.0, question_type=qtype, adapters=tuple(adapters),
                       adapter_accuracy=dict(accuracy or {})), {}
    probe = retriever.probe(question, filters=filters)
    doc = lambda hits: [(cid.rpartition("#")[0] or cid, s) for cid, s in hits]  # noqa: E731
    top, gap, agreement = retrieval_signals(doc(probe.dense), doc(probe.lexical))
    sims = {domain: probe.dense[0][1] if probe.dense else 0.0}
    for name, other in other_retrievers(domain, config).items():
        if other.embedder.name == retriever.embedder.name:
            sims[name] = other.nearest(probe.qvec)
    chosen, sim = domain_of(sims, RULES.min_domain_similarity)
    if chosen is None:
        sim = max(sims.values())
    own = chosen == domain
    signals = Signals(
        chosen, sim, top if own else None, gap if own else None, agreement if own else None, qtype,
        tuple(adapters) if own else (), dict(accuracy or {}) if own else {},
    )
    return signals, sims


def _setup(domain: str, config: Config) -> tuple[tuple[str, ...], dict[str, float], tuple[Any, str]]:
    """What routing a domain's questions reads once per process: its adapters, their evaluated accuracy,
    the policy in use, and the other domains' retrievers (for the out-of-domain signal)."""
    adapters = _cached(("adapters", f"{config.home}:{domain}"), lambda: domain_adapters(domain, config))
    accuracy = _cached(("accuracy", f"{config.home}:{domain}"), lambda: evaluated_accuracy(domain, config, adapters))
    policy = _cached(("policy", f"{config.home}:{domain}"), lambda: load_policy(domain, config))
    other_retrievers(domain, config)
    return adapters, accuracy, policy


def warm_up(ctx: StrategyContext) -> None:
    """Load what the first routed question would otherwise pay for (policy, other domains' indexes)."""
    with contextlib.suppress(NotFoundError):
        ctx.get_retriever()
    _setup(ctx.domain.name, ctx.config)


def route(ctx: StrategyContext, question: str, filters: Mapping[str, Any] | None = None) -> tuple[Decision, Signals]:
    """Decide the strategy for `question` in the context's domain, with the reason."""
    from assistant.strategies import check_question

    question = check_question(question)
    config, domain = ctx.config, ctx.domain.name
    try:
        retriever: Retriever | None = ctx.get_retriever()
    except NotFoundError:
        retriever = None
    adapters, accuracy, (policy, which) = _setup(domain, config)
    signals, sims = signals_for(question, domain, retriever, config, filters=filters, adapters=adapters,
                                accuracy=accuracy)
    if retriever is None:
        decision = Decision("base", f"base: the '{domain}' index is not built (`assistant index build {domain}`)")
    elif signals.domain is None:
        decision = RULES.decide(signals)
    elif signals.domain != domain:
        decision = Decision("base", f"question looks like the {signals.domain} domain (similarity "
                            f"{sims[signals.domain]:.2f} vs {domain} {sims[domain]:.2f}): base model, no retrieval")
    else:
        decision = policy.decide(signals) if isinstance(policy, RulePolicy) else policy.decide(
            signals, available=_available(domain, config, adapters))
    return Decision(decision.strategy, f"{decision.reason} [policy: {which}]"), signals


def _available(domain: str, config: Config, adapters: Sequence[str]) -> set[str]:
    from assistant.strategies import STRATEGIES

    names = {n for n in STRATEGIES if n not in ("adapter", "rag+adapter", "auto", "fewshot")}
    return names | {"fewshot:1", "fewshot:2", "fewshot:3", "fewshot:4", "fewshot:5", "fewshot:6"} | {
        f"{kind}:{a}" for a in adapters for kind in ("adapter", "rag+adapter")}


# ---------------------------------------------------------------- learning from evaluation records
def _records(domain: str, run_ids: Sequence[str], config: Config) -> tuple[list[Record], list[str]]:
    from assistant.evaluation.store import RunStore

    store = RunStore.open(config)
    if not run_ids:
        latest = store.latest_run(domain)
        if latest is None:
            raise NotFoundError(f"no evaluation runs for '{domain}' yet: `assistant eval --domain {domain}` first "
                                "(the router uses its rules until then)")
        run_ids = [latest.run_id]
    now = current_fingerprint(domain, config)
    records: list[Record] = []
    for run_id in run_ids:
        run = store.get_run(run_id)
        if run.domain != domain:
            raise InputError(f"run '{run_id}' evaluated the '{run.domain}' domain, not '{domain}'")
        if run.fingerprint.get("model") != now["model"]:
            raise InputError(f"run '{run_id}' was made with model '{run.fingerprint.get('model')}', but the "
                             f"router answers with '{now['model']}': evaluate again with this model")
        index = run.fingerprint.get("index", {}).get("collection")
        if index is not None and index != now["index"]:
            raise InputError(f"run '{run_id}' searched index collection '{index}', but '{domain}' is now "
                             f"'{now['index']}' (rebuilt since): evaluate again on this index")
        records += store.records(run_id)
    return records, list(run_ids)


def train_router(
    domain: str,
    run_ids: Sequence[str],
    config: Config,
    *,
    max_cost: float | None = None,
    min_accuracy: float | None = None,
    method: str = "auto",
    test_fraction: float = 0.3,
    crossfit_folds: int = 5,
    seed: int = 0,
    log: Callable[[str], None] = lambda msg: None,
) -> dict[str, Any]:
    """Learn a policy from the runs' records (train part of the questions), evaluate it on the rest, save it.

    method: "auto" cross-validates every method of `router.learned.METHODS` on the training questions and
    keeps the best (one-standard-error rule, simplest first); or one of them.
    crossfit_folds: also route every question with a policy fitted (the same way) on the other folds, for
    a steadier estimate than the held-out part alone (metrics["crossfit"]; 0 to skip).
    """
    from assistant.api import Assistant
    from assistant.router.learned import METHODS, select_policy
    from assistant.router.oracle import (
        check_disjoint,
        compare,
        correctness_table,
        records_hash,
        split_items,
        strategy_costs,
    )

    if method != "auto" and method not in METHODS:
        raise InputError(f"unknown router method '{method}' (known: auto, {', '.join(METHODS)})")

    config.domain(domain)
    records, run_ids = _records(domain, run_ids, config)
    adapters = domain_adapters(domain, config)
    known = _available(domain, config, adapters)
    gone = sorted({r.strategy for r in records} - known)
    if gone:
        log(f"skipping records of strategies that no longer exist: {', '.join(gone)}")
        records = [r for r in records if r.strategy in known]
    table = correctness_table(records)
    partial = sorted(s for s in {r.strategy for r in records} if sum(s in row for row in table.values()) < len(table))
    if partial:
        log(f"leaving out {', '.join(partial)}: not evaluated on all {len(table)} questions of these runs "
            "(evaluate them on the same questions to let the router use them)")
        records = [r for r in records if r.strategy not in partial]
        table = correctness_table(records)
    costs = strategy_costs(records)
    if not costs:
        raise InputError("no strategy was evaluated on every question of these runs: evaluate the same "
                         "strategies on the same questions (`assistant eval --run RUN_ID -s ...`)")
    if len(table) < 10:
        raise InputError(f"{len(table)} evaluated questions are too few to learn a router: evaluate at least 10")
    questions = {r.item_id: r.question for r in records}
    train_ids, test_ids = split_items(sorted(table), test_fraction, seed)
    check_disjoint(train_ids, test_ids)
    assistant = Assistant(domain, config)
    retriever = assistant.retriever
    accuracy = accuracy_where_evaluated((table[i] for i in train_ids), costs)
    log(f"computing signals for {len(table)} questions ...")
    signals = {i: signals_for(questions[i], domain, retriever, config, adapters=adapters, accuracy=accuracy)[0]
               for i in sorted(table)}
    methods = METHODS if method == "auto" else (method,)

    def fit(ids: Sequence[str]) -> tuple[Any, list[dict[str, Any]]]:
        chosen, cv = select_policy([signals[i] for i in ids], [table[i] for i in ids], costs, methods=methods,
                                   seed=seed)
        if max_cost is not None or min_accuracy is not None:
            weight = chosen.calibrate([signals[i] for i in ids], [table[i] for i in ids], max_cost=max_cost,
                                      min_accuracy=min_accuracy)
            chosen = chosen.with_cost_weight(weight)
        return chosen, cv

    train = sorted(train_ids)
    log(f"cross-validating router methods on {len(train)} training questions ...")
    policy, cv = fit(train)
    held_out = sorted(test_ids)
    result = compare({i: policy.decide(signals[i]).strategy for i in held_out}, table, costs)
    rules = compare({i: RULES.decide(signals[i]).strategy for i in held_out}, table, costs)
    crossfit = None
    if crossfit_folds >= 2 and len(table) >= 2 * crossfit_folds:
        log(f"cross-fitting over all {len(table)} questions ({crossfit_folds} folds, each routed by a policy "
            "trained without it) ...")
        crossfit = _crossfit(table, costs, signals, fit, crossfit_folds, seed)
    metrics = {
        "runs": run_ids,
        "fingerprint": current_fingerprint(domain, config),
        "train_questions": len(train_ids),
        "method": policy.method,
        "c": policy.c,
        "cv": cv,
        "test_ids": held_out,
        "router": result["router"],
        "rules": rules["router"],
        "best_single": result["best_single"],
        "oracle": result["oracle"]["accuracy"],
        "gap_closed": result["gap_closed"],
        "single": {s: v["accuracy"] for s, v in result["single"].items()},
        "max_cost": max_cost,
        "min_accuracy": min_accuracy,
        "crossfit": crossfit,
    }
    policy.save(policy_path(domain, config), data_hash=records_hash(records), metrics=metrics)
    clear_cache()
    return metrics


def _crossfit(
    table: Mapping[str, Mapping[str, bool]],
    costs: Mapping[str, float],
    signals: Mapping[str, Signals],
    fit: Callable[[Sequence[str]], tuple[Any, list[dict[str, Any]]]],
    folds: int,
    seed: int,
) -> dict[str, Any]:
    """Every question routed by a policy fitted without it (folds by a hash of the id), compared over all."""
    from assistant.router.oracle import check_disjoint, compare, fold_of

    ids = sorted(table)
    fold = {i: fold_of(i, folds, seed) for i in ids}
    decisions: dict[str, str] = {}
    methods: dict[str, int] = {}
    for k in range(folds):
        test = [i for i in ids if fold[i] == k]
        train = [i for i in ids if fold[i] != k]
        if not test:
            continue
        check_disjoint(train, test)
        policy, _ = fit(train)
        methods[policy.method] = methods.get(policy.method, 0) + 1
        decisions.update({i: policy.decide(signals[i]).strategy for i in test})
    result = compare(decisions, table, costs)
    rules = compare({i: RULES.decide(signals[i]).strategy for i in ids}, table, costs)
    return {"folds": folds, "n": len(ids), "methods": methods, "router": result["router"], "rules": rules["router"],
            "best_single": result["best_single"], "oracle": result["oracle"]["accuracy"],
            "gap_closed": result["gap_closed"], "single": {s: v["accuracy"] for s, v in result["single"].items()}}


def eval_router(domain: str, config: Config) -> dict[str, Any]:
    """The saved policy's held-out comparison: router and rules vs each single strategy and the oracle."""
    from assistant.router.learned import LearnedPolicy

    path = policy_path(domain, config)
    if not path.with_suffix(".json").is_file():
        raise NotFoundError(f"no learned router for '{domain}' yet: `assistant router train --domain {domain}`")
    try:
        return dict(LearnedPolicy.load(path).metrics)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def show_router(domain: str, config: Config) -> dict[str, Any]:
    """The policy in use for `domain`: kind, thresholds or features and strategies, and why it is used."""
    config.domain(domain)
    policy, which = load_policy(domain, config)
    info = policy.describe()
    info["in_use"] = which
    info.pop("metrics", None)
    return info


__all__ = ["eval_router", "load_policy", "policy_path", "route", "show_router", "signals_for", "train_router",
           "warm_up"]
