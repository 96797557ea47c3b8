"""Generation models: resolve a spec offline (embedded GGUF, .gguf file, folder, cached hub id), load it once.

    from assistant.models import load_generator
    gen = load_generator(config)          # config.generation.model, e.g. "embedded:SmolLM2-135M-Instruct"
    gen.generate([{"role": "user", "content": "..."}]).text

`generator` is the Generator every backend implements; `registry` picks the backend (`resolve_backend`)
and loads it once; `llamacpp` (GGUF in-process), `hf` (transformers), `openai_api` (an OpenAI-compatible
server) are the backends; `loading` finds and converts model files; `gguf_lora` turns peft adapters into
GGUF LoRA for llama.cpp; `dtype` picks fp32 or bf16 for transformers on the machine at hand.
Run the tests with `.venv/bin/pytest tests/test_models.py -q` (add `-m slow` for the real model).
"""

from __future__ import annotations

from assistant.models.generator import Done, EncodedPrompt, Generator, Job, Message, Prompt
from assistant.models.loading import EMBEDDED_NAMES, convert_gguf, embedded_gguf, find_gguf, resolve_model
from assistant.models.registry import clear_generators, describe_backend, load_generator, resolve_backend
from assistant.models.streaming import Generation, GenerationStream

__all__ = [
    "EMBEDDED_NAMES",
    "Done",
    "EncodedPrompt",
    "Generation",
    "GenerationStream",
    "Generator",
    "Job",
    "Message",
    "Prompt",
    "clear_generators",
    "convert_gguf",
    "describe_backend",
    "embedded_gguf",
    "find_gguf",
    "load_generator",
    "resolve_backend",
    "resolve_model",
]
