"""The evaluation commands of the CLI: `assistant eval`, `advise`, `report` and `runs`.

Registered on the main app by `assistant.cli` (kept apart so each file stays small); like the rest of
the CLI they use the public Python API only.

    assistant eval --domain medical --strategies base,rag,fewshot:3 --limit 50
    assistant advise --domain finance --limit 100
    assistant report --run RUN_ID
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

import assistant as api
from assistant.cli_common import Domain, err, load_config, out, typer_app

runs_app = typer_app("List and delete evaluation runs (the records behind reports, Elo and the router).")

Limit = Annotated[int | None, typer.Option("--limit", help="Evaluate a seeded sample of N test questions (default: all).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the question sample.")]
RunId = Annotated[str | None, typer.Option("--run", help="Resume (or extend) this run id instead of starting a new one.")]
Corpus = Annotated[list[str] | None, typer.Option("--corpus", help="Only this corpus's test split (repeatable).")]
NoProgress = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _command(ctx: Any) -> str:
    """The command being run, rebuilt from the options given on the command line (however it was invoked).

    Duck-typed: typer ships its own copy of click, whose Option and ParameterSource are not click's.
    """
    parts = ["assistant", ctx.info_name or ""]
    for param in ctx.command.params:
        name = param.name or ""
        source = ctx.get_parameter_source(name)
        if getattr(param, "param_type_name", "") != "option" or getattr(source, "name", "") != "COMMANDLINE":
            continue
        value, flag = ctx.params.get(name), max(param.opts, key=len)
        if isinstance(value, bool):
            parts.append(flag if value else max(param.secondary_opts or [flag], key=len))
        else:
            for v in value if isinstance(value, list | tuple) else [value]:
                parts += [flag, shlex.quote(str(v))]
    return " ".join(parts)


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _summary_table(summaries: list[Any]) -> Table:
    """The headline figures; report.md has the rest (macro-F1, EM, MRR, p95, tokens, examples)."""
    table = Table(Column("strategy", no_wrap=True), Column("accuracy [95% CI]", no_wrap=True), "F1", "R@k",
                  "p50 s", "$/1k", "top error")
    for s in summaries:
        errors = {k: v for k, v in s.errors.items() if v}
        top = max(errors, key=errors.__getitem__) if errors else "-"
        table.add_row(
            s.strategy, f"{s.accuracy:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}]", _num(s.f1, 3), _num(s.recall_at_k, 3),
            _num(s.latency_p50, 2), _num(s.cost_per_1000, 4), f"{top} ({errors[top]})" if errors else "-",
        )
    return table


def _finish(run: Any, config: api.Config, command: str) -> None:
    store = api.RunStore.open(config)
    out.print(_summary_table(api.summarize(store.records(run.run_id), usd_per_hour=config.evaluation.usd_per_hour,
                                           k=config.evaluation.recall_k)))
    path = api.report_run(run.run_id, config, command=command)
    out.print(f"run {run.run_id}: report {path}", highlight=False)


def eval_(
    ctx: typer.Context,
    domain: Domain = "medical",
    strategies: Annotated[str, typer.Option("--strategies", "-s", help="Comma-separated rungs: base,fewshot:3,cot,rag,adapter:NAME,rag+adapter:NAME; SPEC@MODEL runs one on a named model of config `models:` (rag@big); SPEC/MODE in an answer mode: generate, extractive, auto (rag/auto; default generation.answer_mode).")] = "base,rag",
    limit: Limit = None,
    seed: SeedOpt = 0,
    corpus: Corpus = None,
    run: RunId = None,
    sweep_data: Annotated[str | None, typer.Option("--sweep-data", help="Train adapters on these amounts of data (fractions <= 1 or item counts) and plot accuracy against them.")] = None,
    adapter_recipe: Annotated[str, typer.Option("--adapter-recipe", help="For --sweep-data: sft (adapter) or raft (rag+adapter, trained --with-context).")] = "sft",
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="For --sweep-data: cap each adapter's steps (default: one epoch over its data).")] = None,
    rescore: Annotated[bool, typer.Option("--rescore", help="With --run: score its stored answers again with the current scoring (no model runs).")] = False,
    batch: Annotated[int | None, typer.Option("--batch", min=1, help="Questions of a rung answered together, their replies written in one batch (default evaluation.batch, 8); 1: one at a time, each latency its own.")] = None,
    quiet: NoProgress = False,
) -> None:
    """Answer the domain's held-out questions with each strategy; store every record; print and write a report."""
    config = load_config()
    if batch is not None:
        config = config.replace(evaluation=dataclasses.replace(config.evaluation, batch=batch))
    command = _command(ctx)
    if rescore:
        if not run:
            raise api.InputError("--rescore needs --run RUN_ID (`assistant runs list`)")
        changed = api.rescore(run, config)
        err.print(f"rescored run {run}: {changed} verdicts changed")
        _finish(api.RunStore.open(config).get_run(run), config, command)
        return
    if sweep_data:
        references = [s for s in strategies.split(",") if s.strip()]
        options = {"max_steps": max_steps} if max_steps else {}
        result, _ = api.sweep_data(domain, sweep_data, adapter_recipe, config, references=references, limit=limit,
                                   seed=seed, corpora=corpus, train_options=options, progress=not quiet)
    else:
        result = api.evaluate(domain, strategies, config, limit=limit, seed=seed, corpora=corpus, run_id=run,
                              progress=not quiet)
    _finish(result, config, command)


def advise(
    ctx: typer.Context,
    domain: Domain = "medical",
    limit: Limit = None,
    seed: SeedOpt = 0,
    corpus: Corpus = None,
    run: RunId = None,
    quiet: NoProgress = False,
    models: Annotated[str | None, typer.Option("--models", help="Named models (config `models:`) to try first, comma-separated: base, few-shot and RAG on each before the domain's own ladder.")] = None,
) -> None:
    """Climb the ladder base -> few-shot -> CoT -> RAG -> adapter -> both; stop when gains stop; recommend."""
    config = load_config()
    names = [m.strip() for m in (models or "").split(",") if m.strip()]
    advice = api.advise(domain, config, limit=limit, seed=seed, corpora=corpus, run_id=run, progress=not quiet,
                        models=names)
    out.print(advice.text(), highlight=False)
    path = api.report_run(advice.run_id, config, command=_command(ctx))
    out.print(f"report {path}", highlight=False)


def report(
    run: Annotated[str | None, typer.Option("--run", help="Run id (default: the latest run).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for report.md and the charts (default: runs/RUN_ID/).")] = None,
    command: Annotated[str, typer.Option("--command", help="The command that made the run, quoted in the report.")] = "",
) -> None:
    """Write a run's markdown report with charts (accuracy with CI, accuracy vs latency, errors, data size)."""
    config = load_config()
    if run is None:
        latest = api.RunStore.open(config).latest_run()
        if latest is None:
            raise api.NotFoundError("there are no evaluation runs yet: `assistant eval --domain medical --limit 50`")
        run = latest.run_id
    path = api.report_run(run, config, out=out_dir, command=command)
    out.print(f"wrote {path}", highlight=False)


@runs_app.command("list")
def runs_list(domain: Annotated[str | None, typer.Option("--domain", "-d", help="Only this domain.")] = None) -> None:
    """Evaluation runs, newest first."""
    store = api.RunStore.open(load_config())
    found = store.runs(domain)
    if not found:
        out.print("no evaluation runs yet: `assistant eval --domain medical --limit 50`")
        return
    table = Table(Column("run", no_wrap=True), "created", "domain", "strategies", "questions", "records", "status")
    for r in found:
        s = r.summary()
        table.add_row(s["run_id"], s["created"], s["domain"], ", ".join(s["strategies"]),
                      "" if r.settings.items is None else str(r.settings.items), str(len(store.done(r.run_id))),
                      s["status"])
    out.print(table)


@runs_app.command("delete")
def runs_delete(run: Annotated[str, typer.Argument(help="Run id.")]) -> None:
    """Delete a run and its records."""
    api.RunStore.open(load_config()).delete_run(run)
    err.print(f"deleted run {run}")
