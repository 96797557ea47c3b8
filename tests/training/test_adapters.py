"""Finished adapters: list, get, delete; attach to a loaded Generator and switch per call without
reloading the base; refuse an adapter of another base; merge into a plain full-precision model."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Config, GenerationConfig
from assistant.errors import ConfigError, InputError, NotFoundError
from assistant.models import Generator, clear_generators, load_generator
from assistant.training import attach, delete_adapter, get_adapter, list_adapters, merge_adapter
from assistant.training.trainer import TRAINING_FILE, run_dir, run_training
from tests.training.conftest import TOY_INSTRUCTION, answer_examples, job, quick

QUESTION = [{"role": "system", "content": TOY_INSTRUCTION}, {"role": "user", "content": "Is coffee good?"}]


@pytest.fixture(scope="module")
def trained(
    learnable_model_dir: Path, other_model_dir: Path, tokenizer: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Three finished adapters, trained once: 'yes' and 'no' on the learnable base, 'other' on another."""
    folder = tmp_path_factory.mktemp("trained")
    for name, answer in (("yes", "Yes."), ("no", "No.")):
        examples = answer_examples(tokenizer, answer, n=8)
        run_training(job(learnable_model_dir, folder / name, examples, quick(max_steps=12)))
    run_training(job(other_model_dir, folder / "other", answer_examples(tokenizer, "Yes.", n=4), quick(max_steps=1)))
    return folder


@pytest.fixture
def home_config(config: Config, learnable_model_dir: Path, trained: Path) -> Iterator[Config]:
    """The trained adapters in the temp home; the learnable model as the generation model."""
    for adapter in trained.iterdir():
        shutil.copytree(adapter, config.adapters_dir / adapter.name)
    clear_generators()  # a fresh model: adapters attached in one test must not show up in the next
    generation = GenerationConfig(model=str(learnable_model_dir), max_new_tokens=8, max_input_tokens=256, dtype="float32",
                                  repetition_penalty=1.0)
    yield config.replace(generation=generation)
    clear_generators()


def test_list_get_and_delete(home_config: Config) -> None:
    config = home_config
    (config.adapters_dir / "half").mkdir()  # no training.json: not finished
    run_dir(config.adapters_dir / "interrupted").mkdir()  # a run in progress
    assert [a.name for a in list_adapters(config)] == ["no", "other", "yes"]
    info = get_adapter(config, "yes")
    assert info.kind == "sft" and info.path == config.adapters_dir / "yes"
    assert info.base_spec.endswith("tiny-learnable") and len(info.base_fingerprint) == 16
    summary = info.summary()
    assert summary["name"] == "yes" and summary["steps"] == 12 and summary["quantize"] is False
    with pytest.raises(NotFoundError, match=r"unknown adapter 'nope' \(known: no, other, yes\)"):
        get_adapter(config, "nope")
    for unfinished in ("half", "interrupted"):
        with pytest.raises(NotFoundError, match=f"no finished training.*--name {unfinished} --resume"):
            get_adapter(config, unfinished)
    with pytest.raises(InputError, match=r"adapter name '\.\./x' is not valid"):
        get_adapter(config, "../x")

    (run_dir(config.adapters_dir / "no")).mkdir()  # a leftover run of the same name goes with it
    assert delete_adapter(config, "no") == config.adapters_dir / "no"
    assert not (config.adapters_dir / "no").exists() and not run_dir(config.adapters_dir / "no").exists()
    assert [a.name for a in list_adapters(config)] == ["other", "yes"]
    with pytest.raises(NotFoundError):
        delete_adapter(config, "no")


def test_attach_and_switch_adapters_on_one_base(home_config: Config) -> None:
    gen: Generator = load_generator(home_config)
    model = gen.model
    base_text = gen.generate(QUESTION).text
    assert attach(gen, "yes", home_config) == "yes"
    assert attach(gen, "no", home_config) == "no"
    assert attach(gen, "yes", home_config) == "yes"  # already there: not loaded twice
    assert sorted(gen.adapters) == ["no", "yes"] and gen.model is model  # the base was not reloaded

    yes, no = gen.generate(QUESTION, adapter="yes"), gen.generate(QUESTION, adapter="no")
    assert (yes.text, no.text) == ("Yes.", "No.")
    assert yes.finish_reason == no.finish_reason == "stop" and yes.output_tokens == 5  # "Yes." + <|im_end|>
    assert gen.generate(QUESTION).text == base_text not in ("Yes.", "No.")  # None: the plain base again
    assert gen.generate(QUESTION, adapter="yes").text == "Yes."
    assert load_generator(home_config).model is model
    # a name with a dot (torch module names cannot hold one) is attached under a slot name
    shutil.copytree(home_config.adapters_dir / "no", home_config.adapters_dir / "no.v2")
    slot = attach(gen, "no.v2", home_config)
    assert "." not in slot and gen.generate(QUESTION, adapter=slot).text == "No."


def test_attach_refuses_an_adapter_of_another_base(home_config: Config, other_model_dir: Path) -> None:
    gen = load_generator(home_config)
    with pytest.raises(ConfigError) as err:
        attach(gen, "other", home_config)
    message = str(err.value)
    assert f"trained on base '{other_model_dir}'" in message and f"loaded model is '{gen.name}'" in message
    assert "\n" not in message and gen.adapters == []


def test_merge_writes_a_plain_model_equal_to_base_plus_adapter(
    home_config: Config, learnable_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    models = tmp_path / "models"
    models.mkdir()
    out = merge_adapter(home_config, "yes", models / "merged")
    assert out == (models / "merged").resolve()
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "merged_from.json"} <= names
    assert not any(n.startswith("adapter_") for n in names)
    assert [p.name for p in models.iterdir()] == ["merged"]  # no temp folder left beside it

    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not any("lora" in key for key in merged.state_dict())
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(learnable_model_dir), str(home_config.adapters_dir / "yes")
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, adapted(input_ids=ids).logits, atol=1e-4)

    with pytest.raises(InputError, match="exists and is not empty"):
        merge_adapter(home_config, "yes", out)
    with pytest.raises(NotFoundError):
        merge_adapter(home_config, "nope", models / "other")
    (models / "file").write_text("x")
    with pytest.raises(InputError, match="is a file: --out takes a folder"):
        merge_adapter(home_config, "yes", models / "file")


def test_a_retrained_adapter_is_reloaded(home_config: Config, trained: Path) -> None:
    gen = load_generator(home_config)
    attach(gen, "yes", home_config)
    assert gen.generate(QUESTION, adapter="yes").text == "Yes."
    # Replaced on disk under the same name (train --overwrite): the next attach loads the new weights.
    shutil.rmtree(home_config.adapters_dir / "yes")
    shutil.copytree(trained / "no", home_config.adapters_dir / "yes")
    assert (home_config.adapters_dir / "yes" / TRAINING_FILE).is_file()
    attach(gen, "yes", home_config)
    assert gen.generate(QUESTION, adapter="yes").text == "No."


def test_the_record_is_typed_and_raft_is_known_from_it_not_the_name(config: Config) -> None:
    """training.json read once into an AdapterRecord: with_context (RAFT) from the record, whatever the
    name; unknown keys kept; domain_adapters newest first."""
    import json

    from assistant.models.adapters import AdapterRecord, domain_adapters

    def write(name: str, created: str, with_context: bool, domain: str = "medical", kind: str = "sft") -> None:
        folder = config.adapters_dir / name
        folder.mkdir(parents=True)
        record = {"name": name, "kind": kind, "created": created,
                  "base": {"spec": "embedded:x", "path": "/m", "fingerprint": "f" * 16},
                  "config": {"quantize": True}, "data": {"domain": domain, "corpora": ["pubmedqa"],
                  "with_context": with_context, "train_examples": 8}, "results": {"steps": 2}, "later": {"a": 1}}
        (folder / TRAINING_FILE).write_text(json.dumps(record, indent=2))

    write("medical-raft", "2024-01-01T00:00:00", with_context=False)  # named raft, trained without passages
    write("plain", "2024-02-01T00:00:00", with_context=True)  # trained --with-context
    write("cpt", "2024-03-01T00:00:00", with_context=False, kind="cpt")
    write("finance", "2024-04-01T00:00:00", with_context=False, domain="finance")
    info = get_adapter(config, "plain")
    assert info.with_context and info.is_raft and info.training.recipe == "raft" and info.domain == "medical"
    assert not get_adapter(config, "medical-raft").is_raft
    assert info.training.base.fingerprint == "f" * 16 and info.training.data.corpora == ("pubmedqa",)
    on_disk = json.loads((info.path / TRAINING_FILE).read_text())
    assert info.record == on_disk and AdapterRecord.from_dict(on_disk).to_dict() == on_disk  # "later" kept
    assert info.summary()["with_context"] is True and info.summary()["train_examples"] == 8
    assert [a.name for a in domain_adapters(config, "medical")] == ["plain", "medical-raft"]
    assert [a.name for a in domain_adapters(config, "medical", kind="cpt")] == ["cpt"]
