"""Fixtures for the training tests: tiny models that can learn, quick training settings, a toy corpus.

The shared `tiny_model_dir` (tests/fakes.py) cannot fit a target: its lm_head is initialised with
std 0.02, so after the final RMSNorm its logits stay within about +-1.3 and the loss floors near 4.3
whatever LoRA does. `learnable_model_dir` is the same architecture with larger initial weights; it
overfits a short answer in a few steps. `other_model_dir` is a different architecture (hidden 96), the
"wrong base" of the fingerprint tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Config, DomainConfig, GenerationConfig, TrainingConfig
from assistant.corpus import LOADERS, LoadResult, Recipe, prepare, register_loader
from assistant.training.data import Example, render_sft
from assistant.training.trainer import TrainJob
from assistant.types import Document, QAItem
from tests.corpus.conftest import write_recipe

TOY_INSTRUCTION = "Answer."
TOY_LOADER = "toy-training"


def make_model(path: Path, *, hidden_size: int = 64, initializer_range: float = 0.02, seed: int = 0) -> Path:
    """A 2-layer random Llama with the byte tokenizer of tests/fakes.py."""
    from tests.fakes import make_tiny_model

    return make_tiny_model(path, seed=seed, hidden_size=hidden_size, initializer_range=initializer_range)


@pytest.fixture(scope="session")
def learnable_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("learnable") / "tiny-learnable", initializer_range=0.2)


@pytest.fixture(scope="session")
def other_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("other") / "tiny-other", hidden_size=96)


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def quick(**changes: Any) -> TrainingConfig:
    """Settings for a run of a few seconds on the tiny models: plain LoRA, no checkpointing, no dropout."""
    base = TrainingConfig(
        seq_len=128,
        batch_size=4,
        max_steps=4,
        epochs=100.0,
        learning_rate=1e-2,
        warmup_steps=0,
        quantize=False,
        gradient_checkpointing=False,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        val_fraction=0.0,
        eval_every=1000,
        save_every=1000,
    )
    return dataclasses.replace(base, **changes)


WORDS = ("tea", "rain", "sleep", "salt", "fruit", "sun", "milk", "walking")


def answer_examples(tokenizer: Any, answer: str, n: int = 8, seq_len: int = 128) -> list[Example]:
    """`n` chat examples whose questions differ and whose reply is always `answer`."""
    out = []
    for word in (WORDS * (n // len(WORDS) + 1))[:n]:
        messages = [{"role": "system", "content": TOY_INSTRUCTION}, {"role": "user", "content": f"Is {word} good?"}]
        example, status = render_sft(tokenizer, messages, answer, seq_len)
        assert example is not None and status == "ok"
        out.append(example)
    return out


def job(
    base: Path,
    out_dir: Path,
    train: Sequence[Example],
    cfg: TrainingConfig,
    *,
    val: Sequence[Example] = (),
    name: str | None = None,
    **changes: Any,
) -> TrainJob:
    from assistant.models.adapters import base_fingerprint

    changes.setdefault("log", lambda msg: None)
    return TrainJob(
        name=name or out_dir.name,
        kind="sft",
        base_path=base,
        base_spec=str(base),
        out_dir=out_dir,
        config=cfg,
        train=list(train),
        val=list(val),
        base_fingerprint=base_fingerprint(base),
        pad_token_id=2,
        **changes,
    )


# ---------------------------------------------------------------- a toy corpus in the temp home
def toy_documents() -> list[Document]:
    topics = ("aspirin", "statins", "insulin", "asthma", "malaria", "sleep", "coffee", "vitamin")
    return [
        Document(
            id=f"toy:{t}",
            corpus="toy",
            title=f"About {t}",
            text=" ".join(f"Sentence {i} says that {t} matters for health in study {i}." for i in range(4)),
        )
        for t in topics
    ]


def toy_qa() -> list[QAItem]:
    train = [
        QAItem(f"toy:q{i}", "toy", f"Does {t} help?", "Yes.", "train", doc_ids=(f"toy:{t}",))
        for i, t in enumerate(("aspirin", "statins", "insulin", "asthma", "malaria", "sleep"))
    ]
    train += [
        # the test question again, with other case and punctuation: the leakage check drops it
        QAItem("toy:leak", "toy", "is COFFEE harmful to the heart", "No.", "train", doc_ids=("toy:coffee",)),
        # an answer longer than seq_len: kept, cut, counted
        QAItem("toy:long", "toy", "Why vitamin?", "Because " + "vitamins help " * 40, "train", doc_ids=("toy:vitamin",)),
        # a question longer than seq_len: dropped, counted
        QAItem("toy:huge", "toy", "Really " * 60 + "why?", "Yes.", "train", doc_ids=("toy:vitamin",)),
    ]
    test = [QAItem("toy:t1", "toy", "Is coffee harmful to the heart?", "No.", "test", doc_ids=("toy:coffee",))]
    return train + test


@pytest.fixture
def toy_config(config: Config, tiny_model_dir: Path, tmp_path: Path) -> Iterator[Config]:
    """A prepared corpus 'toy' of domain 'toy' (short instruction), with the tiny model as the base."""

    @register_loader(TOY_LOADER)
    def load_toy(sources: list[Path], recipe: Recipe, progress: bool) -> LoadResult:
        only = (recipe.options or {}).get("only")
        qa = [q for q in toy_qa() if only is None or q.split == only]
        return LoadResult(documents=toy_documents(), qa=qa)

    domains = {**config.domains, "toy": DomainConfig(name="toy", instruction=TOY_INSTRUCTION)}
    cfg = config.replace(
        domains=domains,
        generation=GenerationConfig(model=str(tiny_model_dir), max_new_tokens=8, max_input_tokens=256, dtype="float32"),
        training=quick(),
    )
    try:
        write_recipe(cfg, "toy", TOY_LOADER, [tmp_path], domain="toy")
        prepare("toy", cfg, progress=False)
        yield cfg
    finally:
        LOADERS.pop(TOY_LOADER, None)
