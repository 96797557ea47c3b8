"""Reports of an evaluation run: per-strategy summaries, an Elo table, and a markdown report with charts.

    from assistant.evaluation.report import summarize, elo_table, write_report
    rows = summarize(store.records(run.run_id))              # one StrategySummary per strategy
    elo = elo_table(records, votes=store.votes(run.domain))   # EloRow list, best first
    path = write_report(run, records, out_dir, votes=votes, command="assistant eval medical ...")

`write_report` writes `report.md` and the PNG charts of evaluation.charts next to it (linked relatively,
so the folder can be moved or published as is). Everything is rebuilt from stored `Record`s; nothing
needs a model. Definitions:
- accuracy is each record's primary verdict (`correct`: option scoring for label questions, the parsed
  answer otherwise) with a 95% percentile-bootstrap interval over questions (1000 resamples, seed 0);
- macro-F1 and the generated-parsed accuracy use label questions only: the first the verdict label
  (`scored`, else `parsed`), the second `parsed`, the label parsed out of the generated text;
- R@k and MRR use records that retrieved something and have gold document ids;
- latency percentiles and cost use the records that recorded a latency; cost per 1000 questions is
  mean latency x 1000 / 3600 x the machine's price per hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from assistant.evaluation.buckets import BUCKETS, classify
from assistant.evaluation.charts import write_charts
from assistant.evaluation.elo import EloRow, elo_ratings, games_from_correctness, vote_to_score
from assistant.evaluation.metrics import bootstrap_ci, macro_f1, percentile, recall_at_k, reciprocal_rank
from assistant.evaluation.store import Record, Run, Vote

ELO_ROUNDS = 100
EXAMPLES_PER_BUCKET = 2
EXAMPLE_CHARS = 200


@dataclass(frozen=True)
class StrategySummary:
    """The figures of one strategy in one run; None where a figure does not apply."""

    strategy: str
    n: int
    accuracy: float
    ci_low: float
    ci_high: float
    macro_f1: float | None = None
    generated_accuracy: float | None = None
    em: float | None = None
    f1: float | None = None
    recall_at_k: float | None = None
    mrr: float | None = None
    latency_p50: float | None = None
    latency_p95: float | None = None
    prompt_tokens: float = 0.0
    output_tokens: float = 0.0
    cost_per_1000: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    by_corpus: dict[str, float] = field(default_factory=dict)


def _label(text: str | None) -> str | None:
    return None if text is None else text.strip().lower()


def _by(records: Sequence[Record], key: str) -> dict[str, list[Record]]:
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(getattr(r, key), []).append(r)
    return groups


def _mean(values: Sequence[float]) -> float | None:
    return fmean(values) if values else None


def _label_scores(labelled: Sequence[Record]) -> tuple[float | None, float | None]:
    """(macro-F1 of the verdict labels, accuracy of the generated parsed labels) over label questions."""
    if not labelled:
        return None, None
    gold = [_label(r.gold) or "" for r in labelled]
    pred = [_label(r.scored if r.scored is not None else r.parsed) for r in labelled]
    options = [_label(o) or "" for r in labelled for o in r.extra.get("options", ()) if isinstance(o, str)]
    names = list(dict.fromkeys([*options, *gold, *(p for p in pred if p is not None)]))
    f1 = macro_f1(pred, gold, labels=names)
    if not any(r.parsed is not None or r.answer.strip() for r in labelled):
        return f1, None  # option scoring only: nothing was generated to parse
    generated = sum(_label(r.parsed) == g for r, g in zip(labelled, gold, strict=True)) / len(labelled)
    return f1, generated


def _summarize_one(strategy: str, records: Sequence[Record], usd_per_hour: float, k: int) -> StrategySummary:
    acc, low, high = bootstrap_ci([float(r.correct) for r in records], seed=0)
    f1_macro, generated = _label_scores([r for r in records if r.answer_type == "label"])
    retrieved = [r for r in records if r.retrieved_ids and r.gold_ids]
    timed = [r.latency for r in records if r.latency > 0]
    mean_latency = _mean(timed)
    errors: dict[str, int] = {}
    for r in records:
        bucket = classify(r)
        if bucket:
            errors[bucket] = errors.get(bucket, 0) + 1
    return StrategySummary(
        strategy=strategy,
        n=len(records),
        accuracy=acc,
        ci_low=low,
        ci_high=high,
        macro_f1=f1_macro,
        generated_accuracy=generated,
        em=_mean([r.em for r in records if r.em is not None]),
        f1=_mean([r.f1 for r in records if r.f1 is not None]),
        recall_at_k=_mean([recall_at_k(r.retrieved_ids, r.gold_ids, k) for r in retrieved]),
        mrr=_mean([reciprocal_rank(r.retrieved_ids, r.gold_ids) for r in retrieved]),
        latency_p50=percentile(timed, 50) if timed else None,
        latency_p95=percentile(timed, 95) if timed else None,
        prompt_tokens=fmean(r.prompt_tokens for r in records),
        output_tokens=fmean(r.output_tokens for r in records),
        cost_per_1000=None if mean_latency is None else mean_latency * 1000 / 3600 * usd_per_hour,
        errors={b: errors[b] for b in BUCKETS if b in errors},
        by_corpus={c: fmean(float(r.correct) for r in rs) for c, rs in _by(records, "corpus").items()},
    )


def summarize(records: Sequence[Record], *, usd_per_hour: float = 0.10, k: int = 5) -> list[StrategySummary]:
    """One summary per strategy, in the order the strategies first appear in `records`."""
    return [_summarize_one(s, rs, usd_per_hour, k) for s, rs in _by(records, "strategy").items()]


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


def _corpora(records: Sequence[Record], summaries: Sequence[StrategySummary]) -> list[str]:
    sizes = {c: len({r.item_id for r in rs}) for c, rs in _by(records, "corpus").items()}
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
    for strategy, rs in _by(records, "strategy").items():
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
    model = (run.config.get("generation") or {}).get("model")
    lines = [f"# Evaluation report: {run.domain} — run `{run.run_id}`", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        f"- model: `{model or 'unknown'}`",
        f"- strategies: {', '.join(_text(s.strategy) for s in summaries) or 'none'}",
        f"- questions: {len({r.item_id for r in records})} from {', '.join(map(_text, corpora)) or 'no corpus'}"
        f" (their test splits; limit {run.limit if run.limit is not None else 'none'}, seed {run.seed})",
        f"- machine: {_text(str(run.fingerprint.get('machine', 'unknown')))}",
        f"- created: {info['created']}, status: {run.status}",
        f"- cost basis: ${usd_per_hour:.2f} per machine-hour",
    ]
    if run.note:
        lines.append(f"- note: {_text(run.note)}")
    lines += ["", "## Results", "", *_results(summaries, 5), "",
              "Accuracy is the primary verdict (option scoring for label questions, the parsed answer otherwise); "
              "generated acc. is the share of label questions whose generated text parses to the gold label; "
              "R@5 and MRR are over questions with gold documents; $/1k is the machine cost of 1000 questions "
              "at the mean latency.",
              "", "## Accuracy by corpus", "", *_corpora(records, summaries),
              "", "## Elo", "", *_elo(records, votes)]
    if sweep is not None:
        lines += ["", "## Accuracy vs training data", "", *_sweep(sweep)]
    lines += ["", "## Error analysis", "", *_errors(records, summaries), "", "## Charts", ""]
    lines += [f"![{title}]({path.name})\n" for title, path in charts.items()]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


__all__ = ["StrategySummary", "elo_games", "elo_table", "summarize", "write_report"]
