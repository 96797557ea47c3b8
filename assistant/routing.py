"""Routing at question time: the signals of a question (one probe of the domain's index, the other domains'
indexes, the evaluated accuracies), the policy in use, and the decision `Assistant.ask` answers with.

    from assistant.routing import route, show_router
    decision, signals = route(ctx, "Do statins reduce mortality?")   # what Assistant.prepare runs for "auto"
    decision.strategy, decision.reason, decision.index_missing

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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import Config
from assistant.errors import AssistantError, NotFoundError
from assistant.router.policy import Decision, RulePolicy
from assistant.router.signals import Signals, domain_of, question_type, retrieval_signals

if TYPE_CHECKING:
    from assistant.models.adapters import AdapterInfo
    from assistant.retrieval import Retriever
    from assistant.router.learned import LearnedPolicy
    from assistant.strategies import StrategyContext

RULES = RulePolicy()
_CACHE: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def policy_path(domain: str, config: Config) -> Path:
    return config.runs_dir / "router" / f"{domain}.pkl"


def current_fingerprint(domain: str, config: Config) -> dict[str, Any]:
    """What a learned policy depends on: the generation model and the index it routes over (the same
    identity the evaluation records keep, see assistant.index.manifest.index_fingerprint)."""
    from assistant.index.manifest import index_fingerprint

    try:
        index = index_fingerprint(domain, config)
    except NotFoundError:
        index = {}
    from assistant.models import resolve_backend

    config = config.for_domain(domain)
    try:
        backend = resolve_backend(config)
    except AssistantError:  # the model is missing: answering will say so; this only compares
        backend = config.generation.backend
    return {"model": config.generation.model, "backend": backend, "index": index.get("collection"),
            "embedding": index.get("embedding")}


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
    """The domain's SFT adapters, newest first."""
    return tuple(a.name for a in _adapter_infos(domain, config))


def context_adapters(domain: str, config: Config) -> tuple[str, ...]:
    """Those of the domain's SFT adapters trained with retrieved passages (RAFT), as their records say."""
    return tuple(a.name for a in _adapter_infos(domain, config) if a.is_raft)


def _adapter_infos(domain: str, config: Config) -> list[AdapterInfo]:
    from assistant.models.adapters import domain_adapters as adapters_of

    return adapters_of(config, domain)


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
    context: Sequence[str] = (),
) -> tuple[Signals, dict[str, float]]:
    """The question's Signals, and its nearest-neighbour similarity to every domain with an index.
    `context`: those of `adapters` trained with retrieved passages."""
    qtype = question_type(question)
    if retriever is None:
        return Signals(domain, 1.0, question_type=qtype, adapters=tuple(adapters),
                       adapter_accuracy=dict(accuracy or {}), context_adapters=tuple(context)), {}
    probe = retriever.probe(question, filters=filters)
    doc = lambda hits: [(cid.rpartition("#")[0] or cid, s) for cid, s in hits]  # noqa: E731
    top, gap, agreement = retrieval_signals(doc(probe.dense), doc(probe.lexical))
    sims = {domain: probe.dense[0][1] if probe.dense else 0.0}
    for name, other in other_retrievers(domain, config).items():
        # a domain with its own embedder is asked in its own vector space (one more query embedding)
        same = other.embedder.name == retriever.embedder.name
        sims[name] = other.nearest(probe.qvec if same else question)
    chosen, sim = domain_of(sims, RULES.min_domain_similarity)
    if chosen is None:
        sim = max(sims.values())
    own = chosen == domain
    signals = Signals(
        chosen, sim, top if own else None, gap if own else None, agreement if own else None, qtype,
        tuple(adapters) if own else (), dict(accuracy or {}) if own else {}, tuple(context) if own else (),
    )
    return signals, sims


def _setup(domain: str, config: Config) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, float], tuple[Any, str]]:
    """What routing a domain's questions reads once per process: its adapters (and which read retrieved
    passages), their evaluated accuracy, the policy in use, and the other domains' retrievers (for the
    out-of-domain signal)."""
    key = f"{config.home}:{domain}"
    adapters = _cached(("adapters", key), lambda: domain_adapters(domain, config))
    context = _cached(("context_adapters", key), lambda: context_adapters(domain, config))
    accuracy = _cached(("accuracy", key), lambda: evaluated_accuracy(domain, config, adapters))
    policy = _cached(("policy", key), lambda: load_policy(domain, config))
    other_retrievers(domain, config)
    return adapters, context, accuracy, policy


def warm_up(ctx: StrategyContext) -> None:
    """Load what the first routed question would otherwise pay for (policy, other domains' indexes)."""
    with contextlib.suppress(NotFoundError):
        ctx.get_retriever()
    _setup(ctx.domain.name, ctx.config)


def route(ctx: StrategyContext, question: str, filters: Mapping[str, Any] | None = None) -> tuple[Decision, Signals]:
    """Decide the strategy for `question` (already through `check_question`) in the context's domain."""
    config, domain = ctx.config, ctx.domain.name
    try:
        retriever: Retriever | None = ctx.get_retriever()
    except NotFoundError:
        retriever = None
    adapters, context, accuracy, (policy, which) = _setup(domain, config)
    signals, sims = signals_for(question, domain, retriever, config, filters=filters, adapters=adapters,
                                accuracy=accuracy, context=context)
    if retriever is None:
        decision = Decision("base", f"base: the '{domain}' index is not built (`assistant index build {domain}`)",
                            domain, index_missing=True)
    elif signals.domain is None:
        decision = RULES.decide(signals)
    elif signals.domain != domain:
        decision = Decision("base", f"question looks like the {signals.domain} domain (similarity "
                            f"{sims[signals.domain]:.2f} vs {domain} {sims[domain]:.2f})")  # the Assistant answers it there
    else:
        decision = policy.decide(signals) if isinstance(policy, RulePolicy) else policy.decide(
            signals, available=_cached(("available", f"{config.home}:{domain}"), lambda: available_specs(domain, config)))
    return replace(decision, reason=f"{decision.reason} [policy: {which}]", domain=signals.domain,
                   index_missing=retriever is None), signals


def available_specs(domain: str, config: Config) -> set[str]:
    """The specs a learned policy may choose: what can answer in the domain now (every fewshot:K), with
    the domain's own SFT adapters only (the router routes to those, see domain_adapters), and the rungs
    without an adapter on each named model."""
    from assistant.strategies import AUTO, available_strategies, expand_fewshot

    own = set(domain_adapters(domain, config))
    specs = set(expand_fewshot(available_strategies(domain, config))) - {AUTO}
    specs = {s for s in specs if (adapter := Decision(s, "").adapter) is None or adapter in own}
    # and the same rungs without adapters on every named model (config `models:`, rung specs "rag@big")
    return specs | {f"{s}@{m}" for s in specs if Decision(s, "").adapter is None for m in config.models}


def show_router(domain: str, config: Config) -> dict[str, Any]:
    """The policy in use for `domain`: kind, thresholds or features and strategies, and why it is used."""
    config.domain(domain)
    policy, which = load_policy(domain, config)
    info = policy.describe()
    info["in_use"] = which
    info.pop("metrics", None)
    return info


__all__ = ["RULES", "accuracy_where_evaluated", "available_specs", "clear_cache", "context_adapters", "current_fingerprint",
           "domain_adapters", "load_policy", "policy_path", "route", "show_router", "signals_for", "warm_up"]
