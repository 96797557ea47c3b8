"""One trainer for continued pretraining and instruction tuning: (Q)LoRA on a causal LM, with accelerate.

    from assistant.training.trainer import TrainJob, run_training
    run_training(TrainJob(name="medical-sft", kind="sft", base_path=folder, base_spec=spec,
                          out_dir=adapters/"medical-sft", config=TrainingConfig(), train=examples, val=val))

CPT and SFT differ only in their examples (packed blocks with labels on every token, or chat examples
with labels on the answer): the model, the loop, the checkpoints and the outputs are the same.

The run is written to `<adapters>/.NAME.run/` (checkpoints every `save_every` steps, each written to a
temp folder and renamed, so a kill -9 leaves the last complete one: `checkpoints`) and only the finished
adapter is renamed to `<adapters>/NAME/` (`record`): a failed run never leaves a half-written adapter
under its final name.
`accelerate launch --multi_gpu --num_processes 2 ...` runs the same code as data parallel (torchrun under the
hood; gloo on a CPU-only machine). Not `--cpu --num_processes 2`: accelerate 1.x then starts one process.
"""

from __future__ import annotations

import math
import random
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from assistant.config import TrainingConfig
from assistant.errors import InputError
from assistant.models.adapters import TRAINING_FILE, run_dir
from assistant.training.checkpoints import RUN_STATE, latest_checkpoint, resume_point, save_checkpoint
from assistant.training.data import IGNORE, Example
from assistant.training.memory import needs_checkpointing
from assistant.training.record import LOSS_PLOT, adapter_record, peak_memory_mb, plot_losses, write_adapter

Kind = Literal["cpt", "sft"]


@dataclass
class TrainJob:
    name: str
    kind: Kind
    base_path: Path  # a local transformers folder (the resolved base model)
    base_spec: str  # what the user configured, e.g. "embedded:SmolLM2-135M-Instruct"
    out_dir: Path  # the adapter's final folder
    config: TrainingConfig
    train: Sequence[Example]
    val: Sequence[Example] = ()
    data: dict[str, Any] = field(default_factory=dict)  # counts, hashes, stats: copied into training.json
    base_fingerprint: str = ""
    resume: bool = False
    pad_token_id: int = 0
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True)


def data_hash(examples: Sequence[Example]) -> str:
    import hashlib

    h = hashlib.sha256()
    for ex in examples:
        h.update(len(ex.input_ids).to_bytes(4, "little"))
        h.update(",".join(map(str, ex.input_ids)).encode())
        h.update(b"|")
        h.update(",".join(map(str, ex.labels)).encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- batches
def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of indices whose members have similar lengths (less padding), in random order.

    Indices are shuffled, cut into mega-batches of 50 batches, sorted by length inside each, then the
    batches are shuffled: randomness across the epoch, little padding inside a batch.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        group = sorted(order[start : start + mega], key=lambda i: lengths[i], reverse=True)
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: Sequence[Example], pad_token_id: int) -> dict[str, Any]:
    """Right-padded tensors; padding has attention 0 and label IGNORE (so a pad equal to EOS never hides
    the real EOS, which is a label inside `labels`)."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


# ---------------------------------------------------------------- model
def load_for_training(base_path: Path, config: TrainingConfig, device: Any, *, tokens_per_batch: int = 0) -> Any:
    """The base in 4-bit NF4 (QLoRA), else in fp32 on a CPU and bf16 on CUDA, with LoRA on every linear
    layer; only LoRA weights train (peft keeps them in fp32). Attention runs through torch's SDPA kernels.
    `tokens_per_batch` sizes the activations, to decide gradient checkpointing (training.memory)."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from assistant import hub

    cuda = device.type == "cuda"
    # fp32 on CPUs: bf16 matmuls are slow on CPUs without AMX; on CUDA bf16 runs on the tensor cores.
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True, "attn_implementation": "sdpa"}
    if config.quantize:  # bitsandbytes quantizes while loading onto the device; else the trainer moves the model
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        kwargs["device_map"] = {"": device}
    with hub.quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(base_path, **kwargs)
    # peft calls transformers' gradient_checkpointing_enable, deprecated in favour of a new name
    warnings.filterwarnings("ignore", message=".*(gradient_checkpointing|is_gradient_checkpointing).*deprecated", category=FutureWarning)
    model.config.use_cache = False  # no KV cache while training (and required by gradient checkpointing)
    checkpointing = config.gradient_checkpointing
    if checkpointing is None:  # on a CPU memory is the scarce thing; on CUDA recompute only when it must
        checkpointing = not cuda or needs_checkpointing(model, tokens_per_batch, device)
    ckpt_kwargs = {"use_reentrant": False}  # the non-reentrant variant works with DDP and frozen inputs
    if config.quantize:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=checkpointing,
            gradient_checkpointing_kwargs=ckpt_kwargs,
        )
    elif checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt_kwargs)
        model.enable_input_require_grads()
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=_target_modules(config.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _target_modules(spec: str) -> str | list[str]:
    """peft reads a string as "all-linear" or a regex; a comma list names modules ("q_proj,v_proj")."""
    if spec == "all-linear":
        return spec
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise InputError("training.target_modules is empty: use all-linear or module names like q_proj,v_proj")
    return names


# ---------------------------------------------------------------- the loop
def epoch_batches(
    examples: Sequence[Example], batch_size: int, seed: int, epoch: int, pad: int, rank: int, world: int
) -> Iterator[dict[str, Any]]:
    """This process's share of an epoch's batches (each process takes every world-th batch)."""
    order = length_grouped_batches([len(e.input_ids) for e in examples], batch_size, seed + epoch)
    usable = len(order) - len(order) % world if world > 1 else len(order)
    for i in range(rank, usable, world):
        yield collate([examples[j] for j in order[i]], pad)


def batches_per_epoch(n_examples: int, batch_size: int, world: int) -> int:
    n = math.ceil(n_examples / batch_size)
    return n // world if world > 1 else n


def evaluate(model: Any, accelerator: Any, examples: Sequence[Example], batch_size: int, pad: int) -> float | None:
    """Mean loss per label token over the validation examples (all processes together)."""
    import torch

    if not examples:
        return None
    # The bare model, not the DDP wrapper: DDP's forward broadcasts buffers (a collective), and the
    # processes may hold different numbers of validation batches; only the final reduce is shared.
    model = accelerator.unwrap_model(model)
    model.eval()
    total = torch.zeros(2, device=accelerator.device)
    world, rank = accelerator.num_processes, accelerator.process_index
    with torch.no_grad():
        for start in range(rank * batch_size, len(examples), batch_size * world):
            batch = {k: v.to(accelerator.device) for k, v in collate(examples[start : start + batch_size], pad).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            shift_logits = logits[:, :-1].float()
            shift_labels = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=IGNORE, reduction="sum"
            )
            total += torch.stack([loss, (shift_labels != IGNORE).sum().float()])
    model.train()
    total = accelerator.reduce(total, reduction="sum")
    return float(total[0] / total[1]) if total[1] > 0 else None


def run_training(job: TrainJob) -> dict[str, Any]:
    """Train, checkpoint, and write the adapter folder; returns what training.json records."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    cfg = job.config
    if not job.train:
        raise InputError(f"no training examples for '{job.name}' after filtering: nothing to train on")
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), gradient_accumulation_steps=cfg.grad_accum)
    main = accelerator.is_main_process
    world, rank = accelerator.num_processes, accelerator.process_index
    if accelerator.device.type == "cuda":  # the recorded peak is this run's, also in a process that trains several
        torch.cuda.reset_peak_memory_stats(accelerator.device)
    set_seed(cfg.seed)
    folder = run_dir(job.out_dir)
    fingerprint = data_hash(job.train)

    # ---- where to start
    checkpoint, start_state = resume_point(job.name, job.resume, job.log, folder, fingerprint, world, main)
    accelerator.wait_for_everyone()
    if main:
        folder.mkdir(parents=True, exist_ok=True)

    # ---- model, optimizer, schedule
    model = load_for_training(job.base_path, cfg, accelerator.device, tokens_per_batch=cfg.batch_size * cfg.seq_len)
    if not cfg.quantize:  # on the device before the optimizer sees its parameters (a 4-bit base is there already)
        model.to(accelerator.device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    # on CUDA one fused kernel updates all the LoRA tensors (hundreds of small ones) per step
    fused = accelerator.device.type == "cuda"
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=fused)
    per_epoch = batches_per_epoch(len(job.train), cfg.batch_size, world)
    if per_epoch == 0:
        raise InputError(f"{len(job.train)} examples are fewer than one batch per process ({cfg.batch_size} x {world})")
    steps_per_epoch = max(1, per_epoch // cfg.grad_accum)
    total_steps = max(1, min(cfg.max_steps, math.floor(cfg.epochs * steps_per_epoch) or 1))
    scheduler = get_scheduler(
        "cosine", optimizer, num_warmup_steps=min(cfg.warmup_steps, total_steps // 10), num_training_steps=total_steps
    )
    # The scheduler is stepped by hand once per optimizer step: accelerate's wrapper would step it once per
    # process, and total_steps already counts per-process steps. Registered, it is still checkpointed.
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        if main:
            job.log(f"resuming '{job.name}' from {checkpoint.name} (step {start_state['step']} of {total_steps})")

    n_params = sum(p.numel() for p in trainable)
    base_dtype = str(next((p.dtype for p in model.parameters() if not p.requires_grad), "?")).removeprefix("torch.")
    if main:
        tokens = sum(len(e.input_ids) for e in job.train)
        job.log(
            f"training '{job.name}' ({job.kind}, {'QLoRA 4-bit NF4' if cfg.quantize else 'LoRA ' + base_dtype}, r={cfg.lora_r}) "
            f"on {job.base_spec}: {len(job.train)} examples ({tokens:,} tokens), {len(job.val)} validation; "
            f"{total_steps} steps x {cfg.batch_size * cfg.grad_accum * world} sequences of <= {cfg.seq_len} tokens; "
            f"{n_params:,} trainable parameters; {world} process(es) on {accelerator.device}, gradient checkpointing "
            f"{'on' if _checkpointing(accelerator.unwrap_model(model)) else 'off'}"
        )

    # ---- loop
    state = dict(start_state)
    state.update(data_hash=fingerprint, world=world, total_steps=total_steps)
    model.train()
    bar = tqdm(total=total_steps, initial=state["step"], desc=job.name, unit="step", disable=not main, dynamic_ncols=True)
    started = time.perf_counter()
    tokens_at_start = state["tokens"]
    window_loss: list[float] = []
    first_step_at: float | None = None
    while state["step"] < total_steps:
        batches = epoch_batches(job.train, cfg.batch_size, cfg.seed, state["epoch"], job.pad_token_id, rank, world)
        for i, batch in enumerate(batches):
            if i < state["batch_in_epoch"]:
                continue  # resumed mid-epoch: the same seeded order, skip what was trained
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            # one reduce and one device sync per batch: the loss (averaged over processes) and the tokens
            both = torch.stack([loss.detach().float(), batch["attention_mask"].sum().float()])
            loss_sum, n_tok = accelerator.reduce(both, reduction="sum").tolist()
            state["tokens"] += int(n_tok)
            window_loss.append(loss_sum / world)
            state["batch_in_epoch"] = i + 1
            if not accelerator.sync_gradients:
                continue
            state["step"] += 1
            step_loss = sum(window_loss) / len(window_loss)
            window_loss.clear()
            state["history"].append([state["step"], round(step_loss, 5)])
            elapsed = time.perf_counter() - started
            tok_s = (state["tokens"] - tokens_at_start) / elapsed if elapsed > 0 else 0.0
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{tok_s:.0f}")
            if first_step_at is None:
                first_step_at = elapsed
                if main and total_steps - state["step"] > 1:
                    est = first_step_at * (total_steps - state["step"])
                    bar.write(f"first step took {first_step_at:.1f} s: about {est / 60:.0f} min for the remaining {total_steps - state['step']} steps")
            if cfg.eval_every and (state["step"] % cfg.eval_every == 0 or state["step"] == total_steps) and job.val:
                val_loss = evaluate(model, accelerator, job.val, cfg.batch_size, job.pad_token_id)
                if val_loss is not None:
                    state["evals"].append([state["step"], round(val_loss, 5)])
                    if main:
                        bar.write(f"step {state['step']}: train loss {step_loss:.4f}, validation loss {val_loss:.4f}")
            if state["step"] % cfg.save_every == 0 and state["step"] < total_steps:
                save_checkpoint(accelerator, folder, state)
            if state["step"] >= total_steps:
                break
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
            continue
    bar.close()
    wall = time.perf_counter() - started

    # ---- the adapter folder: written aside, renamed into place
    accelerator.wait_for_everyone()
    record: dict[str, Any] = {}
    if main:
        record = adapter_record(
            name=job.name,
            kind=job.kind,
            base_spec=job.base_spec,
            base_path=job.base_path,
            base_fingerprint=job.base_fingerprint,
            cfg=cfg,
            data={**job.data, "train_examples": len(job.train), "val_examples": len(job.val), "data_hash": fingerprint},
            state=state,
            resumed_from_step=start_state["step"],
            per_epoch=per_epoch,
            world=world,
            tokens_at_start=tokens_at_start,
            wall=wall,
            n_params=n_params,
            device=str(accelerator.device),
        )
        write_adapter(accelerator.unwrap_model(model), record, job.out_dir)
        shutil.rmtree(folder, ignore_errors=True)
    accelerator.wait_for_everyone()
    return record


def _checkpointing(model: Any) -> bool:
    """Whether the model recomputes activations (the property's name changed in transformers 5.x)."""
    found = getattr(model, "is_activation_checkpointing", None)
    return bool(getattr(model, "is_gradient_checkpointing", False) if found is None else found)


__all__ = [
    "LOSS_PLOT",
    "RUN_STATE",
    "TRAINING_FILE",
    "Kind",
    "TrainJob",
    "batches_per_epoch",
    "collate",
    "data_hash",
    "epoch_batches",
    "evaluate",
    "latest_checkpoint",
    "length_grouped_batches",
    "load_for_training",
    "peak_memory_mb",
    "plot_losses",
    "run_dir",
    "run_training",
    "save_checkpoint",
]
