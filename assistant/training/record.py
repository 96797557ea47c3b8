"""What a finished training run writes: `training.json` (the record), `loss.png`, and the adapter folder.

    from assistant.training.record import adapter_record, write_adapter
    record = adapter_record(job, state, ...)           # the dict training.json holds
    write_adapter(peft_model, record, out_dir)         # written aside, renamed into place

The adapter folder is written to a temp folder beside `<adapters>/NAME/` and renamed over it only when
complete, so a failed or interrupted write leaves the previous adapter (or none) and no temp folder.
The record's reader is `assistant.models.adapters.AdapterRecord`. Tests: tests/training/test_trainer.py.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from assistant.atomic import atomic_dir
from assistant.config import TrainingConfig
from assistant.errors import InputError
from assistant.models.adapters import TRAINING_FILE

LOSS_PLOT = "loss.png"


def adapter_record(
    *,
    name: str,
    kind: str,
    base_spec: str,
    base_path: Path,
    base_fingerprint: str,
    cfg: TrainingConfig,
    data: dict[str, Any],
    state: dict[str, Any],
    resumed_from_step: int,
    per_epoch: int,
    world: int,
    tokens_at_start: int,
    wall: float,
    n_params: int,
    device: str,
) -> dict[str, Any]:
    """What training.json records: the base, the config, the data and the results of the run."""
    return {
        "name": name,
        "kind": kind,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "base": {"spec": base_spec, "path": str(base_path), "fingerprint": base_fingerprint},
        "config": asdict(cfg),
        "data": data,
        "results": {
            "steps": state["step"],
            "epochs": round(state["step"] * cfg.grad_accum * world / max(1, per_epoch * world), 3),
            "final_train_loss": state["history"][-1][1] if state["history"] else None,
            "first_train_loss": state["history"][0][1] if state["history"] else None,
            "final_val_loss": state["evals"][-1][1] if state["evals"] else None,
            "train_loss": state["history"],
            "val_loss": state["evals"],
            "tokens": state["tokens"],
            "tokens_per_second": round((state["tokens"] - tokens_at_start) / wall, 1) if wall > 0 else None,
            "wall_seconds": round(wall, 1),
            "resumed_from_step": resumed_from_step or None,
            "peak_memory_mb": peak_memory_mb(),
        },
        "trainable_parameters": n_params,
        "processes": world,
        "device": device,
        "versions": versions(),
    }


def write_adapter(model: Any, record: dict[str, Any], out_dir: Path) -> None:
    """The peft adapter, training.json and loss.png, written aside and renamed to `out_dir`."""
    try:
        with atomic_dir(out_dir) as tmp:
            model.save_pretrained(tmp)
            (tmp / TRAINING_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
            plot_losses(record, tmp / LOSS_PLOT)
    except OSError as exc:
        raise InputError(f"could not write the adapter to {out_dir}: {exc}") from None


def peak_memory_mb() -> float:
    import resource

    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("torch", "transformers", "peft", "bitsandbytes", "accelerate"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def plot_losses(record: dict[str, Any], path: Path) -> None:
    """Training and validation loss against the step, as a PNG next to the adapter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = record["results"]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if res["train_loss"]:
        steps, losses = zip(*res["train_loss"], strict=True)
        ax.plot(steps, losses, label="train", color="tab:blue", alpha=0.8)
    if res["val_loss"]:
        steps, losses = zip(*res["val_loss"], strict=True)
        ax.plot(steps, losses, "o-", label="validation", color="tab:orange")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (cross-entropy per token)")
    quant = "QLoRA 4-bit" if record["config"]["quantize"] else "LoRA"
    ax.set_title(f"{record['name']} ({record['kind']}, {quant}) on {record['base']['spec']}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = ["LOSS_PLOT", "adapter_record", "peak_memory_mb", "plot_losses", "versions", "write_adapter"]
