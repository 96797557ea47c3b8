"""The entry points on a toy corpus in a temp home, with the tiny model as the base: train_cpt, train_sft
(plain and RAFT with a passages function), what training.json records, and the user errors."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Config
from assistant.corpus import prepare
from assistant.errors import InputError, NotFoundError
from assistant.training import base_fingerprint, entry, get_adapter, train_cpt, train_sft
from assistant.training.trainer import TRAINING_FILE, TrainJob
from assistant.types import QAItem, Source
from tests.corpus.conftest import write_recipe
from tests.training.conftest import TOY_LOADER, toy_documents

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers deprecations inside peft

ADAPTER_FILES = {"README.md", "adapter_config.json", "adapter_model.safetensors", "training.json", "loss.png", "data_check.json"}


def quiet(msg: str) -> None:
    pass


def record_of(config: Config, name: str) -> dict[str, Any]:
    return json.loads((config.adapters_dir / name / TRAINING_FILE).read_text())


def capture_jobs(monkeypatch: pytest.MonkeyPatch) -> list[TrainJob]:
    """Keep each TrainJob the entry points hand to the trainer (which still runs)."""
    jobs: list[TrainJob] = []
    run = entry.run_training

    def keep(job: TrainJob) -> dict[str, Any]:
        jobs.append(job)
        return run(job)

    monkeypatch.setattr(entry, "run_training", keep)
    return jobs


def test_train_cpt_packs_the_documents_and_writes_the_adapter(
    toy_config: Config, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = capture_jobs(monkeypatch)
    info = train_cpt("toy", "toy-cpt", toy_config, seq_len=64, batch_size=2, max_steps=2, val_fraction=0.25, log=quiet)
    assert info.name == "toy-cpt" and info.kind == "cpt"
    assert {p.name for p in info.path.iterdir()} == ADAPTER_FILES
    assert [p.name for p in toy_config.adapters_dir.iterdir()] == ["toy-cpt"]
    record = record_of(toy_config, "toy-cpt")
    data = record["data"]
    assert data["domain"] == "toy" and data["corpora"] == ["toy"]
    assert data["documents"] == 6 and data["val_documents"] == 2 and data["replay_documents"] == 0
    assert data["blocks"] == data["train_examples"] == data["tokens"] // 64
    assert data["dropped_tail_tokens"] == data["tokens"] % 64
    assert record["base"] == {
        "spec": str(tiny_model_dir), "path": str(tiny_model_dir), "fingerprint": base_fingerprint(tiny_model_dir)
    }
    assert record["config"]["seq_len"] == 64 and record["results"]["steps"] == 2
    (job,) = jobs
    assert job.kind == "cpt" and all(len(e.input_ids) == 64 and e.labels == e.input_ids for e in job.train)
    assert job.val and all(len(e.input_ids) == 64 for e in job.val)


def test_train_sft_drops_leaks_counts_truncation_and_records_it(
    toy_config: Config, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = capture_jobs(monkeypatch)
    info = train_sft("toy", "toy-sft", toy_config, seq_len=128, max_steps=2, log=quiet)
    assert info.kind == "sft" and {p.name for p in info.path.iterdir()} == ADAPTER_FILES
    data = record_of(toy_config, "toy-sft")["data"]
    assert data["qa_train_items"] == 9 and data["with_context"] is False and data["passage_tokens"] is None
    leakage = data["leakage"]
    assert leakage["removed"] == 1 and leakage["threshold"] == toy_config.training.leakage_threshold
    assert (leakage["examples"][0]["train_id"], leakage["examples"][0]["test_id"]) == ("toy:leak", "toy:t1")
    assert data["selected_items"] == 8
    assert data["rendered"] == {
        "examples": 8, "ok": 6, "answer_truncated": 1, "prompt_too_long": 1, "empty_answer": 0,
        "gold_in_context": 0, "context_examples": 0,
    }
    assert data["train_examples"] == 7  # the too-long prompt is not trained on
    assert record_of(toy_config, "toy-sft")["base"]["fingerprint"] == base_fingerprint(tiny_model_dir)
    (job,) = jobs
    assert max(len(e.input_ids) for e in job.train) == 128
    first = job.train[0]
    assert first.labels[-1] == 2 or len(first.input_ids) == 128  # whole answers end with <|im_end|>


def gold_and_distractors(config: Config) -> Callable[[QAItem], tuple[list[Source], list[Source]]]:
    docs = toy_documents()

    def passages(item: QAItem) -> tuple[list[Source], list[Source]]:
        def src(i: int) -> Source:
            d = docs[i]
            return Source(doc_id=d.id, title=d.title, locator="", score=1.0, snippet=d.text, corpus=d.corpus)

        gold = [src(i) for i, d in enumerate(docs) if d.id in item.doc_ids]
        return gold, [src(i) for i, d in enumerate(docs) if d.id not in item.doc_ids]

    return passages


def test_train_sft_with_passages_renders_raft_examples(toy_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoTokenizer

    jobs = capture_jobs(monkeypatch)
    train_sft(
        "toy", "toy-raft", toy_config, passages_for=gold_and_distractors(toy_config),
        seq_len=1024, passages=2, gold_share=1.0, max_steps=1, batch_size=2, log=quiet,
    )
    data = record_of(toy_config, "toy-raft")["data"]
    # byte tokens: the RAG rules alone take ~250 of them, hence the long sequences
    assert data["with_context"] is True and data["passage_tokens"] == 384  # (1024 - 256) // 2
    assert data["rendered"]["context_examples"] == data["rendered"]["gold_in_context"] == 8
    (job,) = jobs
    tokenizer = AutoTokenizer.from_pretrained(job.base_path)
    text = tokenizer.decode(jobs[0].train[0].input_ids)
    assert "Sources:\n\n[1] About " in text and "\n\n[2] About " in text and "[3]" not in text
    assert "Question: " in text and text.endswith("<|im_end|>")


def test_train_sft_default_seq_len_grows_for_passages(toy_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = capture_jobs(monkeypatch)
    passages = gold_and_distractors(toy_config)
    train_sft("toy", "toy-raft2", toy_config, passages_for=passages, passages=1, max_steps=1, batch_size=2, log=quiet)
    assert jobs[0].config.seq_len == 768 and record_of(toy_config, "toy-raft2")["config"]["seq_len"] == 768
    # training.context_seq_len (YAML) sets it; --seq-len wins over both
    cfg = dataclasses.replace(toy_config, training=dataclasses.replace(toy_config.training, context_seq_len=640))
    train_sft("toy", "toy-raft3", cfg, passages_for=passages, passages=1, max_steps=1, batch_size=2, log=quiet)
    train_sft("toy", "toy-raft4", cfg, passages_for=passages, passages=1, max_steps=1, batch_size=2, seq_len=700, log=quiet)
    assert [j.config.seq_len for j in jobs[1:]] == [640, 700]
    # prompts that never fit: the message names the setting to raise
    with pytest.raises(InputError, match=r"prompts are longer than 48 tokens: raise --seq-len"):
        train_sft("toy", "toy-raft5", cfg, passages_for=passages, passages=1, max_steps=1, seq_len=48, log=quiet)


def test_entry_point_errors(toy_config: Config, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="'nope'"):
        train_sft("nope", "x", toy_config, log=quiet)
    with pytest.raises(NotFoundError, match="'nope'"):
        train_cpt("nope", "x", toy_config, log=quiet)
    with pytest.raises(InputError, match=r"longer than the model .* reads \(1024 tokens\)"):
        train_sft("toy", "x", toy_config, seq_len=2048, log=quiet)
    with pytest.raises(InputError, match=r"unknown training setting\(s\): learning_rat "):
        train_sft("toy", "x", toy_config, learning_rat=1.0, log=quiet)
    with pytest.raises(InputError, match="give no full block of 1000 tokens"):
        train_cpt("toy", "x", toy_config, seq_len=1000, max_examples=1, log=quiet)

    (toy_config.adapters_dir / "taken").mkdir(parents=True)
    (toy_config.adapters_dir / "taken" / TRAINING_FILE).write_text("{}")
    with pytest.raises(InputError, match=r"adapter 'taken' already exists .* --overwrite"):
        train_sft("toy", "taken", toy_config, log=quiet)
    with pytest.raises(InputError, match=r"'taken' already exists .* has no interrupted run to resume: .*--overwrite"):
        train_sft("toy", "taken", toy_config, resume=True, log=quiet)  # finished: not retrained behind the user's back

    # A corpus with test questions only: nothing to train on.
    write_recipe(toy_config, "toytest", TOY_LOADER, [tmp_path], domain="toy", only="test")
    prepare("toytest", toy_config, progress=False)
    with pytest.raises(InputError, match="'toytest' has no QA train items"):
        train_sft("toytest", "x", toy_config, log=quiet)
    assert [p.name for p in toy_config.adapters_dir.iterdir()] == ["taken"]  # nothing else was written


def test_overwrite_replaces_an_adapter(toy_config: Config) -> None:
    train_sft("toy", "again", toy_config, max_steps=1, log=quiet)
    first = record_of(toy_config, "again")["created"]
    info = train_sft("toy", "again", toy_config, max_steps=2, overwrite=True, log=quiet)
    assert get_adapter(toy_config, "again").record["results"]["steps"] == 2 == info.summary()["steps"]
    assert record_of(toy_config, "again")["created"] >= first
    assert [p.name for p in toy_config.adapters_dir.iterdir()] == ["again"]
