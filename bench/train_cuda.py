"""Adapter training on CUDA: the project's trainer (LoRA on the bf16 base, and QLoRA) against a plain bf16
peft loop over the same model and the same batches, measured in the same run.

    python bench/train.py --device cuda                       # runs this
    python bench/train_cuda.py --shapes smollm2-135m --steps 20

The models are randomly initialised in the shapes named (weights do not change the speed), so the bench
needs no download: `smollm2-135m` (SmolLM2-135M: 30 layers, hidden 576) at batch 16 x 512 and `llama-1.1b`
(TinyLlama-1.1B: 22 layers, hidden 2048) at batch 8 x 512, every sequence full (no padding). The plain
loop is what a peft user writes by hand: the bf16 base with SDPA attention, LoRA on every linear layer
(the project's r, alpha and dropout), AdamW, forward, backward, step. It and the trainer's LoRA run
alternately, twice each, and each figure pools both runs' steps. Rows: the trainer's default LoRA (bf16 base, gradient checkpointing
decided by memory: off here), the same with checkpointing forced on (what it costs), QLoRA. Tokens/s is
the median optimizer step after the first two (warm-up); both loops wait for the GPU at the end of every
step (the trainer reads the loss there), so the steps are timed alike.

Target: the trainer's LoRA >= 0.9x the plain loop's tokens/s. Writes bench/results/train_cuda.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results"
SHAPES: dict[str, dict[str, Any]] = {
    "smollm2-135m": {"batch": 16, "config": dict(
        hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
        vocab_size=49152, tie_word_embeddings=True)},
    "llama-1.1b": {"batch": 8, "config": dict(
        hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
        vocab_size=32000, tie_word_embeddings=False)},
    "tiny": {"batch": 4, "config": dict(  # a CPU check of this script's code paths
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=512, tie_word_embeddings=True)},
}


def make_model(shape: str, folder: Path) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(max_position_embeddings=2048, **SHAPES[shape]["config"])
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    return config


def make_examples(n: int, seq_len: int, vocab: int) -> list[Any]:
    from assistant.training.data import Example

    rng = random.Random(0)
    out = []
    for _ in range(n):
        ids = [rng.randrange(3, vocab) for _ in range(seq_len)]
        out.append(Example(input_ids=ids, labels=list(ids)))
    return out


def median_rate(stamps: list[float], tokens_per_step: int) -> tuple[float, list[float]]:
    """Tokens/s of the median step after the first two, and every step's seconds."""
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    timed = steps[2:] or steps
    return tokens_per_step / statistics.median(timed), [round(s, 4) for s in steps]


def pooled(runs: list[dict[str, Any]], tokens_per_step: int) -> dict[str, Any]:
    """One row from several runs of a configuration: the median of all their timed steps."""
    timed = [t for run in runs for t in run["step_seconds"][2:]]
    return {"tokens_per_second": tokens_per_step / statistics.median(timed),
            "runs_tokens_per_second": [run["tokens_per_second"] for run in runs],
            "step_seconds": [run["step_seconds"] for run in runs], "log": runs[-1].get("log", [])}


def plain_loop(folder: Path, examples: list[Any], batch: int, steps: int, device: str) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from assistant.config import TrainingConfig
    from assistant.training.trainer import collate

    cfg = TrainingConfig()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation="sdpa").to(device)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    stamps = [time.perf_counter()]
    for i in range(steps):
        data = {k: v.to(device) for k, v in collate(examples[i * batch : (i + 1) * batch], 0).items()}
        loss = model(**data).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        loss.item()  # the step is done on the GPU
        stamps.append(time.perf_counter())
    rate, seconds = median_rate(stamps, batch * len(examples[0].input_ids))
    return {"tokens_per_second": rate, "step_seconds": seconds}


def trainer_run(folder: Path, examples: list[Any], batch: int, steps: int, quantize: bool,
                checkpointing: bool | None = None) -> dict[str, Any]:
    from assistant.config import TrainingConfig
    from assistant.training import trainer

    stamps: list[float] = []
    batches = trainer.epoch_batches

    def timed(*args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for b in batches(*args, **kwargs):  # a batch is drawn when the step before it is done
            stamps.append(time.perf_counter())
            yield b

    trainer.epoch_batches = timed  # type: ignore[assignment]
    seq_len = len(examples[0].input_ids)
    cfg = TrainingConfig(seq_len=seq_len, batch_size=batch, max_steps=steps, epochs=100.0, quantize=quantize,
                         save_every=10_000, eval_every=10_000, warmup_steps=0, gradient_checkpointing=checkpointing)
    lines: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-train-cuda-") as tmp:
            job = trainer.TrainJob(name="bench", kind="sft", base_path=folder, base_spec=str(folder),
                                   out_dir=Path(tmp) / "bench", config=cfg, train=examples, log=lines.append)
            record = trainer.run_training(job)
    finally:
        trainer.epoch_batches = batches  # type: ignore[assignment]
    rate, seconds = median_rate(stamps, batch * seq_len)  # the last step has no next batch: not timed
    return {"tokens_per_second": rate, "step_seconds": seconds, "log": lines[-1:],
            "peak_memory_mb": record["results"].get("peak_memory_mb")}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="smollm2-135m,llama-1.1b", help=f"comma-separated: {', '.join(SHAPES)}")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per configuration (default 20)")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--json", type=Path, default=RESULTS / "train_cuda.json")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        print("no CUDA device: running on the CPU (a check of the code paths, not a measurement)", file=sys.stderr)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    results: dict[str, Any] = {"device": gpu, "steps": args.steps, "seq_len": args.seq_len, "shapes": {}}
    for shape in args.shapes.split(","):
        batch = SHAPES[shape]["batch"]
        with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
            config = make_model(shape, Path(tmp))
            examples = make_examples(batch * args.steps + batch, args.seq_len, config.vocab_size)
            # the plain loop and the trainer's LoRA alternate, twice each (the GPU's clocks ramp up and a
            # shared host is noisy): each figure is the median of both runs' timed steps
            pairs: dict[str, list[dict[str, Any]]] = {"plain bf16 loop": [], "trainer LoRA": []}
            for _ in range(2):
                pairs["plain bf16 loop"].append(plain_loop(Path(tmp), examples, batch, args.steps, device))
                pairs["trainer LoRA"].append(trainer_run(Path(tmp), examples, batch, args.steps, False))
            rows = {name: pooled(runs, batch * args.seq_len) for name, runs in pairs.items()}
            if device == "cuda":
                for name, quantize, checkpointing in (("trainer LoRA + ckpt", False, True), ("trainer QLoRA", True, None)):
                    torch.cuda.empty_cache()
                    try:
                        rows[name] = trainer_run(Path(tmp), examples, batch, args.steps, quantize, checkpointing)
                    except Exception as exc:  # one configuration failing (e.g. bitsandbytes) does not hide the rest
                        rows[name] = {"error": f"{type(exc).__name__}: {exc}", "tokens_per_second": float("nan")}
        plain = rows["plain bf16 loop"]["tokens_per_second"]
        print(f"\n{shape} on {gpu}, batch {batch} x {args.seq_len}, {args.steps} steps (median step after 2)")
        for name, row in rows.items():
            row["ratio_to_plain"] = row["tokens_per_second"] / plain
            print(f"  {name:18} {row['tokens_per_second']:10.0f} tokens/s  {row['ratio_to_plain']:.2f}x plain")
        print(f"  trainer LoRA / plain loop: {rows['trainer LoRA']['ratio_to_plain']:.2f}x  (target >= 0.9x)")
        results["shapes"][shape] = {"batch": batch, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
