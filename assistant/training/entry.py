"""The two training entry points: `train_cpt` (continued pretraining on a domain's raw text) and `train_sft`
(an instruction adapter from its QA train split, optionally RAFT-style with retrieved passages).

    from assistant.training import train_cpt, train_sft
    train_cpt("medical", "medical-cpt", config)
    train_sft("medical", "medical-sft", config, max_examples=2000)
    train_sft("medical", "medical-raft", config, passages_for=fn)   # fn(item) -> (gold, distractors)

Both read prepared corpora (prepare them first: `assistant corpus prepare DOMAIN`), build examples with
`training.data`, and hand them to the one trainer. They never retrieve: RAFT passages come from the
caller (`jobs.train.train` passes a retriever-backed function).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assistant.atomic import atomic_write
from assistant.config import Config, TrainingConfig
from assistant.corpus import corpora_for, load_documents, load_qa
from assistant.corpus.check import DataCheckReport, check_data, tokenizer_tokens
from assistant.corpus.leakage import Leak
from assistant.errors import InputError
from assistant.models.adapters import AdapterInfo, adapter_path, base_fingerprint, get_adapter
from assistant.prompts import target_answer
from assistant.training.data import (
    MIN_ANSWER_TOKENS,
    Example,
    PassagesFor,
    SftStats,
    drop_leaks,
    mix_replay,
    pack_blocks,
    passage_budget,
    render_sft,
    select,
    sft_messages,
    shuffle_blocks,
    split_validation,
    token_truncate,
)
from assistant.training.trainer import TrainJob, run_dir, run_training
from assistant.types import QAItem

Log = Callable[[str], None]
MIN_FREE_DISK_MB = 500  # checkpoints of a LoRA adapter are small; the merged model is written elsewhere
DATA_CHECK_FILE = "data_check.json"  # the data check's report, in the adapter folder beside training.json


def is_main_process() -> bool:
    """False in the second and later processes of `accelerate launch` / torchrun (they log nothing)."""
    return os.environ.get("RANK", "0") == "0"


def _log(msg: str) -> None:
    if is_main_process():
        print(msg, file=sys.stderr, flush=True)


def _training_config(config: Config, overrides: dict[str, Any]) -> TrainingConfig:
    known = {f.name for f in dataclasses.fields(TrainingConfig)}
    unknown_keys = sorted(set(overrides) - known)
    if unknown_keys:
        raise InputError(f"unknown training setting(s): {', '.join(unknown_keys)} (known: {', '.join(sorted(known))})")
    values = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(config.training, **values)


def _prepare_job(
    name: str, config: Config, base: str | None, overwrite: bool, resume: bool
) -> tuple[Path, str, Path, Any]:
    """Check the name, disk and base model; return (out_dir, base spec, base folder, tokenizer)."""
    from transformers import AutoTokenizer

    from assistant import hub
    from assistant.models import resolve_model

    out = adapter_path(config, name)
    # --resume continues an interrupted run (its hidden run folder); on a finished adapter it would
    # silently train again from scratch and replace it.
    if out.exists() and not overwrite and not (resume and run_dir(out).is_dir()):
        finished = " and has no interrupted run to resume" if resume else ""
        raise InputError(
            f"adapter '{name}' already exists at {out}{finished}: pass --overwrite to replace it, or choose another --name"
        )
    config.adapters_dir.mkdir(parents=True, exist_ok=True)
    free_mb = shutil.disk_usage(config.adapters_dir).free / 2**20
    if free_mb < MIN_FREE_DISK_MB:
        raise InputError(
            f"only {free_mb:.0f} MB free under {config.adapters_dir}; training needs at least {MIN_FREE_DISK_MB} MB"
        )
    spec = base or config.generation.model
    folder = resolve_model(spec, config)
    with hub.quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return out, spec, folder, tokenizer


def _check_seq_len(cfg: TrainingConfig, folder: Path, spec: str) -> None:
    import json

    data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    text = data.get("text_config", data)
    limit = int(text.get("max_position_embeddings") or 0)
    if limit and cfg.seq_len > limit:
        raise InputError(f"--seq-len {cfg.seq_len} is longer than the model '{spec}' reads ({limit} tokens)")


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id
    return int(pad if pad is not None else tokenizer.eos_token_id)


def data_check(domain: str, config: Config, cfg: TrainingConfig, tokenizer: Any, spec: str, log: Log) -> DataCheckReport | None:
    """The data check (`assistant data check`) on what this run reads, with the base's tokenizer; None
    in the second and later processes of a distributed run."""
    if not is_main_process():
        return None
    train, test, _ = qa_train_items(domain, config)
    corpora = corpora_for(domain, config)
    docs = [d for c in corpora for d in load_documents(c, config)]
    report = check_data(train, test, docs, instruction=domain_instruction(domain, config), seq_len=cfg.seq_len,
                        tokens=tokenizer_tokens(tokenizer, spec), leakage_threshold=cfg.leakage_threshold,
                        min_answer_tokens=MIN_ANSWER_TOKENS, domain=domain, corpora=corpora)
    crossed = ", ".join(c.name for c in report.failed)
    log(f"data check: {'thresholds crossed: ' + crossed if crossed else 'all checks pass'} "
        f"(saved as {DATA_CHECK_FILE} with the adapter; `assistant data check --domain {domain}` shows it)")
    return report


def _run(job: TrainJob, config: Config, check: DataCheckReport | None = None) -> AdapterInfo:
    try:
        run_training(job)
        if check is not None and is_main_process():  # beside training.json, once the adapter folder is in place
            atomic_write(job.out_dir / DATA_CHECK_FILE, json.dumps(check.to_dict(), indent=2, ensure_ascii=False))
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            raise InputError(f"out of disk space while training '{job.name}' under {job.out_dir.parent}") from None
        raise
    return get_adapter(config, job.name)


def train_cpt(
    domain: str,
    name: str,
    config: Config,
    *,
    base: str | None = None,
    replay: str | None = None,
    max_examples: int | None = None,
    fraction: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    log: Log = _log,
    **overrides: Any,
) -> AdapterInfo:
    """Continued pretraining of a LoRA adapter on the documents of `domain` (a domain or one corpus).

    `replay` names a prepared corpus whose text is mixed in at `replay_ratio` (against forgetting);
    `max_examples` / `fraction` take a seeded subset of the documents.
    """
    cfg = _training_config(config, overrides)
    # the base: --base, else the domain's own generation model, else generation.model
    out, spec, folder, tokenizer = _prepare_job(name, config.for_domain(domain), base, overwrite, resume)
    _check_seq_len(cfg, folder, spec)
    check = data_check(domain, config, cfg, tokenizer, spec, log)
    corpora = corpora_for(domain, config)
    docs = [d for c in corpora for d in load_documents(c, config)]
    docs = select(docs, max_examples=max_examples, fraction=fraction, seed=cfg.seed)
    texts = [f"{d.title}\n\n{d.text}" if d.title and d.title not in d.text[:200] else d.text for d in docs]
    replay_texts: list[str] = []
    if replay:
        pool = [f"{d.title}\n\n{d.text}" for c in corpora_for(replay, config) for d in load_documents(c, config)]
        replay_texts = mix_replay(texts, pool, cfg.replay_ratio or 0.1, cfg.seed)
    train_texts, val_texts = split_validation(texts, cfg.val_fraction, cfg.max_val_examples, cfg.seed)
    log(f"packing {len(train_texts)} documents into blocks of {cfg.seq_len} tokens ...")
    blocks, stats = pack_blocks(train_texts, tokenizer, cfg.seq_len, replay=replay_texts)
    val_blocks, _ = pack_blocks(val_texts, tokenizer, cfg.seq_len)
    if not blocks:
        raise InputError(f"the documents of '{domain}' give no full block of {cfg.seq_len} tokens: nothing to train on")
    log(
        f"{stats.documents} documents + {stats.replay_documents} replay -> {stats.blocks} blocks "
        f"({stats.tokens:,} tokens, {stats.dropped_tail_tokens} in the dropped tail)"
    )
    job = TrainJob(
        name=name,
        kind="cpt",
        base_path=folder,
        base_spec=spec,
        out_dir=out,
        config=cfg,
        train=shuffle_blocks(blocks, cfg.seed),
        val=val_blocks[: cfg.max_val_examples],
        data={
            "domain": domain,
            "corpora": corpora,
            "documents": stats.documents,
            "replay": replay,
            "replay_documents": stats.replay_documents,
            "tokens": stats.tokens,
            "blocks": stats.blocks,
            "dropped_tail_tokens": stats.dropped_tail_tokens,
            "val_documents": len(val_texts),
            "max_examples": max_examples,
            "fraction": fraction,
        },
        base_fingerprint=base_fingerprint(folder),
        resume=resume,
        pad_token_id=_pad_id(tokenizer),
        log=log,
    )
    return _run(job, config, check)


def qa_train_items(domain: str, config: Config) -> tuple[list[QAItem], list[QAItem], list[str]]:
    """(train items, test items, corpora with QA) of a domain's corpora."""
    train: list[QAItem] = []
    test: list[QAItem] = []
    with_qa = []
    for corpus in corpora_for(domain, config):
        items = load_qa(corpus, config)
        if items:
            with_qa.append(corpus)
        train += [i for i in items if i.split == "train"]
        test += [i for i in items if i.split == "test"]
    return train, test, with_qa


def render_items(
    items: Sequence[QAItem],
    tokenizer: Any,
    instruction: str,
    cfg: TrainingConfig,
    passages_for: PassagesFor | None,
    passage_tokens: int,
    stats: SftStats,
) -> list[Example]:
    """Chat examples for QA items: the same prompts the `adapter` / `rag+adapter` strategies use."""
    out = []
    truncate = token_truncate(tokenizer)
    for messages, answer in sft_messages(items, instruction, cfg, passages_for, truncate, passage_tokens, stats):
        example, status = render_sft(tokenizer, messages, answer, cfg.seq_len)
        stats.count(status)
        if example is not None:
            out.append(example)
    return out


def domain_instruction(domain: str, config: Config) -> str:
    """The system instruction of `domain` (a domain, or a corpus: its recipe's domain)."""
    return config.domain(domain if domain in config.domains else _domain_of(domain, config)).instruction


def sft_pool(domain: str, config: Config, cfg: TrainingConfig, log: Log) -> tuple[list[QAItem], list[QAItem], list[Leak], list[str]]:
    """(all train items, the ones SFT may use, the leaks removed, corpora with QA): the train split of
    `domain` without test-set near duplicates and without items that have no target answer."""
    train_items, test_items, with_qa = qa_train_items(domain, config)
    if not train_items:
        raise InputError(f"'{domain}' has no QA train items (corpora: {', '.join(corpora_for(domain, config))})")
    kept, leaks = drop_leaks(train_items, test_items, cfg.leakage_threshold)
    if leaks:
        log(f"leakage check: dropped {len(leaks)} train questions that duplicate or nearly duplicate a test question")
    return train_items, [i for i in kept if target_answer(i)], leaks, with_qa


def train_sft(
    domain: str,
    name: str,
    config: Config,
    *,
    base: str | None = None,
    passages_for: PassagesFor | None = None,
    max_examples: int | None = None,
    fraction: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    log: Log = _log,
    **overrides: Any,
) -> AdapterInfo:
    """An instruction adapter on the QA train split of `domain`, test-set near duplicates removed.

    With `passages_for` (RAFT) every question comes with `passages` retrieved passages, the gold one
    among them in a `gold_share` of the examples.
    """
    cfg = _training_config(config, overrides)
    if passages_for is not None and overrides.get("seq_len") is None:
        cfg = dataclasses.replace(cfg, seq_len=cfg.context_seq_len)  # room for the passages
    # the base: --base, else the domain's own generation model, else generation.model
    out, spec, folder, tokenizer = _prepare_job(name, config.for_domain(domain), base, overwrite, resume)
    _check_seq_len(cfg, folder, spec)
    instruction = domain_instruction(domain, config)
    check = data_check(domain, config, cfg, tokenizer, spec, log)
    train_items, kept, leaks, with_qa = sft_pool(domain, config, cfg, log)
    kept = select(kept, max_examples=max_examples, fraction=fraction, seed=cfg.seed)
    if max_examples is None and fraction is None:
        # The run sees at most max_steps x batch examples: render (and retrieve for) only those.
        needed = math.ceil(cfg.max_steps * cfg.batch_size * cfg.grad_accum / (1 - cfg.val_fraction)) + cfg.max_val_examples
        if len(kept) > needed:
            log(f"using {needed} of {len(kept)} QA items ({cfg.max_steps} steps x {cfg.batch_size * cfg.grad_accum}); "
                "--max-steps, --max-examples or --fraction change it")
            kept = kept[:needed]
    if not kept:
        raise InputError(f"no training items left for '{name}' after the leakage check and selection")
    train_part, val_part = split_validation(kept, cfg.val_fraction, cfg.max_val_examples, cfg.seed)
    passage_tokens = passage_budget(cfg)
    stats = SftStats()
    log(f"rendering {len(kept)} QA items with the chat template{' and retrieved passages' if passages_for else ''} ...")
    train = render_items(train_part, tokenizer, instruction, cfg, passages_for, passage_tokens, stats)
    val = render_items(val_part, tokenizer, instruction, cfg, passages_for, passage_tokens, SftStats())
    if not train and stats.prompt_too_long:
        raise InputError(
            f"all {stats.prompt_too_long} prompts are longer than {cfg.seq_len} tokens: raise --seq-len "
            "(or training.context_seq_len for --with-context)"
        )
    log(
        f"{stats.examples} examples: {stats.ok} whole, {stats.answer_truncated} with the answer cut at "
        f"{cfg.seq_len} tokens, {stats.prompt_too_long} dropped (prompt too long), {stats.empty_answer} empty"
        + (f"; gold passage in {stats.gold_in_context} of {stats.context_examples}" if passages_for else "")
    )
    job = TrainJob(
        name=name,
        kind="sft",
        base_path=folder,
        base_spec=spec,
        out_dir=out,
        config=cfg,
        train=train,
        val=val,
        data={
            "domain": domain,
            "corpora": with_qa,
            "with_context": passages_for is not None,
            "qa_train_items": len(train_items),
            "leakage": {
                "removed": len(leaks),
                "threshold": cfg.leakage_threshold,
                "examples": [dataclasses.asdict(x) for x in leaks[:20]],
            },
            "selected_items": len(kept),
            "rendered": dataclasses.asdict(stats),
            "passage_tokens": passage_tokens if passages_for else None,
            "max_examples": max_examples,
            "fraction": fraction,
        },
        base_fingerprint=base_fingerprint(folder),
        resume=resume,
        pad_token_id=_pad_id(tokenizer),
        log=log,
    )
    return _run(job, config, check)


def _domain_of(corpus: str, config: Config) -> str:
    from assistant.corpus import get_recipe

    return get_recipe(corpus, config).domain


__all__ = ["DATA_CHECK_FILE", "PassagesFor", "data_check", "domain_instruction", "qa_train_items", "run_dir", "sft_pool",
           "train_cpt", "train_sft"]
