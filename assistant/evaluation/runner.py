"""`assistant eval`: answer a domain's held-out questions with each strategy, score them, store every record.

    from assistant.evaluation.runner import evaluate
    run = evaluate("medical", ["base", "fewshot:3", "rag"], config, limit=200, seed=0)
    run = evaluate("medical", ["base", "rag"], config, run_id=run.run_id)     # resume: skips what is done

The questions are the test split of the domain's prepared corpora (a seeded sample of `limit` of them,
the same sample for every strategy). Each (question, strategy) becomes a `Record` in the run store as
soon as it is scored, so an interrupted run resumes where it stopped and never duplicates a record. A
strategy that fails on one question (a prompt too long, say) is recorded as an error, not a crash.

A rung is a strategy spec, optionally on a named model ("rag@big") and in an answer mode ("rag/auto",
"rag@big/extractive"; without one, generation.answer_mode, which the run's fingerprint records).
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from assistant.config import Config
from assistant.errors import AssistantError, InputError
from assistant.evaluation.buckets import classify
from assistant.evaluation.store import EvalSettings, Fingerprint, IndexStamp, Record, Run, RunStore
from assistant.evaluation.tasks import label_options, option_replies, score_item
from assistant.generation_config import check_answer_mode
from assistant.strategies import AUTO, AskOptions, check_spec, get_strategy
from assistant.types import Answer, QAItem

if TYPE_CHECKING:
    from assistant.api import Assistant

Log = Callable[[str], None]


def log_stderr(msg: str) -> None:
    """The default progress log of a run: one line on stderr."""
    print(msg, file=sys.stderr, flush=True)


def eval_items(domain: str, config: Config, corpora: Sequence[str] | None = None) -> list[QAItem]:
    """The test split of the domain's prepared corpora (or of `corpora`), sorted by id."""
    from assistant.corpus import corpora_for, is_prepared, load_qa

    names = list(corpora) if corpora else corpora_for(domain, config)
    known = corpora_for(domain, config)
    for name in names:
        if name not in known:
            raise InputError(f"corpus '{name}' is not part of the '{domain}' domain (its corpora: {', '.join(known)})")
    items: list[QAItem] = []
    for name in names:
        if is_prepared(name, config):
            items += [i for i in load_qa(name, config) if i.split == "test"]
    if not items:
        raise InputError(
            f"'{domain}' has no test questions (corpora: {', '.join(names)}): prepare them "
            f"(`assistant corpus prepare {domain}`) or evaluate a corpus with a test split"
        )
    return sorted(items, key=lambda i: i.id)


def sample(items: Sequence[QAItem], limit: int | None, seed: int) -> list[QAItem]:
    """A seeded sample of `limit` items (all when None), in a stable order."""
    chosen = list(items)
    if limit is not None and limit < len(chosen):
        chosen = random.Random(seed).sample(chosen, limit)
    return sorted(chosen, key=lambda i: i.id)


def split_mode(spec: str) -> tuple[str, str | None]:
    """A rung spec and its answer mode: "rag@big/auto" -> ("rag@big", "auto"); "rag" -> ("rag", None)."""
    rung, slash, mode = spec.rpartition("/")
    return (rung.strip(), mode.strip()) if slash else (spec.strip(), None)


def split_rung(spec: str) -> tuple[str, str | None]:
    """A rung spec's strategy and named model: "rag@big" -> ("rag", "big"); "rag" -> ("rag", None)."""
    strategy, at, model = split_mode(spec)[0].partition("@")
    return strategy.strip(), model.strip() if at else None


def rung_mode(spec: str, config: Config) -> str | None:
    """The answer mode a rung answers in: its own ("rag/auto"), else generation.answer_mode; None for rungs
    that retrieve nothing (the modes choose between a reply and its sources' evidence)."""
    return (split_mode(spec)[1] or config.generation.answer_mode) if uses_retrieval(spec) else None


def parse_strategies(specs: Sequence[str] | str, config: Config) -> list[str]:
    """Rung specs (a strategy, optionally on a named model: "rag@big") checked up front: an unknown
    strategy, model or adapter fails before any question."""
    from assistant.models.adapters import get_adapter

    if isinstance(specs, str):
        specs = specs.split(",")
    out = []
    for spec in (s.strip() for s in specs):
        if not spec:
            continue
        mode = split_mode(spec)[1]
        if mode is not None:
            check_answer_mode(mode, f"'{spec}': the answer mode after '/'")
        name, model = split_rung(spec)
        if model is not None:
            if not model:
                raise InputError(f"'{spec}': name a model after '@' (configured: {', '.join(config.models) or 'none'})")
            config.for_model(model)
        spec = (name if model is None else f"{name}@{model}") + (f"/{mode}" if mode else "")
        check_spec(name)
        if mode is not None and not uses_retrieval(name):
            raise InputError(f"'{spec}': answer modes apply to rungs that retrieve (rag, rag+adapter, auto)")
        strategy = None if name == AUTO else get_strategy(name)
        if strategy is not None and strategy.uses_adapter:
            if not strategy.adapter:
                raise InputError(f"'{spec}' needs the adapter's name in the spec: '{spec}:NAME'")
            get_adapter(config, strategy.adapter)
        out.append(spec)
    if not out:
        raise InputError("no strategies given: e.g. --strategies base,rag")
    return list(dict.fromkeys(out))


def strategy_name(spec: str) -> str:
    """The strategy's name without its argument or model ("fewshot:3@big" -> "fewshot"; "auto": the router)."""
    spec = split_rung(spec)[0]
    return AUTO if spec == AUTO else get_strategy(spec).name


def uses_retrieval(spec: str) -> bool:
    """Whether answers with `spec` search the index ("auto" probes it to decide)."""
    spec = split_rung(spec)[0]
    return spec == AUTO or get_strategy(spec).uses_retrieval


def _device() -> str:
    import torch

    return f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU"


def fingerprint(domain: str, config: Config, strategies: Sequence[str],
                engine: dict[str, Any] | None = None) -> Fingerprint:
    """What the records depend on: the base model, the engine (Generator.identity) and, for RAG strategies,
    the index they searched."""
    import os
    import platform

    from assistant.index.manifest import index_fingerprint

    index = None
    if any(uses_retrieval(s) for s in strategies):
        index = IndexStamp.from_dict(index_fingerprint(config.domain(domain).name, config))
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, {_device()}"
    return Fingerprint(config.generation.model, machine, index, engine)


def answer_item(assistant: Assistant, spec: str, item: QAItem, run_id: str, config: Config) -> Record:
    """One question answered by one strategy and scored: never raises for a user-level failure."""
    return answer_items(assistant, spec, [item], run_id, config)[0]


def answer_items(assistant: Assistant, spec: str, items: Sequence[QAItem], run_id: str, config: Config) -> list[Record]:
    """Questions answered by one strategy and scored, their replies written together where the model can
    (Assistant.complete_many): each question's latency is its own preparation (retrieval, prompt) plus its
    share of the time the model took for them all. Never raises for a user-level failure."""
    records, questions, replies, prepared_in = [], [], [], []
    for item in items:
        start = time.perf_counter()
        record, ask, by_options = _new_record(spec, item, run_id, config)
        records.append(record)
        try:
            questions.append(assistant.prepare(item.question, strategy=split_rung(spec)[0], options=ask))
        except AssistantError as exc:
            _failed(record, exc, time.perf_counter() - start)
            continue
        replies.append(option_replies(ask.choices) if by_options and questions[-1].has_prompt else ())
        prepared_in.append((record, item, ask.choices, time.perf_counter() - start))
    start = time.perf_counter()
    results = assistant.complete_many(questions, replies) if questions else []
    share = (time.perf_counter() - start) / max(len(questions), 1)
    for (record, item, options, prepare_s), (scores, answer) in zip(prepared_in, results, strict=True):
        if isinstance(answer, AssistantError):
            _failed(record, answer, prepare_s + share)
            continue
        if scores is not None:
            record.scored = options[max(range(len(options)), key=scores.__getitem__)]
            record.extra["option_scores"] = dict(zip(options, [round(s, 4) for s in scores], strict=True))
        record.latency = prepare_s + share
        _scored(record, item, answer, config)
        if len(questions) > 1:
            record.extra["answered_together"] = len(questions)
    return records


def _new_record(spec: str, item: QAItem, run_id: str, config: Config) -> tuple[Record, AskOptions, bool]:
    """The record of `item` answered by `spec` before anything ran, the question's options, and whether
    its answer options are scored."""
    is_label = item.answer_type == "label"
    # closed labels are judged by option scoring, except CoT: its reasoning must run to a parsed answer
    by_options = is_label and strategy_name(spec) != "cot"
    options = label_options(item) if is_label else ()
    mode = rung_mode(spec, config)
    ask = AskOptions(choices=options, max_new_tokens=config.evaluation.label_max_new_tokens if by_options else None,
                     answer_mode=mode)
    record = Record(run_id, item.id, spec, item.corpus, item.answer_type, item.question, item.answer,
                    gold_ids=list(item.doc_ids))
    record.extra["uses_retrieval"] = uses_retrieval(spec)
    if mode is not None:
        record.extra["answer_mode"] = mode
    if (model := split_rung(spec)[1]) is not None:
        record.extra["model"] = model
    return record, ask, by_options


def _failed(record: Record, exc: AssistantError, latency: float) -> None:
    record.error = str(exc)
    record.latency = latency
    record.bucket = classify(record)


def _scored(record: Record, item: QAItem, answer: Answer, config: Config) -> None:
    """`record` filled in from `answer` and judged."""
    record.answer = answer.text
    record.retrieved_ids = [s.doc_id for s in answer.sources]
    record.prompt_tokens = answer.prompt_tokens
    record.output_tokens = answer.output_tokens
    record.finish_reason = answer.finish_reason or "stop"  # nothing generated (no sources): "stop", as recorded before
    if answer.details:
        record.extra.update(answer.details)
    if answer.sources:  # the numbers and years no source shows (assistant.strategies.checks), and the share shown
        record.extra["unsupported"] = [c.claim for c in answer.checks if not c.supported]
        record.extra["grounded"] = answer.grounded
        record.extra["evidence_ids"] = list(dict.fromkeys(e.doc_id for e in answer.evidence if e.cited))
    verdict = score_item(item, answer.text, record.scored, config.evaluation)
    record.parsed, record.correct, record.em, record.f1 = verdict.parsed, verdict.correct, verdict.em, verdict.f1
    if verdict.derivation:
        record.extra["derivation"] = verdict.derivation
    if (model := record.extra.get("model")) is not None and (named := config.models[model]).priced:
        record.extra["usd"] = named.cost(record.prompt_tokens, record.output_tokens)
    record.bucket = classify(record)


def synthesised(corpora: Sequence[str], config: Config) -> dict[str, dict[str, Any]]:
    """How the questions of each of `corpora` that `assistant data synth` wrote were made (method, model, seed)."""
    from assistant.corpus import corpus_manifest

    made = {c: corpus_manifest(c, config).get("synthesised") or {} for c in corpora}
    return {c: {k: m.get(k) for k in ("method", "model", "seed", "at")} for c, m in made.items() if m}


def evaluate(
    domain: str,
    strategies: Sequence[str] | str,
    config: Config,
    *,
    limit: int | None = None,
    seed: int = 0,
    corpora: Sequence[str] | None = None,
    run_id: str | None = None,
    progress: bool = True,
    log: Log = log_stderr,
    store: RunStore | None = None,
) -> Run:
    """Evaluate `strategies` on the domain's test questions; with `run_id`, resume (or extend) that run."""
    from tqdm.auto import tqdm

    from assistant.api import Assistant

    config = config.for_domain(config.domain(domain).name)
    specs = parse_strategies(strategies, config)
    store = store or RunStore.open(config)
    if run_id is not None:
        run = store.get_run(run_id)
        if run.domain != domain:
            raise InputError(f"run '{run_id}' evaluated the '{run.domain}' domain, not '{domain}'")
        limit, seed = run.limit, run.seed
        corpora = list(run.settings.corpora) or corpora
        specs = list(dict.fromkeys([*run.strategies, *specs]))
        store.set_strategies(run.run_id, specs)
    items = sample(eval_items(domain, config, corpora), limit, seed)
    # one Assistant per model the rungs name (None: the domain's own model); each record keeps its model
    # (the run's fingerprint is the domain's own model's, even when every rung names another)
    assistants = {m: Assistant(domain, config, model=m) for m in dict.fromkeys([None, *(split_rung(s)[1] for s in specs)])}
    # the answer mode that rungs without their own answer in is part of what made the records
    engines = {m: a.generator.identity() | {"answer_mode": config.generation.answer_mode} for m, a in assistants.items()}
    engine = engines[None]
    if run_id is None:
        eval_section = EvalSettings(tuple(corpora or ()), len(items)).section()
        settings = config.to_dict() | {EvalSettings.KEY: eval_section}
        made_with = fingerprint(domain, config, specs, engine)
        run = store.create_run(domain, specs, settings, made_with, limit=limit, seed=seed)
    else:
        before = run.meta.get("engines", {})
        for m, identity in engines.items():
            made = run.made_with if m is None else Fingerprint(engine=before.get(m, identity))
            if (differs := made.engine_differs(identity)) is not None:
                raise InputError(f"run '{run.run_id}' was made with another engine{f' for model {m}' if m else ''} "
                                 f"({differs}): its records and new ones would not compare; start a new run, or set "
                                 "generation back as it was")
    named = {m: e for m, e in engines.items() if m is not None}
    if named:
        store.update_meta(run.run_id, engines=run.meta.get("engines", {}) | named)
    if synth := synthesised(list(dict.fromkeys(i.corpus for i in items)), config):  # the report says so
        store.update_meta(run.run_id, synthesised=synth)
    done = store.done(run.run_id)
    log(f"run {run.run_id}: {len(items)} questions x {len(specs)} strategies ({', '.join(specs)})")
    for spec in specs:
        todo = [i for i in items if (spec, i.id) not in done]
        if not todo:
            continue
        # loading the model, index, adapter or few-shot pool is not a question's latency
        strategy, model = split_rung(spec)
        assistant = assistants[model]
        with contextlib.suppress(AssistantError):  # if it fails, the questions record the error
            assistant.warm_up(strategy)
        right = sum(r.correct for r in store.records(run.run_id, spec))
        seen = len(items) - len(todo)
        bar = tqdm(desc=spec, unit="q", disable=not progress, dynamic_ncols=True, initial=seen, total=len(items))
        size = config.evaluation.batch
        for group in (todo[i : i + size] for i in range(0, len(todo), size)):
            for record in answer_items(assistant, spec, group, run.run_id, config):
                store.add(record)
                right += record.correct
                seen += 1
            bar.update(len(group))
            bar.set_postfix(acc=f"{right / seen:.3f}")
        bar.close()
    store.finish_run(run.run_id)
    return store.get_run(run.run_id)


def rescore(run_id: str, config: Config, *, store: RunStore | None = None) -> int:
    """Score a run's stored answers again with the current scoring code (no model runs); returns how many
    verdicts changed. Option scores stay as recorded."""
    store = store or RunStore.open(config)
    run = store.get_run(run_id)
    corpora = list(run.settings.corpora) or None
    items = {i.id: i for i in eval_items(run.domain, config, corpora)}
    changed = 0
    for record in store.records(run_id):
        item = items.get(record.item_id)
        if item is None or record.error:
            continue
        verdict = score_item(item, record.answer, record.scored, config.evaluation)
        changed += verdict.correct != record.correct
        record.parsed, record.correct, record.em, record.f1 = verdict.parsed, verdict.correct, verdict.em, verdict.f1
        record.extra.pop("derivation", None)
        if verdict.derivation:
            record.extra["derivation"] = verdict.derivation
        record.bucket = classify(record)
        store.add(record)
    return changed


__all__ = ["answer_item", "answer_items", "eval_items", "evaluate", "fingerprint", "parse_strategies", "rescore", "rung_mode", "sample",
           "split_mode", "split_rung"]
