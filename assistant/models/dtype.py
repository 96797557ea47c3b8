"""Which dtype the transformers backend loads weights in, for the machine at hand.

    dtype = choose_dtype(config.generation.dtype, folder, config.cache_dir)   # "float32" or "bfloat16"

CUDA: bf16. A CPU: bf16 matmuls are fast only with AMX or AVX-512-BF16 (an Intel Xeon with AMX prefills
~4x faster in bf16) and far slower without (an AMD EPYC), so `auto` picks bf16 only where the CPU has those
and a quick check (one 256-token forward pass in each dtype) shows it faster. The outcome is kept in
`<cache>/dtype.json` per CPU model, torch version and model folder, so the check runs once per machine
(again at the next load when other processes kept the cores busy during it: models/measured.py), in a
child process: the fp32 copy it times would otherwise set the app's peak memory (~0.5 GB for the embedded
model) for good.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from assistant.models import measured

BF16_FLAGS = ("amx_bf16", "avx512_bf16")
CHOICES_FILE = "dtype.json"
MARGIN = 1.2  # bf16 must be this much faster to be chosen: fp32 is the exact reference


def cpu_model_and_flags() -> tuple[str, set[str]]:
    """The CPU's model name and feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    name, flags = platform.processor() or platform.machine(), set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return name, flags


def _key(folder: Path) -> str:
    import torch

    return f"{cpu_model_and_flags()[0]} | torch {torch.__version__} | {Path(folder).resolve()}"


def recorded_choice(folder: Path, cache_dir: Path, *, busy_too: bool = False) -> dict[str, Any] | None:
    """The choice kept for `folder` on this machine; None when there is none or it was measured while other
    processes kept the cores busy (models/measured.py), unless `busy_too`."""
    return measured.recorded(cache_dir, CHOICES_FILE, _key(folder), busy_too=busy_too)


def forward_seconds(model: Any, tokens: int = 256) -> float:
    """The faster of two forward passes over `tokens` tokens (after one warm-up)."""
    import torch

    ids = torch.randint(0, int(model.config.vocab_size), (1, tokens), generator=torch.Generator().manual_seed(0))
    best = float("inf")
    with torch.inference_mode():
        for _ in range(3):
            start = time.perf_counter()
            model(input_ids=ids, logits_to_keep=1)
            best = min(best, time.perf_counter() - start)
    return best


def choose_dtype(setting: str, folder: Path, cache_dir: Path, load: Any) -> tuple[str, Any]:
    """(dtype, (model, tokenizer)) for `setting` ("auto", "float32", "bfloat16"); `load(dtype)` loads the
    model folder in a dtype. With "auto" on a CPU with bf16 units, both are timed once and the faster kept."""
    import torch

    if setting != "auto":
        return setting, load(setting)
    if torch.cuda.is_available():
        return "bfloat16", load("bfloat16")
    if not has_bf16_units():
        return "float32", load("float32")
    known = recorded_choice(folder, cache_dir) or _check_in_child(folder, cache_dir)
    if known and known.get("dtype") in ("float32", "bfloat16"):
        return str(known["dtype"]), load(known["dtype"])
    model, tokenizer = load("float32")  # the child could not check: here, at the cost of an fp32 copy
    dtype = str(_check(folder, cache_dir, model)["dtype"])
    if dtype == "float32":
        model, tokenizer = load("float32")  # cast back from bf16 would lose precision: reload
    return dtype, (model, tokenizer)


def _check(folder: Path, cache_dir: Path, model: Any) -> dict[str, Any]:
    """Time `model` (fp32) in fp32 and then in bf16 (cast in place); record and return the choice."""
    import torch

    with measured.OtherLoad() as others:
        fp32 = forward_seconds(model)
        model.to(torch.bfloat16)
        bf16 = forward_seconds(model)
    choice = {"dtype": "bfloat16" if bf16 * MARGIN < fp32 else "float32", "fp32_prefill_s": round(fp32, 4),
              "bf16_prefill_s": round(bf16, 4), "measured": time.strftime("%Y-%m-%d %H:%M"), **others.fields()}
    measured.record(cache_dir, CHOICES_FILE, _key(folder), choice)
    return choice


def _check_in_child(folder: Path, cache_dir: Path) -> dict[str, Any] | None:
    """The check in a child process, so that the fp32 copy it times never adds to this process's peak
    memory (the app keeps only the dtype chosen); None if the child fails."""
    done = measured.in_child("assistant.models.dtype", str(folder), str(cache_dir))
    return recorded_choice(folder, cache_dir, busy_too=True) if done else None


def has_bf16_units() -> bool:
    return bool(set(BF16_FLAGS) & cpu_model_and_flags()[1])


__all__ = ["BF16_FLAGS", "choose_dtype", "cpu_model_and_flags", "forward_seconds", "recorded_choice"]


if __name__ == "__main__":  # the child of _check_in_child: python -m assistant.models.dtype FOLDER CACHE_DIR
    import sys

    from assistant.models.loading import load_folder

    _check(Path(sys.argv[1]), Path(sys.argv[2]), load_folder(Path(sys.argv[1]), "float32")[0])
