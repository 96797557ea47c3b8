"""Learning and evaluating the router from evaluation records: `assistant router train | eval`.

    from assistant.jobs.router import train_router, eval_router
    summary = train_router("medical", ["medical-20261122-..."], config)      # learned policy from records

The policy is fitted on part of the evaluated questions and compared on the rest with the rules, every
single strategy and the oracle; it is saved beside the runs and used by `assistant.routing` while the
index and model it was trained for still match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from assistant.config import Config
from assistant.errors import InputError, NotFoundError
from assistant.router.signals import Signals
from assistant.routing import (
    RULES,
    accuracy_where_evaluated,
    available_specs,
    clear_cache,
    context_adapters,
    current_fingerprint,
    domain_adapters,
    policy_path,
    signals_for,
)

if TYPE_CHECKING:
    from assistant.evaluation.store import Record


def records_for(domain: str, run_ids: Sequence[str], config: Config) -> tuple[list[Record], list[str]]:
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
        made_with = run.made_with
        if made_with.model != now["model"]:
            raise InputError(f"run '{run_id}' was made with model '{made_with.model}', but the "
                             f"router answers with '{now['model']}': evaluate again with this model")
        if made_with.backend.split("+")[0] != now["backend"]:  # llamacpp+transformers: llama.cpp answered
            raise InputError(f"run '{run_id}' was made on the {made_with.backend} backend, but the router answers "
                             f"on {now['backend']}: evaluate again on this backend (or set generation.backend)")
        index = made_with.index.collection if made_with.index is not None else None
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
    keeps the best (router.selection: one-standard-error rule, simplest first); or one of them.
    crossfit_folds: also route every question with a policy fitted (the same way) on the other folds, for
    a steadier estimate than the held-out part alone (metrics["crossfit"]; 0 to skip).
    """
    from assistant.api import Assistant
    from assistant.router.learned import METHODS
    from assistant.router.oracle import (
        check_disjoint,
        compare,
        correctness_table,
        records_hash,
        split_items,
        strategy_costs,
    )
    from assistant.router.selection import select_policy

    if method != "auto" and method not in METHODS:
        raise InputError(f"unknown router method '{method}' (known: auto, {', '.join(METHODS)})")

    config.domain(domain)
    records, run_ids = records_for(domain, run_ids, config)
    adapters = domain_adapters(domain, config)
    context = context_adapters(domain, config)
    known = available_specs(domain, config)
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
    signals = {i: signals_for(questions[i], domain, retriever, config, adapters=adapters, accuracy=accuracy,
                              context=context)[0]
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
        crossfit = crossfit_router(table, costs, signals, fit, crossfit_folds, seed)
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


def crossfit_router(
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


__all__ = ["eval_router", "train_router"]
