"""A trained peft LoRA adapter as a GGUF LoRA file, for llama.cpp (and Ollama's `ADAPTER`).

    from assistant.models.gguf_lora import GGUFBase, lora_gguf
    path = lora_gguf(adapter_dir, GGUFBase.from_metadata(llm.metadata))   # converted once, then reused

The file is written beside the adapter (`adapter.gguf`, with `adapter.gguf.json` recording what it was made
from) and rebuilt when the adapter's weights change. The GGUF LoRA format: `general.type` "adapter",
`adapter.type` "lora", `adapter.lora.alpha`, and for each adapted weight `<gguf tensor>.weight.lora_a`
(peft's A, rank x in) and `.lora_b` (peft's B, out x rank); llama.cpp scales by alpha / rank as peft does.
llama.cpp stores llama-architecture q/k projections with their rows permuted for its rotary embedding;
the B matrices of those get the same permutation, or the adapter would be applied to the wrong rows.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError

FILE = "adapter.gguf"
SOURCE = "adapter.gguf.json"
# Bump when the conversion changes, so that files written by an older version are redone.
VERSION = 1
# Architectures whose GGUF conversion permutes the q/k projection rows (llama.cpp's rotary layout).
PERMUTED_QK = ("llama",)


@dataclass(frozen=True)
class GGUFBase:
    """What the conversion needs of the base model: its architecture and attention shape."""

    arch: str
    n_blocks: int
    n_head: int
    n_head_kv: int

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> GGUFBase:
        arch = str(metadata.get("general.architecture", ""))
        try:
            n_blocks = int(metadata[f"{arch}.block_count"])
            n_head = int(metadata[f"{arch}.attention.head_count"])
        except (KeyError, ValueError):
            raise ConfigError(f"the base GGUF's metadata lacks the block count or head count of '{arch}'") from None
        return cls(arch, n_blocks, n_head, int(metadata.get(f"{arch}.attention.head_count_kv", n_head)))


def _stamp(adapter_dir: Path, base: GGUFBase) -> dict[str, Any]:
    weights = adapter_dir / "adapter_model.safetensors"
    try:
        st = weights.stat()
    except OSError:
        raise ConfigError(f"{adapter_dir} has no adapter_model.safetensors: not a trained peft adapter") from None
    return {"weights_size": st.st_size, "weights_mtime_ns": st.st_mtime_ns, "arch": base.arch,
            "n_blocks": base.n_blocks, "version": VERSION}


def lora_gguf(adapter_dir: Path, base: GGUFBase) -> Path:
    """`adapter_dir/adapter.gguf`, converted from the peft adapter now unless it is current."""
    adapter_dir = Path(adapter_dir)
    out, record = adapter_dir / FILE, adapter_dir / SOURCE
    stamp = _stamp(adapter_dir, base)
    try:
        if out.is_file() and json.loads(record.read_text(encoding="utf-8")) == stamp:
            return out
    except (OSError, ValueError):
        pass
    tmp = out.with_name(f".{FILE}.tmp-{os.getpid()}")
    try:
        write_lora_gguf(adapter_dir, base, tmp)
        os.replace(tmp, out)
        record.write_text(json.dumps(stamp, indent=2), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the GGUF copy of adapter {adapter_dir.name} in {adapter_dir}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


def permute_rows(weights: Any, n_head: int) -> Any:
    """The rows of a q/k projection (or its LoRA B) in llama.cpp's rotary order: per head, the two halves
    of each rotary pair interleaved."""
    rows = weights.shape[0]
    return weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def lora_tensors(adapter_dir: Path, base: GGUFBase) -> tuple[float, dict[str, Any]]:
    """(alpha, {gguf tensor name: float32 numpy array}) of the peft adapter in `adapter_dir`."""
    import gguf
    from safetensors.torch import load_file

    try:
        settings = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
        tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the peft adapter in {adapter_dir}: {exc}") from None
    if settings.get("peft_type", "LORA") != "LORA" or settings.get("use_dora"):
        raise ConfigError(f"adapter {adapter_dir.name} is not a plain LoRA adapter: llama.cpp cannot apply it")
    if settings.get("rank_pattern") or settings.get("alpha_pattern"):
        raise ConfigError(f"adapter {adapter_dir.name} has per-layer ranks or alphas, which GGUF LoRA cannot hold")
    try:
        rank, alpha = int(settings["r"]), float(settings["lora_alpha"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"adapter {adapter_dir.name}: adapter_config.json lacks its rank or alpha") from None
    if settings.get("use_rslora"):
        alpha *= math.sqrt(rank)  # rsLoRA scales by alpha / sqrt(r); llama.cpp by alpha / r
    archs = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    if base.arch not in archs:
        raise ConfigError(f"the gguf package does not know the architecture '{base.arch}' of the base model")
    names = gguf.get_tensor_name_map(archs[base.arch], base.n_blocks)
    out: dict[str, Any] = {}
    for key, tensor in tensors.items():
        module, _, part = key.removeprefix("base_model.model.").rpartition(".lora_")
        if part not in ("A.weight", "B.weight"):
            raise ConfigError(f"adapter {adapter_dir.name}: cannot convert tensor '{key}' (only LoRA A/B weights)")
        target = names.get_name(module)
        if target is None or target == "token_embd":
            raise ConfigError(f"adapter {adapter_dir.name}: no llama.cpp tensor for the adapted module '{module}'")
        array = tensor.float().numpy()
        if part == "B.weight" and base.arch in PERMUTED_QK and target.endswith(("attn_q", "attn_k")):
            heads = base.n_head if target.endswith("attn_q") else base.n_head_kv
            if array.shape[0] % (2 * heads):
                raise ConfigError(f"adapter {adapter_dir.name}: its {module} has {array.shape[0]} rows, which do not "
                                  f"fit the base's {heads} attention heads (trained on another base model?)")
            array = permute_rows(array, heads)
        out[f"{target}.weight.lora_{part[0].lower()}"] = array
    if not out:
        raise ConfigError(f"adapter {adapter_dir.name} holds no LoRA weights")
    return alpha, out


def write_lora_gguf(adapter_dir: Path, base: GGUFBase, path: Path) -> None:
    import gguf

    alpha, tensors = lora_tensors(adapter_dir, base)
    writer = gguf.GGUFWriter(str(path), base.arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for name in sorted(tensors):
        writer.add_tensor(name, tensors[name])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


__all__ = ["FILE", "GGUFBase", "lora_gguf", "lora_tensors", "permute_rows", "write_lora_gguf"]
