"""Export a domain's SFT examples as chat JSONL for a hosted fine-tuning API (`assistant data export`).

    assistant data export --domain medical --format openai-chat --out sft.jsonl [--validation 0.1] [--with-context]

    from assistant.training.export_chat import export_chat
    result = export_chat("medical", config, Path("sft.jsonl"))       # sft.jsonl + sft.validation.jsonl
    print(result.summary())

The examples are `train sft`'s: the same QA train items after the same leakage check (train questions that
duplicate or nearly duplicate a test question are dropped), the same messages (`training.data.sft_messages`:
the domain's instruction as the system turn, the question as the user turn, with `passages_for` the
numbered retrieved passages RAFT trains on) and the same target answer (a PubMedQA label first, then its
reasoning). Only the chat template differs: the hosted service applies its own. One JSON object per line,
as OpenAI's chat fine-tuning format defines:

    {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "..."}]}

The validation share is drawn by question (items whose questions are equal after normalisation stay
together, as MedQuAD repeats questions across its sources), so no question is in both files; identical
examples are written once. Tests: tests/training/test_export_chat.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.atomic import atomic_write
from assistant.config import Config
from assistant.corpus.leakage import normalized_question
from assistant.errors import InputError
from assistant.training.data import (
    PassagesFor,
    SftStats,
    passage_budget,
    sft_messages,
    split_validation,
    token_truncate,
)
from assistant.training.entry import domain_instruction, sft_pool
from assistant.types import QAItem

FORMATS = ("openai-chat",)


@dataclass(frozen=True)
class ChatExport:
    """What `export_chat` wrote: the two files and their example counts."""

    format: str
    domain: str
    corpora: tuple[str, ...]
    train_path: Path
    validation_path: Path | None  # None when --validation is 0
    n_train: int
    n_validation: int
    leaks_removed: int  # train questions dropped by the leakage check
    duplicates_removed: int  # identical examples written once
    with_context: bool = False
    gold_in_context: int = 0  # with context: examples whose passages hold the gold document

    def summary(self) -> str:
        val = f", {self.n_validation} validation examples -> {self.validation_path}" if self.validation_path else ""
        notes = [f"{self.leaks_removed} train questions near-duplicating a test question left out"]
        if self.duplicates_removed:
            notes.append(f"{self.duplicates_removed} identical examples written once")
        if self.with_context:
            notes.append(f"gold passage in {self.gold_in_context} of {self.n_train + self.n_validation} examples")
        where = self.domain if list(self.corpora) == [self.domain] else f"{self.domain}: {', '.join(self.corpora)}"
        return f"{self.format}: {self.n_train} train examples -> {self.train_path}{val} ({where}; {'; '.join(notes)})"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["corpora"] = list(self.corpora)
        data["train_path"] = str(self.train_path)
        data["validation_path"] = str(self.validation_path) if self.validation_path else None
        return data


def validation_file(out: Path) -> Path:
    """The validation file beside `out`: sft.jsonl -> sft.validation.jsonl."""
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(f"{stem}.validation.jsonl")


def chat_line(messages: Sequence[dict[str, str]], answer: str) -> str:
    """One example as a line of OpenAI chat JSONL (the prompt's turns, then the assistant's answer)."""
    turns = [{"role": m["role"], "content": m["content"]} for m in messages]
    line = json.dumps({"messages": [*turns, {"role": "assistant", "content": answer}]}, ensure_ascii=False)
    # JSON allows U+2028/U+2029 raw in strings, but readers that split lines on them would cut the example
    return line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


def split_by_question(items: Sequence[QAItem], fraction: float, seed: int) -> tuple[list[QAItem], list[QAItem]]:
    """(train, validation), a seeded `fraction` of the distinct questions held out with all their items."""
    groups: dict[str, list[QAItem]] = {}
    for item in items:
        groups.setdefault(normalized_question(item.question), []).append(item)
    train_keys, val_keys = split_validation(list(groups), fraction, len(groups), seed)
    return [i for k in train_keys for i in groups[k]], [i for k in val_keys for i in groups[k]]


def _tokenizer(config: Config) -> Any:
    """The generation model's tokenizer: RAFT passages are cut to its tokens, as `train sft` cuts them."""
    from transformers import AutoTokenizer

    from assistant import hub
    from assistant.models import resolve_model

    with hub.quiet_transformers():
        return AutoTokenizer.from_pretrained(resolve_model(config.generation.model, config), local_files_only=True)


def check_options(format: str, validation: float) -> None:
    """A one-line InputError for an unknown format or a validation share outside [0, 1)."""
    if format not in FORMATS:
        raise InputError(f"unknown export format '{format}' (known: {', '.join(FORMATS)})")
    if not 0.0 <= validation < 1.0:
        raise InputError(f"--validation must be at least 0 and below 1, got {validation}")


def export_chat(
    domain: str,
    config: Config,
    out: Path,
    *,
    format: str = "openai-chat",
    validation: float = 0.1,
    passages_for: PassagesFor | None = None,
) -> ChatExport:
    """Write the SFT examples of `domain` (a domain, or one corpus: as `train sft --domain CORPUS`) to `out`
    and, for the `validation` share of the questions, to its validation file."""
    check_options(format, validation)
    cfg = config.training
    if passages_for is not None:
        cfg = dataclasses.replace(cfg, seq_len=cfg.context_seq_len)  # the passage budget `train sft` uses
    _, kept, leaks, corpora = sft_pool(domain, config, cfg, lambda msg: None)  # the summary counts the leaks
    kept = [i for i in kept if i.question.strip()]
    if not kept:
        raise InputError(f"'{domain}' has no QA train items left to export after the leakage check")
    train_part, val_part = split_by_question(kept, validation, cfg.seed)
    instruction = domain_instruction(domain, config)
    if not instruction.strip():
        raise InputError(f"domain '{domain}' has an empty instruction: the system turn would be empty")
    truncate = token_truncate(_tokenizer(config.for_domain(domain))) if passages_for else (lambda text, n: text)
    stats = SftStats()
    files: list[tuple[Path, list[str]]] = []
    duplicates = 0
    for path, items in ((out, train_part), (validation_file(out), val_part)):
        if not items and path != out:
            continue  # no validation file (--validation 0, or too few questions): none is written
        # the rng of RAFT's gold share restarts for each file, as `train sft` renders train and validation
        lines = [chat_line(m, a) for m, a in sft_messages(items, instruction, cfg, passages_for, truncate,
                                                          passage_budget(cfg), stats)]
        unique = list(dict.fromkeys(lines))
        duplicates += len(lines) - len(unique)
        files.append((path, unique))
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: give a file name, e.g. {out / 'sft.jsonl'}")
    try:
        for path, lines in files:
            atomic_write(path, "".join(lines))
    except OSError as exc:
        raise InputError(f"could not write {out}: {exc}") from None
    return ChatExport(
        format=format, domain=domain, corpora=tuple(corpora), train_path=out,
        validation_path=files[1][0] if len(files) > 1 else None, n_train=len(files[0][1]),
        n_validation=len(files[1][1]) if len(files) > 1 else 0, leaks_removed=len(leaks),
        duplicates_removed=duplicates, with_context=passages_for is not None, gold_in_context=stats.gold_in_context,
    )


__all__ = ["FORMATS", "ChatExport", "chat_line", "check_options", "export_chat", "split_by_question", "validation_file"]
