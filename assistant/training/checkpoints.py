"""Checkpoints of a training run: where a run starts (fresh or resumed) and saving one atomically.

    from assistant.training.checkpoints import latest_checkpoint, resume_point, save_checkpoint
    checkpoint, state = resume_point(name, resume, log, folder, data_hash, world, main)  # None + a fresh state
    save_checkpoint(accelerator, folder, state)                             # folder/checkpoint-<step>/, keeps two

A run's folder (`<adapters>/.NAME.run/`) holds `checkpoint-<step>/` folders (accelerate's state plus
`run.json`, the loop's own state). Each is written to a temp folder and renamed into place, so a
kill -9 leaves the last complete one. Used by `trainer.run_training`; tests: tests/training/test_trainer.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.atomic import replace_dir
from assistant.errors import InputError

RUN_STATE = "run.json"


def fresh_state() -> dict[str, Any]:
    return {"step": 0, "epoch": 0, "batch_in_epoch": 0, "history": [], "evals": [], "tokens": 0}


def latest_checkpoint(folder: Path) -> Path | None:
    found = []
    for p in folder.glob("checkpoint-*"):
        if p.is_dir() and p.name.removeprefix("checkpoint-").isdigit() and (p / RUN_STATE).is_file():
            found.append((int(p.name.removeprefix("checkpoint-")), p))
    return max(found)[1] if found else None


def resume_point(
    name: str, resume: bool, log: Callable[[str], None], folder: Path, data_hash: str, world: int, main: bool
) -> tuple[Path | None, dict[str, Any]]:
    """(checkpoint to load or None, the loop state to start from). Without `resume` an interrupted
    run is reported and its folder removed (by the main process); a resume with other data or another
    number of processes is refused."""
    checkpoint = latest_checkpoint(folder) if folder.is_dir() else None
    if checkpoint is not None and not resume and main:
        log(f"an interrupted run of '{name}' was found ({checkpoint.name}); starting over (use --resume to continue it)")
    if resume and checkpoint is not None:
        saved = json.loads((checkpoint / RUN_STATE).read_text(encoding="utf-8"))
        if saved.get("data_hash") != data_hash or saved.get("world") != world:
            raise InputError(
                f"cannot resume '{name}': the training data or the number of processes changed since "
                f"{checkpoint.name}; run without --resume to start over"
            )
        return checkpoint, saved
    if main:
        shutil.rmtree(folder, ignore_errors=True)
    return None, fresh_state()


def save_checkpoint(accelerator: Any, folder: Path, state: dict[str, Any], keep: int = 2) -> None:
    """All processes save their part into a temp folder; the main one renames it into place."""
    # One name that every process computes alike (not atomic_dir's per-process one): all of them write
    # their shard into the same folder.
    tmp = folder / f".tmp-checkpoint-{state['step']}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / RUN_STATE).write_text(json.dumps(state), encoding="utf-8")
        replace_dir(tmp, folder / f"checkpoint-{state['step']}")
        done = sorted(
            (int(p.name.removeprefix("checkpoint-")), p)
            for p in folder.glob("checkpoint-*")
            if p.name.removeprefix("checkpoint-").isdigit()
        )
        for _, old in done[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


__all__ = ["RUN_STATE", "fresh_state", "latest_checkpoint", "resume_point", "save_checkpoint"]
