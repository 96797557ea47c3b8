"""Trained adapters on disk, the training side: delete and merge. Listing, reading and attaching live in
the model layer (`assistant.models.adapters`) and are re-exported here for existing callers.

    from assistant.training.adapters import delete_adapter, merge_adapter
    delete_adapter(config, "old-sft")                                           # its folder and any run folder
    merge_adapter(config, "medical-cpt", Path("models/medical-cpt-merged"))   # full-precision merged model

A merged model is a plain transformers folder (base + LoRA deltas, fp32) that serving engines load, or
the base of a next adapter. Tests: `.venv/bin/pytest tests/training/test_adapters.py -q`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from assistant.atomic import atomic_dir
from assistant.config import Config
from assistant.errors import InputError
from assistant.models.adapters import AdapterInfo, check_base, get_adapter, run_dir


def delete_adapter(config: Config, name: str) -> Path:
    info = get_adapter(config, name)
    shutil.rmtree(info.path)
    shutil.rmtree(run_dir(info.path), ignore_errors=True)
    return info.path


def base_folder(config: Config, info: AdapterInfo) -> Path:
    """The full-precision transformers folder `info` was trained on: the one its record names, re-resolved
    from its spec when that folder has moved; checked against the adapter's fingerprint."""
    from assistant.models import resolve_model

    base = Path(info.training.base.path)
    if not (base / "config.json").is_file():
        base = resolve_model(info.base_spec, config)
    check_base(info, info.base_spec, base)
    return base


def merge_adapter(config: Config, name: str, out: Path) -> Path:
    """Write base + adapter merged into one full-precision model folder (never merged into a 4-bit base).

    The base is loaded in fp32 from the folder the adapter was trained on (re-resolved from its spec when
    that folder has moved), the LoRA deltas are added to its weights, and the result is saved with the
    tokenizer: a plain transformers folder that serving engines load, or the base of a next adapter.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from assistant import hub

    info = get_adapter(config, name)
    out = out.expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file: --out takes a folder for the merged model")
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} exists and is not empty: choose a new folder for the merged model")
    base = base_folder(config, info)
    try:
        # Written aside and renamed into place (replacing the empty folder, if any): a failed merge
        # leaves no half-written model under `out`.
        with atomic_dir(out) as tmp, hub.quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
            merged = PeftModel.from_pretrained(model, str(info.path)).merge_and_unload()
            merged.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / "merged_from.json").write_text(
                json.dumps({"adapter": name, "adapter_path": str(info.path), "base": info.base_spec}, indent=2),
                encoding="utf-8",
            )
    except OSError as exc:
        raise InputError(f"could not write the merged model to {out}: {exc}") from None
    return out


__all__ = ["base_folder", "delete_adapter", "merge_adapter"]
