"""`assistant eval --sweep-data 0.1,0.25,0.5,1.0 --adapter-recipe sft`: accuracy against training-set size.

    from assistant.jobs.sweep import sweep_data
    run, points = sweep_data("medical", ["0.1", "0.5", "1.0"], "sft", config, limit=100)

For each amount (a fraction of the train split when <= 1, else a number of QA items) an adapter
`<domain>-<recipe>-<amount>` is trained on that much data (once: an existing adapter of that name and
amount is reused), then evaluated beside the reference strategies (RAG by default) on the same questions
in one run. Each adapter sees its data `training.epochs` times (the step cap is lifted, so a bigger
share really means more training, not the same number of steps); on CPU keep the amounts small.
Recipes: "sft" (adapter strategy) and "raft" (trained --with-context, answered by rag+adapter).
It trains adapters, so it is orchestration (beside `jobs.train`), not part of the evaluation package.
Tests: `.venv/bin/pytest tests/evaluation/test_runner.py -q -k sweep`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from assistant.config import Config
from assistant.errors import InputError, NotFoundError
from assistant.evaluation.runner import Log, evaluate, log_stderr
from assistant.evaluation.store import Run, RunStore
from assistant.evaluation.summary import summarize

RECIPES = {"sft": ("adapter", False), "raft": ("rag+adapter", True)}
UNCAPPED_STEPS = 10**9  # the run ends after `epochs` passes over its data


def parse_amounts(values: Sequence[str] | str) -> list[tuple[float | None, int | None]]:
    """"0.1,0.5,200" -> [(0.1, None), (0.5, None), (None, 200)]: fractions (<= 1) or item counts."""
    if isinstance(values, str):
        values = values.split(",")
    out: list[tuple[float | None, int | None]] = []
    for raw in (v.strip() for v in values):
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            raise InputError(f"--sweep-data takes fractions (0-1] or item counts, got '{raw}'") from None
        if value <= 0 or (value > 1 and not value.is_integer()):
            raise InputError(f"--sweep-data takes fractions (0-1] or whole item counts, got '{raw}'")
        out.append((value, None) if value <= 1 else (None, int(value)))
    if not out:
        raise InputError("--sweep-data needs at least one amount, e.g. 0.1,0.5,1.0")
    return out


def _label(fraction: float | None, count: int | None) -> str:
    return f"f{fraction:g}" if fraction is not None else f"n{count}"


def sweep_data(
    domain: str,
    amounts: Sequence[str] | str,
    recipe: str,
    config: Config,
    *,
    references: Sequence[str] = ("rag",),
    limit: int | None = None,
    seed: int = 0,
    corpora: Sequence[str] | None = None,
    train_options: dict[str, Any] | None = None,
    progress: bool = True,
    log: Log = log_stderr,
    store: RunStore | None = None,
) -> tuple[Run, list[dict[str, Any]]]:
    """Train (or reuse) one adapter per amount, evaluate them beside `references` in one run, and store
    the points (accuracy and its interval per adapter, accuracy per reference) in the run's meta."""
    from assistant.jobs.train import train
    from assistant.models.adapters import get_adapter

    if recipe not in RECIPES:
        raise InputError(f"unknown adapter recipe '{recipe}' (known: {', '.join(RECIPES)})")
    strategy, with_context = RECIPES[recipe]
    store = store or RunStore.open(config)
    options = {"max_steps": UNCAPPED_STEPS, **(train_options or {})}
    specs: list[str] = []
    trained: dict[str, dict[str, Any]] = {}
    for fraction, count in parse_amounts(amounts):
        name = f"{domain}-{recipe}-{_label(fraction, count)}"
        try:
            info = get_adapter(config, name)
            log(f"reusing adapter {name}")
        except NotFoundError:  # not trained yet
            info = None
        if info is None:
            log(f"training {name} on {'a share ' + str(fraction) if fraction else str(count) + ' items'} ...")
            info = train("sft", domain, name, config, with_context=with_context, fraction=fraction,
                         max_examples=count, **options)
        results = info.training.results
        trained[f"{strategy}:{name}"] = {
            "examples": int(results.get("train_examples") or info.training.data.selected_items or 0),
            "fraction": fraction,
            "count": count,
            "steps": results.get("steps"),
        }
        specs.append(f"{strategy}:{name}")
    run = evaluate(domain, [*references, *specs], config, limit=limit, seed=seed, corpora=corpora,
                   progress=progress, log=log, store=store)
    points: list[dict[str, Any]] = []
    for s in summarize(store.records(run.run_id), usd_per_hour=config.evaluation.usd_per_hour):
        if s.strategy in trained:
            points.append({"strategy": s.strategy, "recipe": recipe, **trained[s.strategy], "accuracy": s.accuracy,
                           "ci_low": s.ci_low, "ci_high": s.ci_high})
        else:
            points.append({"reference": s.strategy, "accuracy": s.accuracy})
    points.sort(key=lambda p: (p.get("reference", ""), p.get("examples", math.inf)))
    store.update_meta(run.run_id, sweep=points, sweep_recipe=recipe)
    return store.get_run(run.run_id), points


__all__ = ["RECIPES", "parse_amounts", "sweep_data"]
