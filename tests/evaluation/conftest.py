"""An evaluation playground: a toy domain with label, arithmetic and free-form questions, its index (hash
embedder), a tiny learnable model and two tiny adapters trained to answer "Yes." and "No."."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import Config, DomainConfig, GenerationConfig, load_config
from assistant.corpus import LOADERS, LoadResult, Recipe, register_loader
from assistant.models import clear_generators
from assistant.types import Document, QAItem
from tests.corpus.conftest import write_recipe
from tests.training.conftest import TOY_INSTRUCTION, answer_examples, job, make_model, quick

LOADER = "evaltoy-loader"
DOMAIN = "evaltoy"
TOPICS = ("tea", "rain", "sleep", "salt", "fruit", "sun", "milk", "walking", "coffee", "sugar", "rice", "fish", "beans", "yoga")


def eval_documents() -> list[Document]:
    docs = [
        Document(id=f"ev:{t}", corpus="evaltoy", title=f"About {t}",
                 text=f"A study of {t} in adults found that {t} is good for health. The effect of {t} was small.")
        for t in TOPICS
    ]
    docs.append(Document(id="ev:report", corpus="evaltoy", title="Annual report",
                         text="Revenue was 120 in 2019 and 100 in 2018. Costs were 40 in 2019."))
    return docs


def eval_qa() -> list[QAItem]:
    labels = ("yes", "no", "maybe")
    items = [
        QAItem(f"ev:train{i}", "evaltoy", f"Is {t} good?", labels[i % 3], "train", answer_type="label",
               doc_ids=(f"ev:{t}",), options=labels, long_answer=f"The study of {t} says so.")
        for i, t in enumerate(TOPICS[:6])
    ]
    # a train item that repeats a test question: few-shot must never show a question its own answer
    items.append(QAItem("ev:trainleak", "evaltoy", "Is coffee good?", "yes", "train", answer_type="label",
                        doc_ids=("ev:coffee",), options=labels, long_answer="Coffee again."))
    items += [
        QAItem(f"ev:test{i}", "evaltoy", f"Is {t} good?", labels[i % 3], "test", answer_type="label",
               doc_ids=(f"ev:{t}",), options=labels)
        for i, t in enumerate(TOPICS[6:])
    ]
    items += [
        QAItem("ev:arith", "evaltoy", "What was the change in revenue from 2018 to 2019?", "20", "test",
               answer_type="arithmetic", doc_ids=("ev:report",), metadata={"answer_raw": 20, "scale": ""}),
        QAItem("ev:span", "evaltoy", "What were the costs in 2019?", "40", "test", answer_type="span",
               doc_ids=("ev:report",), metadata={"answer_raw": ["40"], "scale": ""}),
        QAItem("ev:free", "evaltoy", "What did the study of sun find?", "sun is good for health", "test",
               answer_type="free", doc_ids=("ev:sun",)),
    ]
    return items


N_TEST = sum(i.split == "test" for i in eval_qa())


@pytest.fixture(scope="session")
def eval_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("eval-model") / "tiny-learnable", initializer_range=0.2)


@pytest.fixture(scope="session")
def yes_no_adapters(eval_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Adapters 'yes' and 'no' whose every reply is "Yes." / "No." (trained once per session)."""
    from transformers import AutoTokenizer

    from assistant.training.trainer import run_training

    tokenizer = AutoTokenizer.from_pretrained(eval_model_dir)
    folder = tmp_path_factory.mktemp("eval-adapters")
    for name, answer in (("yes", "Yes."), ("no", "No.")):
        run_training(job(eval_model_dir, folder / name, answer_examples(tokenizer, answer, n=8), quick(max_steps=12)))
    return folder


@pytest.fixture
def eval_config(home: Path, eval_model_dir: Path, tmp_path: Path) -> Iterator[Config]:
    """The toy domain prepared and indexed in a temp home, answered by the tiny learnable model."""
    from assistant.jobs.documents import build

    @register_loader(LOADER)
    def load(sources: list[Path], recipe: Recipe, progress: bool) -> LoadResult:
        return LoadResult(documents=eval_documents(), qa=eval_qa())

    (home / "assistant.yaml").write_text(
        "embedding: {model: 'hash:384', quantize: false}\n"
        f"generation: {{model: '{eval_model_dir}', dtype: float32, max_new_tokens: 6, max_input_tokens: 768, repetition_penalty: 1.0}}\n"
        "prompting: {cot_max_new_tokens: 8, fewshot_tokens: 400}\n"
        "evaluation: {label_max_new_tokens: 4, bootstrap: 200}\n"
        f"domains:\n  {DOMAIN}: {{description: toy, instruction: '{TOY_INSTRUCTION}'}}\n"
    )
    config = load_config()
    clear_generators()
    try:
        write_recipe(config, "evaltoy", LOADER, [tmp_path], domain=DOMAIN)
        build(DOMAIN, config, progress=False)
        yield config
    finally:
        LOADERS.pop(LOADER, None)
        clear_generators()


@pytest.fixture
def with_adapters(eval_config: Config, yes_no_adapters: Path) -> Config:
    for adapter in yes_no_adapters.iterdir():
        shutil.copytree(adapter, eval_config.adapters_dir / adapter.name)
    return eval_config


def replace_domain(config: Config, **changes: str) -> Config:
    domains = dict(config.domains)
    domains[DOMAIN] = DomainConfig(name=DOMAIN, **{"instruction": TOY_INSTRUCTION, **changes})
    return config.replace(domains=domains)


__all__ = ["DOMAIN", "N_TEST", "GenerationConfig"]
