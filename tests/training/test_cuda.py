"""The CUDA paths on a GPU, with the tiny models (skipped without one; CI has none):

- the transformers generator loads in bf16 on the GPU (`generation.dtype: auto`), streams what it
  generates, and scores answer options as the fp32 model on the CPU does (within bf16 rounding);
- the trainer keeps the LoRA base in bf16 with SDPA attention and gradient checkpointing off unless
  memory needs it or the config asks; QLoRA quantizes the base to 4-bit on the GPU;
- an adapter trained on the GPU answers the same on the GPU and on a CPU.

    .venv/bin/pytest tests/training/test_cuda.py -v      # on a machine with a CUDA GPU
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from assistant.config import Config, GenerationConfig
from assistant.models import clear_generators, load_generator
from assistant.training import attach, trainer
from assistant.training.trainer import run_training
from tests.training.conftest import TOY_INSTRUCTION, answer_examples, job, quick

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

QUESTION = [{"role": "system", "content": TOY_INSTRUCTION}, {"role": "user", "content": "Is coffee good?"}]
OPTIONS = ["Yes.", "No.", "maybe not"]
# bf16 weights and activations against fp32: measured ~5e-4 on a CPU for these prompts
BF16_TOLERANCE = 0.05


def generation(config: Config, model: Path, dtype: str) -> Config:
    return config.replace(generation=GenerationConfig(
        model=str(model), backend="transformers", dtype=dtype, max_new_tokens=16, max_input_tokens=256))


@pytest.fixture
def on_cpu(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Call to hide the GPU from the loaders from then on (a CPU machine's path), with a fresh cache."""
    def hide() -> None:
        clear_generators()
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    yield hide
    clear_generators()


def test_the_generator_runs_bf16_on_the_gpu_and_scores_like_fp32_on_a_cpu(
    config: Config, tiny_model_dir: Path, on_cpu: Any
) -> None:
    gpu = load_generator(generation(config, tiny_model_dir, "auto"))
    assert (gpu.identity()["dtype"], gpu.identity()["device"]) == ("bfloat16", "cuda")  # in run fingerprints
    out = gpu.generate(QUESTION)
    assert out.output_tokens > 0 and "".join(gpu.stream(QUESTION)) == out.text
    scored_on_gpu = gpu.score_options(QUESTION, OPTIONS)

    on_cpu()
    cpu = load_generator(generation(config, tiny_model_dir, "float32"))
    assert (cpu.identity()["dtype"], cpu.identity()["device"]) == ("float32", "cpu")
    assert scored_on_gpu == pytest.approx(cpu.score_options(QUESTION, OPTIONS), abs=BF16_TOLERANCE)


def test_the_trainer_keeps_a_bf16_base_with_sdpa_and_no_checkpointing(tiny_model_dir: Path) -> None:
    cuda = torch.device("cuda")
    model = trainer.load_for_training(tiny_model_dir, quick(gradient_checkpointing=None), cuda, tokens_per_batch=512)
    base = model.get_base_model()
    assert base.dtype == torch.bfloat16 and base.config._attn_implementation == "sdpa"
    assert not base.is_activation_checkpointing  # a tiny batch fits: nothing is recomputed
    trained = [p for p in model.parameters() if p.requires_grad]
    assert trained and all(p.dtype == torch.float32 for p in trained)  # LoRA weights train in fp32
    forced = trainer.load_for_training(tiny_model_dir, quick(gradient_checkpointing=True), cuda)
    assert forced.get_base_model().is_activation_checkpointing


def test_qlora_quantizes_the_base_to_4bit_on_the_gpu(tiny_model_dir: Path) -> None:
    import bitsandbytes as bnb

    model = trainer.load_for_training(tiny_model_dir, quick(quantize=True, gradient_checkpointing=None),
                                      torch.device("cuda"), tokens_per_batch=512)
    quantized = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized and all(m.weight.device.type == "cuda" for m in quantized)


def test_an_adapter_trained_on_the_gpu_answers_on_the_gpu_and_on_a_cpu(
    config: Config, learnable_model_dir: Path, tokenizer: Any, on_cpu: Any
) -> None:
    examples = answer_examples(tokenizer, "Yes.", n=8)
    record = run_training(job(learnable_model_dir, config.adapters_dir / "yes", examples, quick(max_steps=12)))
    losses = [loss for _, loss in record["results"]["train_loss"]]
    assert losses[-1] < losses[0] / 4

    gpu = load_generator(generation(config, learnable_model_dir, "auto"))
    assert attach(gpu, "yes", config) == "yes"
    assert gpu.generate(QUESTION, adapter="yes").text == "Yes."
    on_cpu()
    cpu = load_generator(generation(config, learnable_model_dir, "float32"))
    attach(cpu, "yes", config)
    assert cpu.engine()["device"] == "cpu" and cpu.generate(QUESTION, adapter="yes").text == "Yes."
