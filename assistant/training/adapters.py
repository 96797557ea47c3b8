"""Trained adapters on disk: list, show, delete, merge, and attach to a loaded generator.

    from assistant.training.adapters import list_adapters, attach, merge_adapter
    for info in list_adapters(config): print(info.name, info.kind, info.base_spec)
    attach(generator, "medical-sft", config)       # onto the loaded base, once; then generate(adapter=...)
    merge_adapter(config, "medical-cpt", Path("models/medical-cpt-merged"))   # full-precision merged model

An adapter folder (`<home>/adapters/NAME/`) holds the peft adapter (adapter_config.json +
adapter_model.safetensors, loadable by `PeftModel.from_pretrained`), `training.json` and `loss.png`.
An adapter only fits the base it was trained on: `training.json` records the base's fingerprint, and
attaching it to another base fails with both names.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import Config
from assistant.errors import ConfigError, InputError, NotFoundError, unknown
from assistant.training.trainer import TRAINING_FILE, run_dir

if TYPE_CHECKING:
    from assistant.models import Generator

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InputError(
            f"adapter name '{name}' is not valid: use letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def base_fingerprint(folder: Path) -> str:
    """Identifies a base model folder: its config and the names and sizes of its weight files.

    Cheap enough to check on every attach (no hashing of gigabytes), and different for any two bases that
    an adapter could be confused between (other architecture, size or checkpoint files).
    """
    h = hashlib.sha256()
    config = folder / "config.json"
    if config.is_file():
        data = json.loads(config.read_text(encoding="utf-8"))
        for key in ("_name_or_path", "transformers_version", "torch_dtype", "dtype"):
            data.pop(key, None)
        h.update(json.dumps(data, sort_keys=True).encode())
    for weights in sorted(list(folder.glob("*.safetensors")) + list(folder.glob("*.bin"))):
        h.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    path: Path
    record: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.record.get("kind", "?"))

    @property
    def base_spec(self) -> str:
        return str(self.record.get("base", {}).get("spec", "?"))

    @property
    def base_fingerprint(self) -> str:
        return str(self.record.get("base", {}).get("fingerprint", ""))

    def summary(self) -> dict[str, Any]:
        res = self.record.get("results", {})
        cfg = self.record.get("config", {})
        data = self.record.get("data", {})
        return {
            "name": self.name,
            "kind": self.kind,
            "domain": data.get("domain"),
            "with_context": data.get("with_context", False),
            "base": self.base_spec,
            "quantize": cfg.get("quantize"),
            "steps": res.get("steps"),
            "train_examples": data.get("train_examples"),
            "final_train_loss": res.get("final_train_loss"),
            "final_val_loss": res.get("final_val_loss"),
            "wall_seconds": res.get("wall_seconds"),
            "created": self.record.get("created"),
            "path": str(self.path),
        }


def adapter_path(config: Config, name: str) -> Path:
    return config.adapters_dir / check_name(name)


def domain_adapters(config: Config, domain: str, kind: str = "sft") -> list[AdapterInfo]:
    """The finished adapters of one kind trained on `domain`'s data, newest first."""
    found = [a for a in list_adapters(config) if a.kind == kind and a.record.get("data", {}).get("domain") == domain]
    return sorted(found, key=lambda a: str(a.record.get("created", "")), reverse=True)


def list_adapters(config: Config) -> list[AdapterInfo]:
    """Finished adapters under the data home (runs in progress live in hidden folders and are not listed)."""
    out = []
    if config.adapters_dir.is_dir():
        for folder in sorted(config.adapters_dir.iterdir()):
            record_file = folder / TRAINING_FILE
            if folder.name.startswith(".") or not record_file.is_file():
                continue
            try:
                record = json.loads(record_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            out.append(AdapterInfo(folder.name, folder, record))
    return out


def get_adapter(config: Config, name: str) -> AdapterInfo:
    check_name(name)
    for info in list_adapters(config):
        if info.name == name:
            return info
    if (config.adapters_dir / name).is_dir() or run_dir(config.adapters_dir / name).is_dir():
        raise NotFoundError(
            f"adapter '{name}' has no finished training (no {TRAINING_FILE}): run `assistant train ... --name {name} --resume`"
        )
    raise unknown("adapter", name, [a.name for a in list_adapters(config)])


def delete_adapter(config: Config, name: str) -> Path:
    info = get_adapter(config, name)
    shutil.rmtree(info.path)
    shutil.rmtree(run_dir(info.path), ignore_errors=True)
    return info.path


def check_base(info: AdapterInfo, spec: str, folder: Path) -> None:
    """Raise when `info` was trained on a different base than the folder `spec` resolves to."""
    if info.base_fingerprint and info.base_fingerprint != base_fingerprint(folder):
        raise ConfigError(
            f"adapter '{info.name}' was trained on base '{info.base_spec}', but the loaded model is '{spec}': "
            f"set generation.model to '{info.base_spec}' or train the adapter on '{spec}'"
        )


DOT = "__dot__"


def adapter_slot(name: str) -> str:
    """The name an adapter is attached under: torch module names cannot hold '.', adapter names can."""
    return name.replace(".", DOT)


def slot_name(slot: str) -> str:
    return slot.replace(DOT, ".")


def attach(generator: Generator, name: str, config: Config) -> str:
    """Load adapter `name` onto the generator's model (once; the base is never reloaded); return the slot
    to pass as `generator.generate(..., adapter=slot)`."""
    info = get_adapter(config, name)
    name = adapter_slot(name)
    weights = info.path / "adapter_model.safetensors"
    stamp = f"{info.path}:{weights.stat().st_mtime_ns if weights.exists() else 0}"
    with generator.lock:
        if name in generator.adapters:
            if generator.adapter_sources.get(name) == stamp:
                return name
            generator.delete_adapter(name)  # retrained (--overwrite) or another home's adapter: reload
        if generator.path is not None:
            check_base(info, generator.name, generator.path)
        try:
            generator.load_adapter(info.path, name)
        except (OSError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot load adapter '{info.name}' from {info.path}: {first}") from None
        generator.adapter_sources[name] = stamp
    return name


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
    from assistant.models import resolve_model

    info = get_adapter(config, name)
    out = out.expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file: --out takes a folder for the merged model")
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} exists and is not empty: choose a new folder for the merged model")
    base = Path(info.record.get("base", {}).get("path", ""))
    if not (base / "config.json").is_file():
        base = resolve_model(info.base_spec, config)
    check_base(info, info.base_spec, base)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with hub.quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
            merged = PeftModel.from_pretrained(model, str(info.path)).merge_and_unload()
            tmp.mkdir(parents=True)
            merged.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        (tmp / "merged_from.json").write_text(
            json.dumps({"adapter": name, "adapter_path": str(info.path), "base": info.base_spec}, indent=2),
            encoding="utf-8",
        )
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except OSError as exc:
        raise InputError(f"could not write the merged model to {out}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
