"""Adapters out to the engines that serve them: a GGUF LoRA (llama.cpp, Ollama's `ADAPTER`), a merged
full-precision model folder, a folder vLLM loads as a LoRA module, an Ollama Modelfile.

    from assistant.training.export import write_export, read_export
    export = write_export(config, "medical-sft", "gguf", Path("exports/medical-sft-gguf"))
    print(export.serve)                      # the command line that serves it
    export = read_export(export.path)        # the same Export, from the folder's export.json

Every folder gets `export.json` (format, adapter, base, files, the serve line). The folder is written
aside and renamed into place, so a failed export leaves nothing half-written. Whether the export answers
as the adapter does is checked a layer up (`assistant.jobs.export`). The GGUF LoRA is the conversion the
llamacpp backend uses (models/gguf_lora.py); `merged` is `merge_adapter` (the base in fp32, never 4-bit);
Ollama's chat TEMPLATE is written only for a chat format the base's own template matches (training/ollama.py).
Tests: `.venv/bin/pytest tests/training/test_export.py -q`.
"""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.atomic import atomic_dir
from assistant.config import Config
from assistant.errors import ConfigError, InputError
from assistant.models.adapters import AdapterInfo, get_adapter
from assistant.models.gguf_lora import FILE as LORA_FILE
from assistant.models.gguf_lora import GGUFBase, write_lora_gguf
from assistant.training.adapters import base_folder, merge_adapter
from assistant.training.ollama import match_chat_format

FORMATS = ("gguf", "merged", "vllm", "ollama")
EXPORT_FILE = "export.json"
# vLLM accepts these values of --max-lora-rank (its default is 16)
VLLM_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


@dataclass(frozen=True)
class Export:
    """One exported adapter: where it is, what it was made from, and how to serve it."""

    adapter: str
    format: str
    path: Path
    base_spec: str
    base_folder: str  # the full-precision transformers folder the adapter was trained on
    base_gguf: str | None  # gguf / ollama: the base GGUF the LoRA is applied to
    files: tuple[str, ...]
    serve: str
    notes: tuple[str, ...] = ()
    created: str = ""

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InputError(f"unknown export format '{self.format}' (known: {', '.join(FORMATS)})")

    @property
    def lora_gguf(self) -> Path:
        """The GGUF LoRA file of a gguf / ollama export."""
        return self.path / LORA_FILE

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["files"], data["notes"] = list(self.files), list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Export:
        return cls(**{**data, "path": Path(data["path"]), "files": tuple(data.get("files") or ()),
                      "notes": tuple(data.get("notes") or ())})


def read_export(folder: Path) -> Export:
    """The Export recorded in `folder/export.json` (its path: where the folder is now)."""
    try:
        data = json.loads((Path(folder) / EXPORT_FILE).read_text(encoding="utf-8"))
        return Export.from_dict({**data, "path": Path(folder).resolve()})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{folder} is not an adapter export (no readable {EXPORT_FILE}: {exc})") from None


# ---------------------------------------------------------------- checks on the input
def check_out(out: Path, info: AdapterInfo, config: Config, overwrite: bool) -> Path:
    """`out` resolved, or an InputError: a file, a folder with files in it (unless `overwrite`), or a
    folder that holds the adapter or the data home (never replaced, whatever the flag says)."""
    out = out.expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file: --out takes a folder for the export")
    for precious in (info.path.resolve(), config.home.resolve()):
        if precious == out or precious.is_relative_to(out) or out.is_relative_to(info.path.resolve()):
            raise InputError(f"--out {out} would replace or write into {precious}: choose a folder of its own")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out} exists and is not empty: pass --overwrite to replace it, or choose another --out")
    return out


def base_gguf(info: AdapterInfo, given: Path | None = None) -> Path:
    """The base model as a GGUF file for a GGUF LoRA: `given`, else the GGUF the adapter's base spec names."""
    from assistant.models import find_gguf

    if given is not None:
        given = given.expanduser().resolve()
        if not given.is_file() or given.suffix.lower() != ".gguf":
            raise InputError(f"--base-gguf {given} is not a .gguf file")
        return given
    found = find_gguf(info.base_spec)
    if found is None:
        raise InputError(
            f"adapter '{info.name}' was trained on '{info.base_spec}', a transformers folder with no GGUF: "
            "a GGUF LoRA is applied to a GGUF of the same base, so convert the base (llama.cpp's "
            "convert_hf_to_gguf.py) and pass it as --base-gguf FILE, or export --to merged / vllm"
        )
    return found


def gguf_metadata(path: Path) -> dict[str, str]:
    """The key-value metadata of a GGUF file as strings (arrays and the vocabulary left out)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the GGUF {path}: {exc}") from None
    out: dict[str, str] = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.ggml.") and key.endswith(("tokens", "scores", "token_type", "merges")):
            continue
        try:
            value = field.contents()
        except (ValueError, IndexError, TypeError):
            continue
        if isinstance(value, (str, int, float)):
            out[key] = str(value)
    return out


# ---------------------------------------------------------------- the formats
def _serve_llamacpp(gguf: Path, lora: Path) -> str:
    return f"llama-server -m {shlex.quote(str(gguf))} --lora {shlex.quote(str(lora))}"


def _write_gguf(tmp: Path, info: AdapterInfo, gguf: Path, final: Path) -> tuple[str, list[str]]:
    write_lora_gguf(info.path, GGUFBase.from_metadata(gguf_metadata(gguf)), tmp / LORA_FILE)
    return _serve_llamacpp(gguf, final / LORA_FILE), []


def _write_merged(tmp: Path, info: AdapterInfo, config: Config, final: Path) -> tuple[str, list[str]]:
    merge_adapter(config, info.name, tmp)
    return f"vllm serve {shlex.quote(str(final))}", []


def vllm_rank(rank: int) -> int:
    """The smallest `--max-lora-rank` vLLM accepts that holds an adapter of rank `rank`."""
    for allowed in VLLM_RANKS:
        if rank <= allowed:
            return allowed
    raise ConfigError(f"LoRA rank {rank} is above what vLLM serves (--max-lora-rank at most {VLLM_RANKS[-1]})")


def _write_vllm(tmp: Path, info: AdapterInfo, base: Path, final: Path) -> tuple[str, list[str]]:
    try:
        settings = json.loads((info.path / "adapter_config.json").read_text(encoding="utf-8"))
        shutil.copy2(info.path / "adapter_model.safetensors", tmp / "adapter_model.safetensors")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the peft adapter in {info.path}: {exc}") from None
    settings["base_model_name_or_path"] = str(base)  # the exact weights it was trained on, which vllm serves
    (tmp / "adapter_config.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    notes = []
    if settings.get("modules_to_save"):
        notes.append(f"the adapter also saves whole modules ({settings['modules_to_save']}), which vLLM LoRA ignores")
    name = info.name
    line = (f"vllm serve {shlex.quote(str(base))} --enable-lora --max-lora-rank {vllm_rank(int(settings.get('r', 8)))} "
            f"--lora-modules {shlex.quote(f'{name}={final}')}")
    (tmp / "serve.sh").write_text(f"#!/bin/sh\n# Serve adapter {name} with vLLM's OpenAI-compatible server; requests "
                                  f"name model \"{name}\".\nexec {line} \"$@\"\n", encoding="utf-8")
    (tmp / "serve.sh").chmod(0o755)
    (tmp / "README.md").write_text(
        f"# {name} for vLLM\n\nThe peft LoRA adapter `{name}` as a vLLM LoRA module, trained on `{info.base_spec}` "
        f"(the full-precision weights in `{base}`, which `base_model_name_or_path` names).\n\n"
        f"```sh\n{line}\n```\n\n(or `./serve.sh`). Then send `\"model\": \"{name}\"` to "
        "`http://localhost:8000/v1/chat/completions`; the base answers as its own name. To serve another copy of "
        "the same base weights, replace the first path. Prompts: the domain's instruction as the system message, "
        "the question as the user message, as the adapter was trained.\n", encoding="utf-8")
    return line, notes


def _write_ollama(tmp: Path, info: AdapterInfo, gguf: Path, base: Path, instruction: str,
                  final: Path) -> tuple[str, list[str]]:
    from transformers import AutoTokenizer

    from assistant import hub

    write_lora_gguf(info.path, GGUFBase.from_metadata(gguf_metadata(gguf)), tmp / LORA_FILE)
    with hub.quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    chat = match_chat_format(getattr(tokenizer, "chat_template", None), tokenizer.apply_chat_template)
    lines = [f"# {info.name}: base {info.base_spec} + the LoRA adapter beside this file",
             f"FROM {gguf}", f"ADAPTER ./{LORA_FILE}"]
    notes = []
    if chat is None:
        notes.append("the base's chat template is not one this export writes an Ollama TEMPLATE for: Ollama uses "
                     "the template it detects in the GGUF (check it with `ollama show --template`)")
    else:
        lines.append(f'TEMPLATE """{chat.ollama_template}"""')
        lines += [f'PARAMETER stop "{stop}"' for stop in chat.stops]
    lines += ['PARAMETER temperature 0', f'SYSTEM """{instruction}"""']
    (tmp / "Modelfile").write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = info.name.lower()
    return f"ollama create {model} -f {shlex.quote(str(final / 'Modelfile'))} && ollama run {model}", notes


def write_export(config: Config, name: str, to: str, out: Path, *, overwrite: bool = False,
                 gguf: Path | None = None, instruction: str = "") -> Export:
    """Export adapter `name` to format `to` in folder `out` (see the module docstring); `gguf` is the base
    as a GGUF for gguf / ollama when the adapter's base spec names none; `instruction` is the system
    message the Modelfile sets (the domain's, as the adapter was trained with)."""
    if to not in FORMATS:
        raise InputError(f"unknown export format '{to}' (known: {', '.join(FORMATS)})")
    info = get_adapter(config, name)
    out = check_out(out, info, config, overwrite)
    base = base_folder(config, info)
    base_gguf_path = base_gguf(info, gguf) if to in ("gguf", "ollama") else None
    with atomic_dir(out) as tmp:
        if to == "gguf":
            assert base_gguf_path is not None
            serve, notes = _write_gguf(tmp, info, base_gguf_path, out)
        elif to == "merged":
            serve, notes = _write_merged(tmp, info, config, out)
        elif to == "vllm":
            serve, notes = _write_vllm(tmp, info, base, out)
        else:
            assert base_gguf_path is not None
            serve, notes = _write_ollama(tmp, info, base_gguf_path, base, instruction, out)
        export = Export(adapter=name, format=to, path=out, base_spec=info.base_spec, base_folder=str(base),
                        base_gguf=str(base_gguf_path) if base_gguf_path else None,
                        files=(*sorted(p.name for p in tmp.iterdir()), EXPORT_FILE), serve=serve,
                        notes=tuple(notes), created=datetime.now(UTC).isoformat(timespec="seconds"))
        (tmp / EXPORT_FILE).write_text(json.dumps(export.to_dict(), indent=2), encoding="utf-8")
    return export


__all__ = ["EXPORT_FILE", "FORMATS", "Export", "base_gguf", "check_out", "gguf_metadata",
           "read_export", "vllm_rank", "write_export"]
