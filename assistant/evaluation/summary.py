"""Per-strategy figures of an evaluation run, rebuilt from its stored records (no model needed).

    from assistant.evaluation.summary import summarize
    rows = summarize(store.records(run.run_id), usd_per_hour=0.10, k=5)   # one StrategySummary per strategy

The report (evaluation.report) and its charts (evaluation.charts) both read these rows; they live here so
that neither of those two modules imports the other's internals. Definitions:
- accuracy is each record's primary verdict (`correct`: option scoring for label questions, the parsed
  answer otherwise) with a 95% percentile-bootstrap interval over questions (1000 resamples, seed 0);
- macro-F1 and the generated-parsed accuracy use label questions only: the first the verdict label
  (`scored`, else `parsed`), the second `parsed`, the label parsed out of the generated text;
- R@k and MRR use records that retrieved something and have gold document ids;
- latency percentiles and cost use the records that recorded a latency; cost per 1000 questions is
  mean latency x 1000 / 3600 x the machine's price per hour, or, for a rung on a named model with a price
  per token (a hosted API), 1000 x the mean price of its questions' tokens (`extra["usd"]`).
Tests: `.venv/bin/pytest tests/evaluation/test_report.py -q`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import fmean

from assistant.evaluation.buckets import BUCKETS, classify
from assistant.evaluation.metrics import bootstrap_ci, macro_f1, percentile, recall_at_k, reciprocal_rank
from assistant.evaluation.store import Record


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
    # of the answers that quote evidence from a source they cite: the share quoting a gold document
    evidence_gold: float | None = None
    evidence_n: int = 0
    # of the answers with sources: the share stating a number or year no source shows, and how many
    # generated replies `auto` replaced with the sources' evidence
    unsupported: float | None = None
    checked_n: int = 0
    replaced: int = 0


def group_by(records: Sequence[Record], key: str) -> dict[str, list[Record]]:
    """Records grouped by the value of one of their fields, groups in order of first appearance."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(getattr(r, key), []).append(r)
    return groups


def _label(text: str | None) -> str | None:
    return None if text is None else text.strip().lower()


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
    quoted = [r for r in records if r.extra.get("evidence_ids") and r.gold_ids]
    checked = [r for r in records if "unsupported" in r.extra]
    timed = [r.latency for r in records if r.latency > 0]
    mean_latency = _mean(timed)
    priced = [float(r.extra["usd"]) for r in records if "usd" in r.extra]
    cost = fmean(priced) * 1000 if priced else None if mean_latency is None else mean_latency * 1000 / 3600 * usd_per_hour
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
        cost_per_1000=cost,
        errors={b: errors[b] for b in BUCKETS if b in errors},
        by_corpus={c: fmean(float(r.correct) for r in rs) for c, rs in group_by(records, "corpus").items()},
        evidence_gold=_mean([float(bool(set(r.extra["evidence_ids"]) & set(r.gold_ids))) for r in quoted]),
        evidence_n=len(quoted),
        unsupported=_mean([float(bool(r.extra["unsupported"])) for r in checked]),
        checked_n=len(checked),
        replaced=sum("generated_answer" in r.extra for r in records),
    )


def summarize(records: Sequence[Record], *, usd_per_hour: float = 0.10, k: int = 5) -> list[StrategySummary]:
    """One summary per strategy, in the order the strategies first appear in `records`."""
    return [_summarize_one(s, rs, usd_per_hour, k) for s, rs in group_by(records, "strategy").items()]


__all__ = ["StrategySummary", "group_by", "summarize"]
