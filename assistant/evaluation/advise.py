"""`assistant advise`: climb the ladder base -> few-shot -> CoT -> RAG -> adapter -> both, and recommend a rung.

    from assistant.evaluation.advise import advise
    advice = advise("medical", config, limit=100)
    print(advice.text())

Each rung is evaluated on the same seeded questions, in one run (so `--run RUN_ID` resumes it). A rung
"gains" when its accuracy beats the best so far by `evaluation.min_gain`; after `evaluation.patience`
rungs in a row without a gain the remaining prompting rungs (few-shot, CoT) are skipped. The domain's base
rung (after the named models' rungs, it may follow misses) and the rungs the verdict compares (RAG, adapter,
RAG + adapter) are always climbed: "RAG or finetune?" needs both measured. The recommendation is
the cheapest evaluated rung whose accuracy is within `min_gain` of the best one: accuracy first, then
cost, as a practitioner would choose. Adapter rungs use the domain's trained adapters (`assistant
adapters list`): an SFT adapter for "adapter", one trained `--with-context` (else the SFT one) for "both".

With `models` (named models of config `models:`, e.g. a hosted API or a bigger open model), the climb starts
as the seeds order it, with the existing models: base, few-shot and RAG on each (`base@big`, ...), always
climbed; then the ladder above on the domain's own model. The verdict compares every rung across models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant.config import Config
from assistant.evaluation.runner import Log, evaluate, log_stderr
from assistant.evaluation.store import RunStore
from assistant.evaluation.summary import StrategySummary, summarize

VERDICT_RUNGS = ("rag", "adapter", "rag+adapter")
NEVER_SKIPPED = ("base", *VERDICT_RUNGS)  # by patience: the baseline, and what the verdict compares


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@dataclass(frozen=True)
class Rung:
    strategy: str
    status: str  # evaluated, skipped (gains stopped), unavailable (no adapter)
    summary: StrategySummary | None = None
    gain: float | None = None  # accuracy minus the best accuracy of the rungs before it
    note: str = ""


@dataclass
class Advice:
    domain: str
    run_id: str
    rungs: list[Rung] = field(default_factory=list)
    recommended: str = ""
    reason: str = ""

    def text(self) -> str:
        lines = [f"Ladder for '{self.domain}' (run {self.run_id}):"]
        for r in self.rungs:
            if r.summary is None:
                lines.append(f"  {r.strategy:<28} {r.status}{': ' + r.note if r.note else ''}")
                continue
            s = r.summary
            gain = "" if r.gain is None else f"  gain {r.gain:+.3f}"
            lines.append(
                f"  {r.strategy:<28} accuracy {s.accuracy:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}]{gain}  "
                f"p50 {_num(s.latency_p50, 2)}s  ${_num(s.cost_per_1000, 4)}/1k"
            )
        lines.append(f"Recommendation: {self.recommended}. {self.reason}")
        return "\n".join(lines)


def domain_adapters(domain: str, config: Config) -> tuple[str | None, str | None]:
    """(newest SFT adapter without context, newest adapter trained with context) of the domain."""
    from assistant.models.adapters import domain_adapters as adapters_of

    found = adapters_of(config, domain)
    plain = next((a.name for a in found if not a.with_context), None)
    context = next((a.name for a in found if a.with_context), None)
    return plain, context


EXISTING_MODEL_RUNGS = ("base", "fewshot:3", "rag")  # "try existing models first": no training needed


def ladder(domain: str, config: Config, evaluated: Sequence[str] = (), models: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The rungs in the seeds' order as (rung spec, note when unavailable): the named `models`' rungs first.

    `evaluated`: the specs a resumed run already holds; its adapter rungs keep the adapters it evaluated
    (a newer adapter, e.g. from a data-size sweep, must not replace them mid-run).
    """
    plain, context = domain_adapters(domain, config)
    both = context or plain
    plain = next((s.partition(":")[2] for s in evaluated if s.startswith("adapter:")), plain)
    both = next((s.partition(":")[2] for s in evaluated if s.startswith("rag+adapter:")), both)
    return [*((f"{s}@{m}", "") for m in models for s in EXISTING_MODEL_RUNGS),
        ("base", ""),
        ("fewshot:3", ""),
        ("cot", ""),
        ("rag", ""),
        (f"adapter:{plain}" if plain else "adapter", "" if plain else "no SFT adapter for this domain (assistant train sft)"),
        (f"rag+adapter:{both}" if both else "rag+adapter",
         "" if both else "no adapter for this domain (assistant train sft --with-context)"),
    ]


def advise(
    domain: str,
    config: Config,
    *,
    limit: int | None = None,
    seed: int = 0,
    corpora: Sequence[str] | None = None,
    run_id: str | None = None,
    progress: bool = True,
    log: Log = log_stderr,
    store: RunStore | None = None,
    models: Sequence[str] = (),
) -> Advice:
    cfg = config.evaluation
    for name in models:
        config.for_model(name)  # an unknown name fails before any question
    store = store or RunStore.open(config)
    advice = Advice(domain, run_id or "")
    best: StrategySummary | None = None
    misses = 0
    evaluated = store.get_run(run_id).strategies if run_id else []
    for spec, note in ladder(domain, config, evaluated, models):
        if note:
            advice.rungs.append(Rung(spec, "unavailable", note=note))
            continue
        if misses >= cfg.patience and spec.partition(":")[0] not in NEVER_SKIPPED and "@" not in spec:
            advice.rungs.append(Rung(spec, "skipped", note=f"no gain in the last {cfg.patience} rungs"))
            continue
        log(f"rung {spec} ...")
        run = evaluate(domain, [spec], config, limit=limit, seed=seed, corpora=corpora,
                       run_id=advice.run_id or None, progress=progress, log=log, store=store)
        advice.run_id = run.run_id
        summary = next(s for s in summarize(store.records(run.run_id, spec), usd_per_hour=cfg.usd_per_hour,
                                            k=cfg.recall_k))
        gain = None if best is None else summary.accuracy - best.accuracy
        advice.rungs.append(Rung(spec, "evaluated", summary, gain))
        if best is None or summary.accuracy > best.accuracy + cfg.min_gain:
            best, misses = summary, 0
        else:
            misses += 1
    summaries = [r.summary for r in advice.rungs if r.summary is not None]
    if not summaries:
        advice.recommended, advice.reason = "base", "nothing could be evaluated"
        return advice
    top = max(summaries, key=lambda s: s.accuracy)
    near = [s for s in summaries if s.accuracy >= top.accuracy - cfg.min_gain]
    pick = min(near, key=lambda s: (s.cost_per_1000 or 0.0, -s.accuracy))
    advice.recommended = pick.strategy
    errors = ", ".join(f"{k} {v}" for k, v in sorted(pick.errors.items(), key=lambda kv: -kv[1]) if v) or "none"
    why = (
        f"accuracy {pick.accuracy:.3f} [{pick.ci_low:.3f}, {pick.ci_high:.3f}] on {pick.n} questions"
        + (f", within {cfg.min_gain:.2f} of the best ({top.strategy} {top.accuracy:.3f}) at lower cost"
           if pick is not top else ", the best rung")
        + f"; ${_num(pick.cost_per_1000, 4)} per 1,000 questions, p50 {_num(pick.latency_p50, 2)}s. "
        f"Remaining errors: {errors}."
    )
    advice.reason = why
    return advice


__all__ = ["EXISTING_MODEL_RUNGS", "VERDICT_RUNGS", "Advice", "Rung", "advise", "domain_adapters", "ladder"]
