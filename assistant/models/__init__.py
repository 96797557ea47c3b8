"""Generation models: resolve a spec offline (embedded GGUF, .gguf file, folder, cached hub id), load it once.

    from assistant.models import load_generator
    gen = load_generator(config)          # config.generation.model, e.g. "embedded:SmolLM2-135M-Instruct"
    gen.generate([{"role": "user", "content": "..."}]).text

`loading` finds and converts model files; `generator` holds the loaded model and decodes with it.
Run the tests with `.venv/bin/pytest tests/test_models.py -q` (add `-m slow` for the real model).
"""

from __future__ import annotations

from assistant.models.generator import EncodedPrompt, Generator, Message, Prompt
from assistant.models.loading import EMBEDDED_NAMES, convert_gguf, embedded_gguf, resolve_model
from assistant.models.registry import clear_generators, load_generator
from assistant.models.streaming import Generation, GenerationStream

__all__ = [
    "EMBEDDED_NAMES",
    "EncodedPrompt",
    "Generation",
    "GenerationStream",
    "Generator",
    "Message",
    "Prompt",
    "clear_generators",
    "convert_gguf",
    "embedded_gguf",
    "load_generator",
    "resolve_model",
]
