"""One Generator per process and configuration: the app's threads, every Assistant and the evaluation share
the loaded model instead of loading it again.

    from assistant.models import load_generator, clear_generators, resolve_backend
    resolve_backend(config)               # "llamacpp" | "transformers" | "openai", without loading anything
    gen = load_generator(config)          # loaded on the first call, the same object afterwards
    clear_generators()                    # tests; a long-lived process that changes models
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

from assistant.config import Config, GenerationConfig
from assistant.errors import ModelUnavailableError
from assistant.models.generator import Generator
from assistant.models.loading import find_gguf, load_folder, resolve_model

_GENERATORS: dict[tuple[GenerationConfig, str], Generator] = {}
# transformers models by (folder, dtype): generators that differ only in decoding settings share one model
_MODELS: dict[tuple[str, str], tuple[Any, Any, threading.RLock]] = {}
_LOADING = threading.Lock()


def llamacpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def resolve_backend(config: Config) -> str:
    """The backend `config.generation` runs on: as set, or for "auto" openai when a server is configured,
    llamacpp for a GGUF model when llama-cpp-python is installed, transformers otherwise."""
    gen = config.generation
    if gen.backend != "auto":
        return gen.backend
    if gen.base_url:
        return "openai"
    if llamacpp_installed() and find_gguf(gen.model) is not None:
        return "llamacpp"
    return "transformers"


def describe_backend(config: Config) -> str:
    """What `assistant config show` says of the engine, without loading the model."""
    from assistant.models import measured
    from assistant.models.dtype import recorded_choice

    gen = config.generation
    try:
        backend = resolve_backend(config)
    except ModelUnavailableError as exc:
        return f"generation: cannot resolve '{gen.model}': {exc}"
    why = "" if gen.backend != "auto" else " (chosen by backend: auto)"
    if backend == "transformers" and gen.dtype == "auto":
        from assistant.models.loading import gguf_cache_folder

        try:  # where the model is (a GGUF: its converted folder), without converting anything now
            gguf = find_gguf(gen.model)
            folder = gguf_cache_folder(gguf, config.cache_dir) if gguf else resolve_model(gen.model, config)
            choice = recorded_choice(folder, config.cache_dir, busy_too=True)
        except ModelUnavailableError:
            choice = None
        busy = (f"; other processes kept {choice['others_cpu']:.0%} of the cores busy meanwhile: checked again at "
                "the next load") if choice and measured.busy(choice) else ""
        dtype = (f"{choice['dtype']} (measured {choice.get('measured', '')}: fp32 {choice.get('fp32_prefill_s')} s, "
                 f"bf16 {choice.get('bf16_prefill_s')} s per 256-token pass{busy})") if choice else "chosen at first load"
        return f"generation: transformers{why}, dtype {dtype}"
    if backend == "openai":
        sends = f", each reply request with {dict(gen.extra_body)}" if gen.extra_body else ""
        return f"generation: openai{why}, {gen.base_url}, model {gen.model}{sends}"
    if backend == "llamacpp" and gen.backend == "auto":
        from assistant.models import phased

        gguf = find_gguf(gen.model)
        rates = phased.recorded_rates(config.cache_dir, _rates_key(config, gguf)) if gguf else None
        if rates is None:
            return f"generation: llamacpp{why}; transformers joins it for prefill if it measures faster at first load"
        shown = "; ".join(f"{'llama.cpp' if k == 'decoder' else 'transformers'} prefill {r['prefill']:.0f}, "
                          f"decode {r['decode']:.1f} tokens/s" for k, r in rates.items())
        if phased.worth_it(rates):
            return (f"generation: llamacpp for short prompts, transformers for option scoring and long prompts, "
                    f"whose keys and values llama.cpp writes the reply from where the two caches agree at load"
                    f"{why} (measured: {shown})")
        return f"generation: llamacpp{why} (transformers measured no faster at prefill: {shown})"
    return f"generation: {backend}{why}" + (f", dtype {gen.dtype}" if backend == "transformers" else "")


def load_generator(config: Config) -> Generator:
    """The Generator for `config.generation`, loaded once per process (and per cache dir)."""
    key = (config.generation, str(config.cache_dir))
    if key in _GENERATORS:
        return _GENERATORS[key]
    with _LOADING:
        if key not in _GENERATORS:
            _GENERATORS[key] = _load(config)
    return _GENERATORS[key]


def _load(config: Config) -> Generator:
    gen = config.generation
    backend = resolve_backend(config)
    if backend == "openai":
        from assistant.models.openai_api import OpenAIGenerator

        return OpenAIGenerator(gen)
    if backend == "llamacpp":
        from assistant.models.llamacpp import LlamaCppGenerator

        gguf = find_gguf(gen.model)
        if gguf is None:
            raise ModelUnavailableError(
                f"generation.backend llamacpp runs GGUF files, and '{gen.model}' is a transformers model folder: "
                "give a .gguf file, or set generation.backend: transformers"
            )
        llama = LlamaCppGenerator(gen.model, gguf, gen)
        return _with_prefill_engine(config, llama, gguf) if gen.backend == "auto" else llama
    return _transformers(config)


def _rates_key(config: Config, gguf: Path) -> str:
    from assistant.models import phased

    return phased.rates_key(gguf, config.generation.threads, config.generation.dtype)


def _with_prefill_engine(config: Config, llama: Generator, gguf: Path) -> Generator:
    """backend auto on a GGUF: llama.cpp, joined by transformers for prefill where that measured faster
    here (models/phased.py); the measurement runs once per machine and model."""
    from assistant.models import phased

    key = _rates_key(config, gguf)
    rates = phased.recorded_rates(config.cache_dir, key)
    if rates is not None and not phased.worth_it(rates):
        return llama
    reader = _transformers(config)
    if rates is None:
        try:
            rates = phased.measure_and_record_rates(config.cache_dir, key, llama, reader)
        except (RuntimeError, ValueError):  # a context too small to measure in: llama.cpp alone
            return llama
    if not phased.worth_it(rates):
        loaded = [k for k, v in _MODELS.items() if v[0] is getattr(reader, "model", None)]
        for k in loaded:  # not worth its memory: let it go
            del _MODELS[k]
        return llama
    return phased.PhasedGenerator(llama, reader, rates, handoff=True)


def _transformers(config: Config) -> Generator:
    from assistant.models.dtype import choose_dtype
    from assistant.models.hf import TransformersGenerator

    gen = config.generation
    path = resolve_model(gen.model, config)
    known = [k for k in _MODELS if k[0] == str(path) and gen.dtype in ("auto", k[1])]
    if known:
        model, tokenizer, lock = _MODELS[known[0]]
    else:
        dtype, (model, tokenizer) = choose_dtype(gen.dtype, path, config.cache_dir,
                                                 lambda d: load_folder(path, d, config.cache_dir))
        lock = threading.RLock()
        _MODELS[(str(path), dtype)] = (model, tokenizer, lock)
    return TransformersGenerator(gen.model, model, tokenizer, gen, path=path, lock=lock)


def clear_generators() -> None:
    """Forget loaded models (tests; a long-lived process that changes models to free memory)."""
    with _LOADING:
        for gen in _GENERATORS.values():
            close = getattr(gen, "close", None)
            if close is not None:
                close()
        _GENERATORS.clear()
        _MODELS.clear()


__all__ = ["clear_generators", "describe_backend", "llamacpp_installed", "load_generator", "resolve_backend"]
