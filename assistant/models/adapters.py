"""The adapter registry: finished adapters on disk, their typed `training.json`, and attaching one to a
loaded generator.

    from assistant.models.adapters import list_adapters, get_adapter, domain_adapters, attach
    for info in list_adapters(config): print(info.name, info.kind, info.base_spec, info.is_raft)
    newest = domain_adapters(config, "medical")[0]        # the domain's SFT adapters, newest first
    slot = attach(generator, "medical-sft", config)       # onto the loaded base, once; then generate(adapter=slot)

An adapter folder (`<home>/adapters/NAME/`) holds the peft adapter (adapter_config.json +
adapter_model.safetensors, loadable by `PeftModel.from_pretrained`), `training.json` and `loss.png`.
`training.json` is read here and only here, into an `AdapterRecord`; what it says (the domain, whether
the adapter was trained with retrieved passages, i.e. RAFT) is read from the record, never from the name.
An adapter only fits the base it was trained on: the record holds the base's fingerprint, and attaching
it to another base fails with both names. Training lives in `assistant.training` (a layer above); this
module is what answering needs. Tests: `.venv/bin/pytest tests/training/test_adapters.py -q`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import Config
from assistant.errors import ConfigError, InputError, NotFoundError, unknown

if TYPE_CHECKING:
    from assistant.models.generator import Generator

TRAINING_FILE = "training.json"
DOT = "__dot__"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InputError(
            f"adapter name '{name}' is not valid: use letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def adapter_path(config: Config, name: str) -> Path:
    return config.adapters_dir / check_name(name)


def run_dir(out_dir: Path) -> Path:
    """The hidden folder of a run in progress (checkpoints) for the adapter folder `out_dir`."""
    return out_dir.parent / f".{out_dir.name}.run"


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


# ---------------------------------------------------------------- the record (training.json)
def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class AdapterBase:
    """The base an adapter was trained on: the configured spec, the resolved folder, its fingerprint."""

    spec: str = "?"
    path: str = ""
    fingerprint: str = ""


@dataclass(frozen=True)
class AdapterData:
    """What an adapter was trained on; `with_context` is True for RAFT (`train sft --with-context`)."""

    domain: str | None = None
    corpora: tuple[str, ...] = ()
    with_context: bool = False
    train_examples: int | None = None
    selected_items: int | None = None  # QA items drawn (--max-examples / --fraction) before filtering
    leakage: Mapping[str, Any] | None = None  # what the leakage check removed


@dataclass(frozen=True)
class AdapterRecord:
    """`training.json`, typed. `from_dict` keeps the whole JSON (unknown keys included) in `raw`, so that
    `to_dict` gives back exactly what was read; the typed fields are the ones the package reads."""

    name: str
    kind: str  # "cpt" or "sft" ("?" when the record does not say)
    created: str
    base: AdapterBase
    data: AdapterData
    config: Mapping[str, Any] = field(default_factory=dict)
    results: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> AdapterRecord:
        base = _mapping(record.get("base"))
        data = _mapping(record.get("data"))
        train_examples = data.get("train_examples")
        return cls(
            name=str(record.get("name", "")),
            kind=str(record.get("kind", "?")),
            created=str(record.get("created", "")),
            base=AdapterBase(
                spec=str(base.get("spec", "?")),
                path=str(base.get("path", "")),
                fingerprint=str(base.get("fingerprint", "")),
            ),
            data=AdapterData(
                domain=data.get("domain"),
                corpora=tuple(str(c) for c in data.get("corpora") or ()),
                with_context=bool(data.get("with_context", False)),
                train_examples=int(train_examples) if isinstance(train_examples, int) else None,
                selected_items=data["selected_items"] if isinstance(data.get("selected_items"), int) else None,
                leakage=_mapping(data["leakage"]) if isinstance(data.get("leakage"), Mapping) else None,
            ),
            config=_mapping(record.get("config")),
            results=_mapping(record.get("results")),
            raw=copy.deepcopy(dict(record)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON as it was read (a copy: changing it changes nothing here)."""
        return copy.deepcopy(dict(self.raw))

    @property
    def recipe(self) -> str:
        """One of cpt, sft, or raft (an SFT adapter trained with retrieved passages)."""
        return "raft" if self.is_raft else self.kind

    @property
    def is_raft(self) -> bool:
        return self.kind == "sft" and self.data.with_context


@dataclass(frozen=True)
class AdapterInfo:
    """A finished adapter: its name, folder and typed record."""

    name: str
    path: Path
    training: AdapterRecord

    @property
    def record(self) -> dict[str, Any]:
        """`training.json` as a plain dict (what `assistant adapters show` prints)."""
        return self.training.to_dict()

    @property
    def kind(self) -> str:
        return self.training.kind

    @property
    def base_spec(self) -> str:
        return self.training.base.spec

    @property
    def base_fingerprint(self) -> str:
        return self.training.base.fingerprint

    @property
    def domain(self) -> str | None:
        return self.training.data.domain

    @property
    def with_context(self) -> bool:
        """Trained with retrieved passages in the prompt (`--with-context`): answer with rag+adapter."""
        return self.training.data.with_context

    @property
    def is_raft(self) -> bool:
        return self.training.is_raft

    @property
    def created(self) -> str:
        return self.training.created

    def summary(self) -> dict[str, Any]:
        res = self.training.results
        cfg = self.training.config
        data = _mapping(self.training.raw.get("data"))
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
            "created": self.training.raw.get("created"),
            "path": str(self.path),
        }


# ---------------------------------------------------------------- the registry
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
            if isinstance(record, dict):
                out.append(AdapterInfo(folder.name, folder, AdapterRecord.from_dict(record)))
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


def domain_adapters(config: Config, domain: str, kind: str = "sft") -> list[AdapterInfo]:
    """The finished adapters of one kind trained on `domain`'s data, newest first."""
    found = [a for a in list_adapters(config) if a.kind == kind and a.domain == domain]
    return sorted(found, key=lambda a: a.created, reverse=True)


# ---------------------------------------------------------------- attaching
def check_base(info: AdapterInfo, spec: str, folder: Path) -> None:
    """Raise when `info` was trained on a different base than the folder `spec` resolves to."""
    if info.base_fingerprint and info.base_fingerprint != base_fingerprint(folder):
        raise ConfigError(
            f"adapter '{info.name}' was trained on base '{info.base_spec}', but the loaded model is '{spec}': "
            f"set generation.model to '{info.base_spec}' or train the adapter on '{spec}'"
        )


def _check_generator_base(info: AdapterInfo, generator: Generator, config: Config) -> None:
    """The adapter was trained on the generator's base: its folder, or for a GGUF the folder converted from
    it (what training used), or failing both the same model spec. A remote model is the server's to check."""
    from assistant.models.loading import gguf_cache_folder

    path = generator.path
    if path is None:
        return
    folder = path if path.is_dir() else gguf_cache_folder(path, config.cache_dir)
    if (folder / "config.json").is_file():
        check_base(info, generator.name, folder)
    elif info.base_spec and info.base_spec != generator.name:
        raise ConfigError(
            f"adapter '{info.name}' was trained on base '{info.base_spec}', but the loaded model is "
            f"'{generator.name}': set generation.model to '{info.base_spec}' or train the adapter on it"
        )


def adapter_slot(name: str) -> str:
    """The name an adapter is attached under: torch module names cannot hold '.', adapter names can."""
    return name.replace(".", DOT)


def slot_name(slot: str) -> str:
    """The adapter name of an attached slot (the inverse of `adapter_slot`)."""
    return slot.replace(DOT, ".")


def attach(generator: Generator, name: str, config: Config) -> str:
    """Load adapter `name` onto the generator's model (once; the base is never reloaded); return the slot
    to pass as `generator.generate(..., adapter=slot)`."""
    info = get_adapter(config, name)
    slot = adapter_slot(name)
    weights = info.path / "adapter_model.safetensors"
    stamp = f"{info.path}:{weights.stat().st_mtime_ns if weights.exists() else 0}"
    with generator.lock:
        if slot in generator.adapters:
            if generator.adapter_sources.get(slot) == stamp:
                return slot
            generator.delete_adapter(slot)  # retrained (--overwrite) or another home's adapter: reload
        _check_generator_base(info, generator, config)
        try:
            generator.load_adapter(info.path, slot)
        except (OSError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot load adapter '{info.name}' from {info.path}: {first}") from None
        generator.adapter_sources[slot] = stamp
    return slot


__all__ = [
    "TRAINING_FILE",
    "AdapterBase",
    "AdapterData",
    "AdapterInfo",
    "AdapterRecord",
    "adapter_path",
    "adapter_slot",
    "attach",
    "base_fingerprint",
    "check_base",
    "check_name",
    "domain_adapters",
    "get_adapter",
    "list_adapters",
    "run_dir",
    "slot_name",
]
