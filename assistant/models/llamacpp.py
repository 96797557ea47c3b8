"""The llama.cpp backend: a GGUF file run in-process by llama-cpp-python, quantized as shipped.

    gen = LlamaCppGenerator("embedded:SmolLM2-135M-Instruct", gguf_path, config)   # see registry

The chat template is the one in the GGUF's metadata, rendered with jinja2 as transformers renders it, so both
backends see the same prompt tokens. Decoding is a plain loop over llama.cpp's logits (greedy or sampled,
the same answer-only repetition penalty as the transformers backend, stop strings, cancellation), so
`generate` and `stream` share it. The KV cache keeps the last prompt: a prompt that starts the same way
(option scoring, then the generated answer to the same prompt; a RAG prompt after the same instruction)
only evaluates the tokens after the shared prefix.

Adapters: a trained peft adapter is converted once to GGUF LoRA beside it (models/gguf_lora.py), loaded
with llama.cpp's adapter API and applied or cleared on the context per call, under `lock`; switching
clears the KV cache, which was computed with the other weights.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.config import GenerationConfig
from assistant.errors import ConfigError, InputError, ModelUnavailableError
from assistant.models.batching import Batcher, Request
from assistant.models.generator import (
    END_OF_TURN,
    InProcessGenerator,
    Message,
    Prompt,
    as_messages,
    check_options,
    plain_render,
)
from assistant.models.scoring import option_log_likelihoods


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except (ImportError, OSError, RuntimeError) as exc:  # not installed, or its shared library will not load
        raise ModelUnavailableError(
            f"generation.backend llamacpp needs a working llama-cpp-python ({str(exc).splitlines()[0]}): run "
            "`make setup` (it builds it for this CPU), or set generation.backend: transformers"
        ) from None
    _warn_if_openmp(llama_cpp)
    return llama_cpp


@functools.cache
def _warn_if_openmp(llama_cpp: Any) -> bool:
    """Once per process, where llama.cpp was built on OpenMP (pip's default build): it then shares torch's
    OpenMP runtime, which slowed RAG answers ~2x when each was asked from a new thread (bench/answer.py;
    the app's workers measured the same either way). `make setup` builds it on ggml's own threads
    (tools/llamacpp.sh)."""
    openmp = b"OPENMP = 1" in bytes(llama_cpp.llama_print_system_info())
    if openmp:
        print("warning: this llama-cpp-python was built with OpenMP, which it shares with torch: answers asked "
              "from threads other than the one that loaded it can be ~2x slower; rebuild it with "
              "`tools/llamacpp.sh VENV` (GGML_OPENMP=OFF)", file=sys.stderr)
    return openmp


class LlamaCppGenerator(InProcessGenerator):
    """One llama.cpp model and context; calls are serialised on `lock` (one context, one KV cache)."""

    backend = "llamacpp"
    scores_in_batch = True  # a batch's options are scored on its own context (models/llamacpp_batch.py)

    def __init__(self, name: str, gguf: Path, config: GenerationConfig) -> None:
        llama_cpp = _llama_cpp()
        # generation.threads, else every core: a reply written alone (one user, a serial evaluation) decodes
        # ~1.5x faster on 2 cores than on 1. Concurrent users' replies written together (models/llamacpp_batch.py)
        # come under load, when other questions' retrieval runs beside them and llama.cpp's threads, which
        # spin-wait for each other at every step, lose many times that to it: their steps of one reply (llama.cpp
        # runs steps of several on n_threads_batch) take half the cores (`batch_decode_threads`); an
        # evaluation's batches (Generator.run_jobs), with nothing beside them, take them all
        cores = os.cpu_count() or 1
        threads = batch_threads = config.threads or cores
        self.batch_decode_threads = config.threads or max(1, cores // 2)
        n_ctx = config.max_input_tokens + config.max_new_tokens
        try:
            llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=n_ctx, n_threads=threads,
                                  n_threads_batch=batch_threads, n_batch=512, seed=0, verbose=False)
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelUnavailableError(
                f"llama.cpp cannot load generation model '{name}' ({gguf}): {first}; check that the file is a "
                "complete GGUF of an architecture this llama.cpp knows, or set generation.backend: transformers"
            ) from None
        super().__init__(name, config, path=gguf, context_length=min(llm._model.n_ctx_train(), n_ctx))
        self.llm = llm
        self.threads = f"{threads}/{batch_threads}"
        self.metadata: dict[str, str] = dict(llm.metadata)
        self._template = self._chat_template()
        bos, eos = llm.token_bos(), llm.token_eos()
        self._bos_eos = (self._token_text(bos) if bos >= 0 else "", self._token_text(eos) if eos >= 0 else "")
        self.eos_token_ids = self._end_tokens()
        self._loras: dict[str, Any] = {}  # slot -> llama_adapter_lora pointer
        self._active: str | None = None
        # a KVHandoff (assistant.models.kv_handoff): long prompts read by transformers, set by PhasedGenerator
        self.handoff: Any = None
        # concurrent replies are written together on a context of several sequences (models/llamacpp_batch.py)
        self.batcher = Batcher(self.lock, self.decode_batch, max_batch=config.max_batch,
                               max_tokens=config.max_batch * n_ctx)
        self._sequences: Any = None

    # ---------------------------------------------------------------- identity
    def engine(self) -> dict[str, Any]:
        import llama_cpp

        quant = self.metadata.get("general.file_type", "")
        return {"gguf": self.path.name if self.path else "", "file_type": quant, "threads": self.threads,
                "llama_cpp": llama_cpp.__version__}

    # ---------------------------------------------------------------- text <-> tokens
    def _token_text(self, token: int) -> str:
        return bytes(self.llm.detokenize([token], special=True)).decode("utf-8", errors="replace")

    def _chat_template(self) -> Any:
        source = self.metadata.get("tokenizer.chat_template")
        if not source:
            return None
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise InputError(f"the chat template of '{self.name}' refused the messages: {message}")

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=["jinja2.ext.loopcontrols"])
        env.globals["raise_exception"] = raise_exception
        try:
            return env.from_string(source)
        except TemplateError as exc:
            raise ModelUnavailableError(f"the chat template in {self.path} does not parse: {exc}") from None

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        if self._template is None:
            return plain_render(messages, add_generation_prompt=add_generation_prompt)
        from jinja2 import TemplateError

        try:
            return str(self._template.render(
                messages=as_messages(messages), add_generation_prompt=add_generation_prompt,
                bos_token=self._bos_eos[0], eos_token=self._bos_eos[1],
            ))
        except TemplateError as exc:
            raise InputError(f"the chat template of '{self.name}' cannot render these messages: {exc}") from None

    def encode(self, text: str) -> list[int]:
        # special=True: the template's <|im_start|> etc. become their control tokens, as in transformers
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) if text else []

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(self.llm.detokenize(list(ids), special=False)).decode("utf-8", errors="replace")

    def _end_tokens(self) -> list[int]:
        ids = [self.llm.token_eos()] if self.llm.token_eos() >= 0 else []
        for marker in END_OF_TURN:
            toks = self.llm.tokenize(marker.encode(), add_bos=False, special=True)
            if len(toks) == 1:
                ids.append(int(toks[0]))
        if not ids:
            raise ModelUnavailableError(f"generation model '{self.name}' has no end-of-sequence token to stop at")
        return list(dict.fromkeys(ids))

    # ---------------------------------------------------------------- adapters
    @property
    def adapters(self) -> list[str]:
        return list(self._loras)

    def load_adapter(self, path: Path, name: str) -> None:
        from assistant.models.gguf_lora import GGUFBase, lora_gguf

        with self.lock:
            if name in self._loras:
                raise InputError(f"an adapter named '{name}' is already attached: delete it first")
            self.load_gguf_adapter(lora_gguf(Path(path), GGUFBase.from_metadata(self.metadata)), name)

    def load_gguf_adapter(self, gguf: Path, name: str) -> None:
        """Attach a GGUF LoRA file as it is (an exported one: `assistant adapters export --to gguf`)."""
        llama_cpp = _llama_cpp()
        with self.lock:
            if name in self._loras:
                raise InputError(f"an adapter named '{name}' is already attached: delete it first")
            pointer = llama_cpp.llama_adapter_lora_init(self.llm.model, str(gguf).encode("utf-8"))
            if not pointer:
                raise ConfigError(f"llama.cpp cannot load the adapter in {gguf} on '{self.name}' "
                                  "(trained on another base model?)")
            self._loras[name] = pointer

    def apply_lora(self, ctx: Any, adapter: str | None) -> None:
        """Apply attached `adapter` (None: none) to llama.cpp context `ctx` (this model's main context or its
        context of sequences)."""
        llama_cpp = _llama_cpp()
        if adapter is None:
            status = llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            pointers = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._loras[adapter])
            status = llama_cpp.llama_set_adapters_lora(ctx, pointers, 1, (ctypes.c_float * 1)(1.0))
        if status != 0:
            raise ConfigError(f"llama.cpp could not switch to adapter {adapter!r} on '{self.name}'")

    def delete_adapter(self, name: str) -> None:
        with self.lock:
            self.check_adapter(name)
            if self._active == name:
                self.activate(None)
            if self._sequences is not None and self._sequences.adapter == name:
                self._sequences.activate(None)
            _llama_cpp().llama_adapter_lora_free(self._loras.pop(name))
            self.adapter_sources.pop(name, None)

    def activate(self, adapter: str | None) -> None:
        """Apply `adapter` (None: the plain base) to the context. Callers hold `self.lock`."""
        self.check_adapter(adapter)
        if adapter == self._active:
            return
        self.apply_lora(self.llm.ctx, adapter)
        self._active = adapter
        self.llm.n_tokens = 0  # the cached keys and values were computed with the other weights

    # ---------------------------------------------------------------- evaluation
    def _prefill(self, ids: list[int]) -> Any:
        """Evaluate `ids`, reusing the cached prefix; the logits after the last one.

        The last token is always evaluated on its own: llama.cpp's logits for a token differ slightly
        (~0.07 nats here) between a batch and a single-token step, and a score must not depend on what
        happened to be cached before."""
        import numpy as np

        cached = self.llm.input_ids[: self.llm.n_tokens]
        n = min(len(cached), len(ids) - 1)
        same = np.flatnonzero(cached[:n] != np.asarray(ids[:n]))
        self.llm.n_tokens = int(same[0]) if len(same) else n
        handed = (self.handoff is not None and len(ids) - 1 - self.llm.n_tokens >= self.handoff.min_tokens
                  and self.handoff.fill(ids[:-1], self._active))  # read by the faster engine, into this cache
        if not handed and self.llm.n_tokens < len(ids) - 1:
            self.llm.eval(ids[self.llm.n_tokens : -1])
        return self._eval(ids[-1:])

    def _eval(self, ids: list[int]) -> Any:
        """Evaluate `ids` after the cached tokens; a copy of the logits after the last one."""
        import numpy as np

        self.llm.eval(ids)
        last = _llama_cpp().llama_get_logits_ith(self.llm.ctx, -1)
        return np.array(np.ctypeslib.as_array(last, shape=(self.llm.n_vocab(),)), dtype=np.float64)

    def next_token(self, logits: Any, new: list[int], temp: float, rng: Any) -> int:
        """The next token after `logits`: greedy at temperature 0, else sampled; `new` (the reply so far)
        repetition-penalised."""
        import numpy as np

        logits = np.array(logits, dtype=np.float64)
        penalty = self.config.repetition_penalty
        if penalty != 1.0 and new:
            seen = np.unique(np.asarray(new))
            values = logits[seen]
            logits[seen] = np.where(values < 0, values * penalty, values / penalty)  # CTRL, answer tokens only
        if temp <= 0:
            return int(np.argmax(logits))
        probs = np.exp((logits - logits.max()) / temp)
        return int(rng.choice(len(probs), p=probs / probs.sum()))

    def decode_tokens(self, ids: list[int], max_new_tokens: int | None, temperature: float | None,
                      stop: Sequence[str], *, streamer: Any = None, cancel: Any = None) -> list[int]:
        """Generated token ids (the prompt excluded). Callers hold `self.lock`."""
        import numpy as np

        temp = self.temperature(temperature)
        limit = self.max_new(len(ids), max_new_tokens)
        rng = np.random.default_rng()
        logits = self._prefill(ids)
        new: list[int] = []
        while True:
            token = self.next_token(logits, new, temp, rng)
            new.append(token)
            if streamer is not None:
                streamer.put_ids([token])
            if token in self.eos_token_ids or len(new) >= limit or (cancel is not None and cancel.is_set()):
                return new
            if stop and any(s in self.decode(new) for s in stop):
                return new
            logits = self._eval([token])

    def decode_batch(self, batch: list[Request], start: float) -> None:
        """Decode every request of `batch` (one adapter, one temperature) and finish each, its options scored
        first where it has some: one reply on the main context (its cached prompt reused), several together
        on the context of sequences. Callers hold `lock`."""
        if len(batch) == 1:
            r = batch[0]
            if r.options:
                self.activate(r.adapter)
                r.scores = self._score_ids(r.ids, r.options)
            self.decode_alone(r, start)
            return
        if self._sequences is None:
            from assistant.models.llamacpp_batch import Sequences

            self._sequences = Sequences(self, self.config.max_batch)
        self._sequences.decode(batch, start)

    def score_options(self, messages: Prompt, options: Sequence[str], *, normalize: bool = False,
                      adapter: str | None = None) -> list[float]:
        """Log-likelihood of each option as the reply: one prompt pass (cached prefix reused), then each
        option's later tokens one at a time after the prompt."""
        check_options(options)
        if not options:
            return []
        ids, option_ids = self.option_ids(messages, options)
        with self.lock:
            self.activate(adapter)
            return self._score_ids(ids, option_ids, normalize=normalize)

    def _score_ids(self, ids: list[int], option_ids: list[list[int]], *, normalize: bool = False) -> list[float]:
        """`score_options` on token ids, on the main context (the prompt stays cached for the reply that
        usually follows). Callers hold `lock`."""
        first = self._prefill(ids)

        def later(toks: list[int]) -> list[Any]:
            self.llm.n_tokens = len(ids)
            return [self._eval([previous]) for previous in toks[:-1]]

        scores = option_log_likelihoods(first, option_ids, later, normalize=normalize)
        self.llm.n_tokens = len(ids)
        return scores


__all__ = ["LlamaCppGenerator"]
