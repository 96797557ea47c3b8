"""`assistant router train | eval | show`: the per-question strategy router (registered by `assistant.cli`).

    assistant router train --domain medical            # learn from the domain's latest evaluation run
    assistant router show --domain medical
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Column, Table

import assistant as api
from assistant.cli_common import Domain, err, load_config, out, typer_app

router_app = typer_app("The router that picks base, RAG, an adapter or both per question (strategy 'auto').")


def _acc(row: dict[str, Any] | None) -> str:
    if not row:
        return "-"
    cost = row.get("mean_cost")
    return f"{row['accuracy']:.3f}" + ("" if cost is None else f"  ({cost:.2f}s)")


def _comparison(m: dict[str, Any]) -> Table:
    table = Table(Column("policy / strategy", no_wrap=True), "accuracy (mean latency)", "routes")
    routes = ", ".join(f"{s} {share:.0%}" for s, share in m["router"]["routes"].items())
    name = f"learned router ({m['method']})" if m.get("method") else "learned router"
    table.add_row(name, _acc(m["router"]), routes)
    rules = ", ".join(f"{s} {share:.0%}" for s, share in m["rules"]["routes"].items())
    table.add_row("rule policy", _acc(m["rules"]), rules)
    for strategy, acc in sorted(m["single"].items(), key=lambda kv: -kv[1]):
        table.add_row(strategy, f"{acc:.3f}", "")
    table.add_row("oracle (best per question)", f"{m['oracle']:.3f}", "")
    return table


def _cv_table(m: dict[str, Any]) -> Table:
    table = Table("method (cross-validated on the training questions)", "C", "accuracy ± se", "")
    for row in m["cv"]:
        table.add_row(row["method"], "-" if row["c"] is None else f"{row['c']:g}",
                      f"{row['accuracy']:.3f} ± {row['se']:.3f}", "chosen" if row["chosen"] else "")
    return table


def _print_metrics(m: dict[str, Any]) -> None:
    if m.get("cv"):
        out.print(_cv_table(m))
    out.print(_comparison(m))
    best, best_acc = m["best_single"]
    gap = m["gap_closed"]
    out.print(f"held-out questions: {m['router']['n']} (trained on {m['train_questions']}); best single strategy "
              f"{best} {best_acc:.3f}; oracle {m['oracle']:.3f}; the router closes {_gap(gap)}", highlight=False)
    cf = m.get("crossfit")
    if cf:
        best, best_acc = cf["best_single"]
        methods = ", ".join(f"{k} x{v}" for k, v in cf["methods"].items())
        out.print(f"cross-fitted over all {cf['n']} questions ({cf['folds']} folds, each routed by a policy trained "
                  f"without it; chosen methods: {methods}): router {_acc(cf['router'])}, rule policy "
                  f"{_acc(cf['rules'])}, best single {best} {best_acc:.3f}, oracle {cf['oracle']:.3f}; the router "
                  f"closes {_gap(cf['gap_closed'])}", highlight=False)


def _gap(gap: float | None) -> str:
    return ("no measurable gap (the oracle is no better than the best single strategy)" if gap is None
            else f"{gap:.0%} of the gap")


@router_app.command("train")
def router_train(
    domain: Domain = "medical",
    runs: Annotated[str | None, typer.Option("--runs", help="Comma-separated run ids (default: the domain's latest run).")] = None,
    max_cost: Annotated[float | None, typer.Option("--max-cost", help="Calibrate: mean seconds per question at most this.")] = None,
    min_accuracy: Annotated[float | None, typer.Option("--min-accuracy", help="Calibrate: the cheapest routing with at least this accuracy.")] = None,
    test_fraction: Annotated[float, typer.Option("--test-fraction", help="Share of the questions held out to evaluate the router.")] = 0.3,
    method: Annotated[str, typer.Option("--method", help="auto (cross-validate and keep the best), per-strategy, cheapest-correct or best-single.")] = "auto",
) -> None:
    """Learn a routing policy from evaluation records; evaluate it on held-out questions; use it from now on."""
    ids = [r.strip() for r in runs.split(",") if r.strip()] if runs else []
    metrics = api.train_router(domain, ids, load_config(), max_cost=max_cost, min_accuracy=min_accuracy,
                               method=method, test_fraction=test_fraction, log=lambda msg: err.print(msg, highlight=False))
    _print_metrics(metrics)


@router_app.command("eval")
def router_eval(domain: Domain = "medical") -> None:
    """The learned router vs the rule policy, every single strategy and the oracle, on its held-out questions."""
    _print_metrics(api.eval_router(domain, load_config()))


@router_app.command("show")
def router_show(
    domain: Domain = "medical",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The policy in use for a domain: rules and thresholds, or the learned model's features and strategies."""
    info = api.show_router(domain, load_config())
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
    out.print(f"policy in use: {info['in_use']}", highlight=False)
    if info["policy"] == "rules":
        for key, value in info["thresholds"].items():
            out.print(f"  {key} = {value}", highlight=False)
        for rule in info["rules"]:
            out.print(f"  - {rule}", highlight=False)
    else:
        method = info.get("method", "cheapest-correct")
        model = ("no model: the signals did not predict the right strategy in cross-validation"
                 if method == "best-single" else info["kind"] + ("" if info.get("c") is None else f", C={info['c']:g}"))
        out.print(f"  method: {method} ({model}); cost weight {info['cost_weight']}", highlight=False)
        out.print("  strategies (mean latency): " + ", ".join(f"{s} ({info['costs'][s]:.2f}s)" for s in info["strategies"]),
                  highlight=False)
        out.print(f"  features: {', '.join(info['features'])}", highlight=False)
