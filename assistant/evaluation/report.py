"""Reports of an evaluation run: an Elo table and a markdown report with charts (summaries: evaluation.summary).

    from assistant.evaluation.report import report_run, summarize, elo_table, write_report
    path = report_run(run_id, config, command="assistant eval ...")   # runs/RUN_ID/report.md + charts
    rows = summarize(store.records(run.run_id))              # one StrategySummary per strategy
    elo = elo_table(records, votes=store.votes(run.domain))   # EloRow list, best first
    path = write_report(run, records, out_dir, votes=votes, command="assistant eval medical ...")

`write_report` writes `report.md` and the PNG charts of evaluation.charts next to it (linked relatively,
so the folder can be moved or published as is). Everything is rebuilt from stored `Record`s; nothing
needs a model. The figures (accuracy and its interval, macro-F1, R@k, latency, cost) are defined in
evaluation.summary. Tests: `.venv/bin/pytest tests/evaluation/test_report.py -q`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.config import Config
from assistant.errors import InputError
from assistant.evaluation.buckets import BUCKETS, classify
from assistant.evaluation.charts import write_charts
from assistant.evaluation.elo import EloRow, elo_ratings, games_from_correctness, vote_to_score
from assistant.evaluation.store import Record, Run, RunStore, Vote
from assistant.evaluation.summary import StrategySummary, group_by, summarize

ELO_ROUNDS = 100
EXAMPLES_PER_BUCKET = 2
EXAMPLE_CHARS = 200


def elo_games(records: Sequence[Record], votes: Sequence[Vote] = ()) -> list[tuple[str, str, float]]:
    """Pairwise games (a, b, score_a): one per pair of strategies per gold-scored question (the correct
    one wins, same verdict ties), then one per human vote (strategy_a is player a; unknown votes skipped)."""
    table: dict[str, dict[str, bool]] = {}
    for r in records:
        if r.gold.strip():
            table.setdefault(r.item_id, {})[r.strategy] = bool(r.correct)
    games = games_from_correctness(table)
    for v in votes:
        score = vote_to_score(v.vote)
        if score is not None and v.strategy_a != v.strategy_b:
            games.append((v.strategy_a, v.strategy_b, score))
    return games


def elo_table(records: Sequence[Record], votes: Sequence[Vote] = ()) -> list[EloRow]:
    """Elo ratings from `elo_games`, averaged over 100 shuffled orders (seed 0), highest first; each row's
    `games` counts the games that strategy played. Empty when there is no game (a single strategy)."""
    games = elo_games(records, votes)
    return list(elo_ratings(games, rounds=ELO_ROUNDS, seed=0).values()) if games else []


# ---------------------------------------------------------------------------------- markdown


def _num(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _text(text: str, limit: int = EXAMPLE_CHARS) -> str:
    """One line of model or user text, safe inside markdown tables and blockquotes."""
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[:limit - 1].rstrip() + "…"
    for ch in "\\`*_[]<>|#":
        flat = flat.replace(ch, "\\" + ch)
    return flat or "(empty)"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _results(summaries: Sequence[StrategySummary], k: int) -> list[str]:
    header = ["strategy", "n", "accuracy [95% CI]", "macro-F1", "generated acc.", "EM", "F1", f"R@{k}", "MRR",
              "p50 s", "p95 s", "tokens in/out", "$/1k"]
    rows = [[
        _text(s.strategy), str(s.n), f"{s.accuracy:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}]", _num(s.macro_f1),
        _num(s.generated_accuracy), _num(s.em), _num(s.f1), _num(s.recall_at_k), _num(s.mrr),
        _num(s.latency_p50), _num(s.latency_p95), f"{s.prompt_tokens:.1f} / {s.output_tokens:.1f}",
        _num(s.cost_per_1000, 4),
    ] for s in summaries]
    return _table(header, rows)


def _evidence(summaries: Sequence[StrategySummary]) -> list[str]:
    """A line on where the retrieval rungs' quoted evidence comes from, when the questions have gold documents."""
    shares = [f"{_text(s.strategy)} {s.evidence_gold:.3f} (n={s.evidence_n})" for s in summaries
              if s.evidence_gold is not None]
    return ["", "Evidence from a gold document (of the answers quoting evidence from a source they cite, the share "
                "quoting a gold one): " + ", ".join(shares) + "."] if shares else []


def _unsupported(summaries: Sequence[StrategySummary]) -> list[str]:
    """A line on the retrieval rungs' answers that state a number no source shows (assistant.strategies.checks)."""
    shares = [f"{_text(s.strategy)} {s.unsupported:.3f} (n={s.checked_n}"
              + (f"; {s.replaced} generated replies replaced by the sources' evidence)" if s.replaced else ")")
              for s in summaries if s.unsupported is not None]
    return ["", "Answers stating a number or year that no source shows (of the answers with sources): "
                + ", ".join(shares) + "."] if shares else []


def _corpora(records: Sequence[Record], summaries: Sequence[StrategySummary]) -> list[str]:
    sizes = {c: len({r.item_id for r in rs}) for c, rs in group_by(records, "corpus").items()}
    header = ["strategy", *(f"{_text(c)} (n={n})" for c, n in sizes.items())]
    return _table(header, [[_text(s.strategy), *(_num(s.by_corpus.get(c)) for c in sizes)] for s in summaries])


def _elo(records: Sequence[Record], votes: Sequence[Vote]) -> list[str]:
    games = elo_games(records, votes)
    n_votes = sum(1 for v in votes if vote_to_score(v.vote) is not None and v.strategy_a != v.strategy_b)
    rows = elo_table(records, votes)
    if not rows:
        return ["_No games: Elo needs two strategies on the same questions, or arena votes._"]
    lines = [f"{len(games)} games: {len(games) - n_votes} from gold-scored questions (one per pair of strategies "
             f"per question; same verdict is a tie) and {n_votes} from arena votes. k=32, ratings averaged "
             f"over {ELO_ROUNDS} shuffled game orders (seed 0).", ""]
    return lines + _table(["rank", "strategy", "Elo", "games", "wins", "ties", "losses"], [
        [str(i), _text(r.name), f"{r.rating:.1f}", str(r.games), str(r.wins), str(r.ties), str(r.losses)]
        for i, r in enumerate(rows, 1)
    ])


def _sweep(sweep: Sequence[dict[str, Any]]) -> list[str]:
    points = [e for e in sweep if "reference" not in e]
    refs = [e for e in sweep if "reference" in e]
    rows = [[_text(str(e.get("strategy", ""))), _text(str(e.get("recipe", ""))), str(e.get("examples", "—")),
             _num(e.get("fraction")), f"{_num(e.get('accuracy'))} [{_num(e.get('ci_low'))}, {_num(e.get('ci_high'))}]"]
            for e in sorted(points, key=lambda e: (str(e.get("recipe", "")), float(e.get("examples") or 0)))]
    rows += [[_text(str(e["reference"])), "reference", "—", "—", _num(e.get("accuracy"))] for e in refs]
    return _table(["strategy", "recipe", "examples", "fraction", "accuracy [95% CI]"], rows)


def _errors(records: Sequence[Record], summaries: Sequence[StrategySummary]) -> list[str]:
    lines = _table(["strategy", *BUCKETS, "total wrong", "n"], [
        [_text(s.strategy), *(str(s.errors.get(b, 0)) for b in BUCKETS), str(sum(s.errors.values())), str(s.n)]
        for s in summaries
    ])
    lines += ["", *(f"- **{b}**: {d}" for b, d in BUCKETS.items())]
    for strategy, rs in group_by(records, "strategy").items():
        shown: dict[str, list[Record]] = {}
        for r in rs:
            bucket = classify(r)
            if bucket and len(shown.setdefault(bucket, [])) < EXAMPLES_PER_BUCKET:
                shown[bucket].append(r)
        if not shown:
            continue
        lines += ["", f"### Examples: {_text(strategy)}"]
        for bucket in (b for b in BUCKETS if b in shown):
            lines += ["", f"**{bucket}**"]
            for r in shown[bucket]:
                answer = f"error: {r.error}" if r.error else r.answer
                lines += ["", f"> **Q** ({_text(r.item_id, 80)}): {_text(r.question)}  ",
                          f"> **gold:** {_text(r.gold)}  ", f"> **answer:** {_text(answer)}"]
    return lines


def write_report(
    run: Run,
    records: Sequence[Record],
    out_dir: Path,
    *,
    votes: Sequence[Vote] = (),
    sweep: Sequence[dict[str, Any]] | None = None,
    command: str = "",
    usd_per_hour: float = 0.10,
) -> Path:
    """Write `out_dir/report.md` and its charts (accuracy.png, accuracy_latency.png, errors.png, and
    data_size.png when `sweep` is given); returns the path of report.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = summarize(records, usd_per_hour=usd_per_hour)
    charts = write_charts(summaries, out_dir, sweep=sweep)
    info = run.summary()
    corpora = list(dict.fromkeys(r.corpus for r in records))
    model = run.settings.model
    lines = [f"# Evaluation report: {run.domain} — run `{run.run_id}`", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        f"- model: `{model or 'unknown'}`, engine: {_text(_engine(run.made_with.engine))}",
        *(f"- model `{_text(name)}` (rungs `...@{_text(name)}`): `{_text(str(e.get('model', '?')))}`, engine: "
          f"{_text(_engine(e))}" for name, e in run.meta.get("engines", {}).items()),
        f"- strategies: {', '.join(_text(s.strategy) for s in summaries) or 'none'}",
        f"- questions: {len({r.item_id for r in records})} from {', '.join(map(_text, corpora)) or 'no corpus'}"
        f" (their test splits; limit {run.limit if run.limit is not None else 'none'}, seed {run.seed})",
        *(f"- questions of `{_text(c)}` were synthesised from its documents, not written by people: `assistant data "
          f"synth --method {_text(str(m.get('method')))}` ({_text(str(m.get('model') or 'no model: table cells'))}, "
          f"seed {m.get('seed')})" for c, m in run.meta.get("synthesised", {}).items()),
        f"- machine: {_text(str(run.made_with.machine or 'unknown'))}",
        f"- created: {info['created']}, status: {run.status}",
        f"- cost basis: ${usd_per_hour:.2f} per machine-hour",
    ]
    if (batch := run.config.get("evaluation", {}).get("batch", 1)) > 1:
        lines.append(f"- answered {batch} questions of a rung at a time (evaluation.batch): a latency is the question's "
                     "own retrieval and prompt plus its share of the model's time for its batch (`--batch 1`: alone)")
    if run.note:
        lines.append(f"- note: {_text(run.note)}")
    lines += ["", "## Results", "", *_results(summaries, 5), "",
              "Accuracy is the primary verdict (option scoring for label questions, the parsed answer otherwise); "
              "generated acc. is the share of label questions whose generated text parses to the gold label; "
              "R@5 and MRR are over questions with gold documents; $/1k is the machine cost of 1000 questions "
              "at the mean latency (for a named model with a price per token: the price of its tokens). "
              "A rung `strategy@name` ran on the named model.", *_evidence(summaries), *_unsupported(summaries),
              "", "## Accuracy by corpus", "", *_corpora(records, summaries),
              "", "## Elo", "", *_elo(records, votes)]
    if sweep is not None:
        lines += ["", "## Accuracy vs training data", "", *_sweep(sweep)]
    lines += ["", "## Error analysis", "", *_errors(records, summaries), "", "## Charts", ""]
    lines += [f"![{title}]({path.name})\n" for title, path in charts.items()]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


def _engine(engine: dict[str, Any] | None) -> str:
    if not engine:
        return "transformers (recorded before engines were)"
    return ", ".join(f"{k} {v}" for k, v in engine.items() if k != "model" and v not in (None, ""))


def report_run(run_id: str, config: Config, *, out: Path | None = None, command: str = "") -> Path:
    """Write the markdown report and charts of evaluation run `run_id` (default folder: runs/RUN_ID/).

    The command that made the run is remembered with it (the first one given), so a report rebuilt
    later still says how its numbers were produced.
    """
    store = RunStore.open(config)
    run = store.get_run(run_id)
    if command and not run.meta.get("command"):
        store.update_meta(run_id, command=command)
        run = store.get_run(run_id)
    records = store.records(run_id)
    if not records:
        raise InputError(f"run '{run_id}' has no records yet: resume it with `assistant eval --run {run_id}`")
    folder = out or config.runs_dir / run_id
    return write_report(run, records, folder, votes=store.votes(run.domain), sweep=run.meta.get("sweep"),
                        command=run.meta.get("command", command), usd_per_hour=config.evaluation.usd_per_hour)


__all__ = ["StrategySummary", "elo_games", "elo_table", "report_run", "summarize", "write_report"]
