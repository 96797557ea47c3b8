"""The one trainer on tiny models: the exact files it writes, frozen base and trained LoRA weights, the
loss going down, QLoRA, an SFT adapter that learns to stop, resuming after an interruption, and failed
runs that leave nothing under the adapter's name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import InputError
from assistant.training import record as record_module
from assistant.training import trainer
from assistant.training.trainer import LOSS_PLOT, TRAINING_FILE, run_dir, run_training
from tests.training.conftest import answer_examples, job, quick

# peft may add a model card; the set is kept strict so that a new file is noticed.
ADAPTER_FILES = {"README.md", "adapter_config.json", "adapter_model.safetensors", TRAINING_FILE, LOSS_PLOT}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lora_state(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_run_writes_the_adapter_folder_and_keeps_the_base(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    weights = tiny_model_dir / "model.safetensors"
    before = sha256(weights)
    out = tmp_path / "adapters" / "sft-a"
    train = answer_examples(tokenizer, "Yes.", n=8)
    cfg = quick(max_steps=3, eval_every=3)
    record = run_training(job(tiny_model_dir, out, train, cfg, val=train[:2], data={"note": "kept"}))

    assert {p.name for p in out.iterdir()} == ADAPTER_FILES
    assert [p.name for p in out.parent.iterdir()] == ["sft-a"]  # no run folder, temp or old copy left
    saved = json.loads((out / TRAINING_FILE).read_text())
    assert saved == json.loads(json.dumps(record))
    assert saved["name"] == "sft-a" and saved["kind"] == "sft" and saved["processes"] == 1
    assert saved["base"]["path"] == str(tiny_model_dir) and len(saved["base"]["fingerprint"]) == 16
    assert saved["config"]["seq_len"] == 128 and saved["config"]["quantize"] is False
    assert saved["data"]["note"] == "kept" and saved["data"]["train_examples"] == 8
    assert saved["data"]["val_examples"] == 2 and len(saved["data"]["data_hash"]) == 16
    results = saved["results"]
    assert results["steps"] == 3 and [s for s, _ in results["train_loss"]] == [1, 2, 3]
    assert [s for s, _ in results["val_loss"]] == [3] and results["final_val_loss"] is not None
    epoch = sum(len(e.input_ids) for e in train)  # 3 batches of 4: one epoch of 8, half of the next
    assert epoch < results["tokens"] < 2 * epoch
    assert results["resumed_from_step"] is None and results["peak_memory_mb"] > 0
    assert (out / LOSS_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The base is untouched on disk; the adapter file holds LoRA weights only, and they trained.
    assert sha256(weights) == before
    state = lora_state(out)
    assert state and all("lora_" in key for key in state)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    reference = {k: v.clone() for k, v in base.state_dict().items()}
    model = PeftModel.from_pretrained(base, str(out))
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # peft initialises lora_B to zero
    q = model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight
    assert torch.equal(q, reference["model.layers.0.self_attn.q_proj.weight"])


def test_loss_decreases_when_overfitting(learnable_model_dir: Path, tokenizer: Any, tmp_path: Path) -> None:
    train = answer_examples(tokenizer, "Yes, it is good.", n=4)
    record = run_training(job(learnable_model_dir, tmp_path / "fit", train, quick(max_steps=8)))
    losses = [loss for _, loss in record["results"]["train_loss"]]
    assert len(losses) == 8
    assert losses[-1] < losses[0] / 4 and min(losses[-3:]) < min(losses[:3])


def test_qlora_trains_a_4bit_base_into_a_plain_adapter(tiny_model_dir: Path, tokenizer: Any, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "qlora"
    train = answer_examples(tokenizer, "Yes.", n=4)
    cfg = quick(max_steps=2, quantize=True, gradient_checkpointing=True)  # the default path of the CLI
    record = run_training(job(tiny_model_dir, out, train, cfg))
    assert {p.name for p in out.iterdir()} == ADAPTER_FILES
    assert record["config"]["quantize"] is True and record["results"]["steps"] == 2
    # The adapter fits the full-precision base (what the generator loads).
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(out))
    assert all(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)


def test_sft_adapter_learns_to_stop(learnable_model_dir: Path, tokenizer: Any, tmp_path: Path) -> None:
    """EOS is a label (pad == EOS here): the adapter ends its reply with <|im_end|> right after the answer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "stop"
    run_training(job(learnable_model_dir, out, answer_examples(tokenizer, "Yes.", n=8), quick(max_steps=12)))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(learnable_model_dir), str(out)).eval()
    messages = [{"role": "system", "content": "Answer."}, {"role": "user", "content": "Is coffee good?"}]  # unseen
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():  # no stopping, so that where the EOS falls is visible
        new = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6,
                             do_sample=False, eos_token_id=None, pad_token_id=0)[0, ids.shape[1]:].tolist()
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.decode(new[:4]) == "Yes." and new[4] == im_end


# ---------------------------------------------------------------- interruption and resume
class Interrupted(KeyboardInterrupt):
    pass


def interrupt_after_checkpoint(monkeypatch: pytest.MonkeyPatch, at_step: int) -> None:
    """Ctrl-C right after the checkpoint of `at_step` is on disk."""
    save = trainer.save_checkpoint

    def save_then_stop(accelerator: Any, folder: Path, state: dict[str, Any], keep: int = 2) -> None:
        save(accelerator, folder, state, keep)
        if state["step"] == at_step:
            raise Interrupted

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_stop)


def test_resume_continues_from_the_last_checkpoint(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    train = answer_examples(tokenizer, "Yes, it is.", n=8)
    cfg = quick(max_steps=6, save_every=2)
    reference = run_training(job(tiny_model_dir, tmp_path / "ref" / "a", train, cfg))

    out = tmp_path / "adapters" / "a"
    with monkeypatch.context() as m:
        interrupt_after_checkpoint(m, at_step=4)
        with pytest.raises(Interrupted):
            run_training(job(tiny_model_dir, out, train, cfg))
    assert not out.exists()  # nothing under the final name
    assert sorted(p.name for p in run_dir(out).iterdir()) == ["checkpoint-2", "checkpoint-4"]  # keeps two

    with pytest.raises(InputError, match=r"cannot resume 'a'.*without --resume"):
        run_training(job(tiny_model_dir, out, train[:4], cfg, resume=True))  # other data: refused
    assert not out.exists() and (run_dir(out) / "checkpoint-4").is_dir()

    record = run_training(job(tiny_model_dir, out, train, cfg, resume=True))
    results = record["results"]
    assert results["resumed_from_step"] == 4 and results["steps"] == 6
    # The same six steps as the uninterrupted run: model, optimizer, schedule and data order restored.
    assert [s for s, _ in results["train_loss"]] == [1, 2, 3, 4, 5, 6]
    assert [loss for _, loss in results["train_loss"]] == pytest.approx(
        [loss for _, loss in reference["results"]["train_loss"]], abs=1e-4
    )
    assert results["tokens"] == reference["results"]["tokens"]
    assert {p.name for p in out.iterdir()} == ADAPTER_FILES
    assert [p.name for p in out.parent.iterdir()] == ["a"]  # the run folder is gone
    resumed, ref = lora_state(out), lora_state(tmp_path / "ref" / "a")
    assert resumed.keys() == ref.keys()
    assert all(torch.allclose(resumed[k], ref[k], atol=1e-5) for k in ref)


def test_an_interrupted_run_without_resume_starts_over(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = answer_examples(tokenizer, "Yes.", n=8)
    cfg = quick(max_steps=3, save_every=1)
    out = tmp_path / "adapters" / "b"
    with monkeypatch.context() as m:
        interrupt_after_checkpoint(m, at_step=1)
        with pytest.raises(Interrupted):
            run_training(job(tiny_model_dir, out, train, cfg))
    logs: list[str] = []
    record = run_training(job(tiny_model_dir, out, train, cfg, log=logs.append))
    assert record["results"]["resumed_from_step"] is None and record["results"]["steps"] == 3
    assert any("starting over (use --resume" in line for line in logs)
    assert [p.name for p in out.parent.iterdir()] == ["b"]


@pytest.mark.parametrize("error", [RuntimeError("plot failed"), OSError(28, "No space left on device")])
def test_a_failed_write_leaves_the_previous_adapter_and_no_temp_folder(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    train = answer_examples(tokenizer, "Yes.", n=4)
    out = tmp_path / "adapters" / "c"
    run_training(job(tiny_model_dir, out, train, quick(max_steps=1)))
    first = (out / TRAINING_FILE).read_text()

    def broken(record: dict[str, Any], path: Path) -> None:
        raise error

    monkeypatch.setattr(record_module, "plot_losses", broken)
    expected = InputError if isinstance(error, OSError) else RuntimeError
    with pytest.raises(expected):
        run_training(job(tiny_model_dir, out, train, quick(max_steps=2)))
    assert (out / TRAINING_FILE).read_text() == first and {p.name for p in out.iterdir()} == ADAPTER_FILES
    assert not list(out.parent.glob(".c.tmp-*")) and not list(out.parent.glob(".c.old-*"))


def test_no_examples_is_an_input_error(tiny_model_dir: Path, tokenizer: Any, tmp_path: Path) -> None:
    out = tmp_path / "adapters" / "d"
    with pytest.raises(InputError, match="no training examples for 'd'"):
        run_training(job(tiny_model_dir, out, [], quick()))
    assert not out.exists() and not run_dir(out).exists()


def test_target_modules_all_linear_or_a_comma_list() -> None:
    assert trainer._target_modules("all-linear") == "all-linear"
    assert trainer._target_modules("q_proj, v_proj") == ["q_proj", "v_proj"]
    with pytest.raises(InputError, match="target_modules is empty"):
        trainer._target_modules(" , ")


def test_gradient_checkpointing_defaults_on_for_a_cpu(tiny_model_dir: Path) -> None:
    """None (the default) means on for a CPU, where memory is the scarce thing; CUDA decides by memory."""
    import torch

    model = trainer.load_for_training(tiny_model_dir, quick(gradient_checkpointing=None), torch.device("cpu"))
    base = model.get_base_model()
    assert base.is_activation_checkpointing and base.dtype == torch.float32
    off = trainer.load_for_training(tiny_model_dir, quick(gradient_checkpointing=False), torch.device("cpu"))
    assert not off.get_base_model().is_activation_checkpointing


def test_activation_estimate_grows_with_the_batch_and_the_model() -> None:
    from transformers import LlamaConfig

    from assistant.training.memory import activation_bytes

    small = LlamaConfig(hidden_size=576, num_hidden_layers=30, vocab_size=49152)
    big = LlamaConfig(hidden_size=2048, num_hidden_layers=22, vocab_size=32000)
    per_token = 34 * 576 * 30 + 8 * 49152
    assert activation_bytes(small, 16 * 512) == per_token * 16 * 512  # ~8 GB: fits an 80 GB GPU
    assert activation_bytes(big, 8 * 512) > activation_bytes(small, 4 * 512)
