"""One Generator per process and configuration: the app's threads, every Assistant and the evaluation share
the loaded model instead of loading it again.

    from assistant.models import load_generator, clear_generators
    gen = load_generator(config)          # loaded on the first call, the same object afterwards
    clear_generators()                    # tests; a long-lived process that changes models
"""

from __future__ import annotations

import threading
from typing import Any

from assistant.config import Config, GenerationConfig
from assistant.models.generator import Generator
from assistant.models.loading import load_folder, resolve_model

_GENERATORS: dict[tuple[GenerationConfig, str], Generator] = {}
# Models by resolved folder: generators that differ only in decoding settings share one model and lock.
_MODELS: dict[str, tuple[Any, Any, threading.RLock]] = {}
_LOADING = threading.Lock()


def load_generator(config: Config) -> Generator:
    """The Generator for `config.generation`, loaded once per process (and per cache dir)."""
    key = (config.generation, str(config.cache_dir))
    if key in _GENERATORS:
        return _GENERATORS[key]
    with _LOADING:
        if key not in _GENERATORS:
            path = resolve_model(config.generation.model, config)
            if str(path) not in _MODELS:
                model, tokenizer = load_folder(path)
                _MODELS[str(path)] = (model, tokenizer, threading.RLock())
            model, tokenizer, lock = _MODELS[str(path)]
            _GENERATORS[key] = Generator(
                config.generation.model, model, tokenizer, config.generation, path=path, lock=lock
            )
    return _GENERATORS[key]


def clear_generators() -> None:
    """Forget loaded models (tests; a long-lived process that changes models to free memory)."""
    with _LOADING:
        _GENERATORS.clear()
        _MODELS.clear()


__all__ = ["clear_generators", "load_generator"]
