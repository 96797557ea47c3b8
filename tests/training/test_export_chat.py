"""`assistant data export --format openai-chat`: the SFT examples of `train sft` as chat JSONL, read back by a
strict JSON-lines reader; `train sft`'s own examples unchanged by the refactor that shares them; the data
check saved beside an adapter; the CLI; and one export of the shipped PubMedQA (skipped without the data).

    .venv/bin/pytest tests/training/test_export_chat.py -q
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assistant.config import Config
from assistant.corpus import load_qa
from assistant.corpus.leakage import normalized_question
from assistant.errors import InputError
from assistant.prompts import RAG_RULES, base_messages, rag_messages, target_answer
from assistant.training import train_sft
from assistant.training.data import SftStats, raft_passages, render_sft
from assistant.training.entry import DATA_CHECK_FILE, render_items
from assistant.training.export_chat import (
    ChatExport,
    chat_line,
    export_chat,
    split_by_question,
    validation_file,
)
from assistant.types import QAItem, Source
from tests.corpus.conftest import write_recipe
from tests.training.conftest import TOY_INSTRUCTION, toy_documents, toy_qa

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
ROLES = ["system", "user", "assistant"]


def read_chat_jsonl(path: Path) -> list[list[dict[str, str]]]:
    """A strict JSON-lines reader: UTF-8, one JSON object per "\\n"-ended line and nothing else, each
    {"messages": [system, user, assistant]} with non-empty string content, as OpenAI's format defines."""
    raw = path.read_bytes().decode("utf-8")
    assert raw.endswith("\n") and "\r" not in raw
    lines = raw[:-1].split("\n")
    assert lines == raw.splitlines()  # no other line breaks (U+2028, ...) that a reader might split on
    examples = []
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict) and list(record) == ["messages"]
        messages = record["messages"]
        assert [m["role"] for m in messages] == ROLES and all(list(m) == ["role", "content"] for m in messages)
        assert all(isinstance(m["content"], str) and m["content"].strip() for m in messages)
        examples.append(messages)
    return examples


def test_export_writes_the_sft_examples_as_openai_chat(toy_config: Config, tmp_path: Path) -> None:
    out = tmp_path / "out" / "toy.jsonl"
    result = export_chat("toy", toy_config, out, validation=0.25)
    assert isinstance(result, ChatExport) and result.validation_path == tmp_path / "out" / "toy.validation.jsonl"
    train, val = read_chat_jsonl(out), read_chat_jsonl(result.validation_path)
    # 9 train items, the near duplicate of the test question left out; 2 of the 8 questions validate
    assert (result.n_train, result.n_validation, result.leaks_removed) == (len(train), len(val), 1) == (6, 2, 1)
    items = {i.question: i for i in toy_qa() if i.split == "train"}
    for messages in train + val:
        system, user, assistant = (m["content"] for m in messages)
        assert system == TOY_INSTRUCTION and assistant == target_answer(items[user])
        assert [{"role": m["role"], "content": m["content"]} for m in messages[:2]] == base_messages(TOY_INSTRUCTION, user)
    questions = [normalized_question(m[1]["content"]) for m in train], [normalized_question(m[1]["content"]) for m in val]
    assert not set(questions[0]) & set(questions[1])  # no question in both files
    test = {normalized_question(i.question) for i in toy_qa() if i.split == "test"}
    assert not test & set(questions[0] + questions[1]) and "is coffee harmful to the heart" not in questions[0]
    assert "6 train examples" in result.summary() and str(out) in result.summary()
    assert json.loads(json.dumps(result.to_dict()))["validation_path"] == str(result.validation_path)


def test_validation_zero_writes_one_file(toy_config: Config, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    result = export_chat("toy", toy_config, out, validation=0.0)
    assert result.validation_path is None and result.n_validation == 0 and len(read_chat_jsonl(out)) == 8
    assert not validation_file(out).exists() and validation_file(tmp_path / "x.txt").name == "x.txt.validation.jsonl"


def test_export_errors_are_one_line(toy_config: Config, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown export format 'alpaca'"):
        export_chat("toy", toy_config, tmp_path / "x.jsonl", format="alpaca")
    with pytest.raises(InputError, match="--validation must be at least 0 and below 1"):
        export_chat("toy", toy_config, tmp_path / "x.jsonl", validation=1.0)
    with pytest.raises(InputError, match="is a folder"):
        export_chat("toy", toy_config, tmp_path)


def test_chat_line_is_one_line_whatever_the_text() -> None:
    messages = base_messages("Be brief.", "Line one\nline two\u2028three \"quoted\" \u00e9")
    line = chat_line(messages, "Answer\r\nwith breaks\u2029.")
    assert line.endswith("\n") and len(line.splitlines()) == 1
    back = json.loads(line)["messages"]
    assert back[1]["content"] == messages[1]["content"] and back[2]["content"] == "Answer\r\nwith breaks\u2029."


def test_split_by_question_keeps_repeated_questions_together() -> None:
    items = [QAItem(f"q{i}", "c", f"What is thing {i // 2}?", f"Answer {i}.", "train") for i in range(40)]
    train, val = split_by_question(items, 0.25, seed=0)
    assert len(val) == 10 and len(train) == 30  # 5 of the 20 questions, with both of their items
    assert not {i.question for i in train} & {i.question for i in val}
    assert split_by_question(items, 0.25, seed=0) == (train, val)


def gold_and_distractors(item: QAItem) -> tuple[list[Source], list[Source]]:
    docs = [Source(doc_id=d.id, title=d.title, locator="", score=1.0, snippet=d.text, corpus=d.corpus)
            for d in toy_documents()]
    return [d for d in docs if d.doc_id in item.doc_ids], [d for d in docs if d.doc_id not in item.doc_ids]


def test_export_with_passages_uses_the_raft_prompt(toy_config: Config, tmp_path: Path) -> None:
    cfg = toy_config.replace(training=dataclasses.replace(toy_config.training, passages=2, gold_share=1.0))
    result = export_chat("toy", cfg, tmp_path / "raft.jsonl", validation=0.0, passages_for=gold_and_distractors)
    assert result.with_context and result.gold_in_context == result.n_train == 8
    for system, user, _ in ([m["content"] for m in ex] for ex in read_chat_jsonl(tmp_path / "raft.jsonl")):
        assert system == f"{TOY_INSTRUCTION} {RAG_RULES}"
        assert user.startswith("Sources:\n\n[1] About ") and "<source 2>" in user and "[3]" not in user
        assert "\n\nQuestion: " in user


# ---------------------------------------------------------------- train sft's examples are unchanged
def old_render_items(items: list[QAItem], tokenizer: Any, instruction: str, cfg: Any, passages_for: Any,
                     passage_tokens: int, stats: SftStats) -> list[Any]:
    """render_items as it was before sft_messages was taken out of it (the reference)."""

    def truncate(text: str, n: int) -> str:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= n else str(tokenizer.decode(ids[:n]))

    rng = random.Random(cfg.seed)
    out = []
    for item in items:
        if passages_for is not None:
            gold, distractors = passages_for(item)
            choice = raft_passages(gold, distractors, cfg.passages, cfg.gold_share, rng)
            stats.context_examples += 1
            stats.gold_in_context += int(choice.gold_included)
            messages = rag_messages(instruction, item.question, choice.sources, truncate, passage_tokens)
        else:
            messages = base_messages(instruction, item.question)
        example, status = render_sft(tokenizer, messages, target_answer(item), cfg.seq_len)
        stats.count(status)
        if example is not None:
            out.append(example)
    return out


@pytest.mark.parametrize("with_passages", [False, True])
def test_render_items_is_unchanged(toy_config: Config, tokenizer: Any, with_passages: bool) -> None:
    cfg = dataclasses.replace(toy_config.training, seq_len=640, passages=2, gold_share=0.5)
    items = [i for i in toy_qa() if i.split == "train"] * 3
    fn = gold_and_distractors if with_passages else None
    new_stats, old_stats = SftStats(), SftStats()
    new = render_items(items, tokenizer, TOY_INSTRUCTION, cfg, fn, 60, new_stats)
    old = old_render_items(items, tokenizer, TOY_INSTRUCTION, cfg, fn, 60, old_stats)
    assert [(e.input_ids, e.labels) for e in new] == [(e.input_ids, e.labels) for e in old] and new
    assert new_stats == old_stats


def test_train_sft_saves_the_data_check_beside_the_adapter(toy_config: Config) -> None:
    info = train_sft("toy", "toy-checked", toy_config, seq_len=128, max_steps=1, log=lambda msg: None)
    report = json.loads((info.path / DATA_CHECK_FILE).read_text())
    record = json.loads((info.path / "training.json").read_text())["data"]
    assert report["domain"] == "toy" and report["seq_len"] == 128 and report["tokens"].startswith("exact (")
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["leakage"]["count"] == record["leakage"]["removed"] == 1
    # the byte tokenizer counts exactly: the same two examples `train sft` cut and dropped
    assert checks["too_long"]["count"] == 2 and checks["too_long"]["details"]["dropped"] == 1
    assert record["rendered"]["answer_truncated"] == record["rendered"]["prompt_too_long"] == 1


# ---------------------------------------------------------------- the CLI and the shipped data
def test_cli_data_export(config: Config, tmp_path: Path) -> None:
    from assistant.cli import app
    from tests.test_cli_train import pubmedqa_like

    write_recipe(config, "mini", "pubmedqa", [*pubmedqa_like(tmp_path / "src", n=30)])
    out = tmp_path / "mini.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["data", "export", "--domain", "medical", "--corpus", "mini", "--format", "openai-chat",
                                 "--out", str(out), "--validation", "0.2"])
    assert result.exit_code == 0, result.output
    assert "exported openai-chat: 18 train examples" in result.stdout and "4 validation examples" in result.stdout
    assert len(read_chat_jsonl(out)) == 18 and len(read_chat_jsonl(validation_file(out))) == 4
    result = runner.invoke(app, ["data", "export", "-d", "medical", "-c", "mini", "--out", str(out), "--validation", "2"])
    assert result.exit_code == 2 and "error: --validation must be at least 0 and below 1" in result.output
    result = runner.invoke(app, ["data", "export", "-d", "finance", "-c", "mini", "--out", str(out)])
    assert result.exit_code == 2 and "error: corpus 'mini' is not in 'finance'" in result.output


def test_pubmedqa_real_data_export(config: Config, shared_data: Path, tmp_path: Path) -> None:
    from assistant import export_data

    out = tmp_path / "pubmedqa.jsonl"
    result = export_data("medical", config, out=out, corpus="pubmedqa", progress=False)
    train, val = read_chat_jsonl(out), read_chat_jsonl(validation_file(out))
    assert (result.n_train, result.n_validation, result.leaks_removed) == (len(train), len(val), 0) == (450, 50, 0)
    test = {normalized_question(i.question) for i in load_qa("pubmedqa", config, split="test")}
    users = [normalized_question(m[1]["content"]) for m in train + val]
    assert not test & set(users) and len(set(users)) == 500
    assert {m[2]["content"].split(".")[0] for m in train + val} == {"Yes", "No", "Maybe"}
