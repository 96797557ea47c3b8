"""The Generator: what strategies, evaluation, the router and the app see of a model, whatever runs it.

    from assistant.models import load_generator
    gen = load_generator(config)                      # the backend config.generation names, loaded once
    msgs = [{"role": "user", "content": "Is aspirin an NSAID?"}]
    prompt = gen.encode_prompt(msgs)                  # rendered in the chat template and counted, once
    out = gen.generate(prompt)                        # Generation(text, prompt_tokens, output_tokens, ...)
    stream = gen.stream(prompt)
    for piece in stream: print(piece, end="")         # then stream.result is the same Generation
    gen.score_options(prompt, ["yes", "no", "maybe"]) # log-likelihood of each option as the reply
    gen.run_jobs([Job(prompt, ["yes", "no"]), ...])   # many prompts: options scored, replies written together
    gen.identity()                                    # backend, model, engine details: run fingerprints

Backends subclass `Generator` (assistant/models/hf.py: transformers; llamacpp.py: llama-cpp-python;
openai_api.py: an OpenAI-compatible server) and implement rendering, tokens, decoding, scoring and adapters;
the prompt budget (`encode_prompt`, `check_prompt`, `truncate`) is shared here. Adapters are attached by
name (`assistant.models.adapters.attach`) and chosen per call: `gen.generate(p, adapter=slot)`; `None` is
the base model. Calls are thread-safe; a backend that cannot serve two at once serialises them on `lock`.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.config import GenerationConfig
from assistant.errors import AssistantError, InputError, unknown
from assistant.models.batching import Batcher, Request
from assistant.models.streaming import FinishReason, Generation, GenerationStream, finished

Message = Mapping[str, str]


@dataclass(frozen=True)
class EncodedPrompt:
    """A prompt rendered in the model's chat template, with its token ids: render and count once, then
    generate, stream or score options on it. `messages` keeps the chat for backends that send it as is."""

    text: str
    ids: list[int]
    messages: tuple[dict[str, str], ...] | None = None


# Chat messages, a string that is already rendered (e.g. with a prefilled reply), or an encoded prompt.
Prompt = str | Sequence[Message] | EncodedPrompt

# End-of-turn tokens of common chat formats; those in the vocabulary also stop generation.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


@dataclass(frozen=True)
class Job:
    """One prompt of `Generator.run_jobs`: its answer `options` scored (none: not scored), then its reply."""

    prompt: Prompt
    options: Sequence[str] = ()
    max_new_tokens: int | None = None
    adapter: str | None = None


@dataclass
class Done:
    """What `run_jobs` made of a Job: the options' log-likelihoods and the reply, or the job's own error."""

    scores: list[float] | None = None
    generation: Generation | None = None
    error: AssistantError | None = None


def as_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Plain {"role", "content"} dicts, or InputError for anything else."""
    if isinstance(messages, str) or not messages:
        raise InputError("messages must be a non-empty list of {'role': ..., 'content': ...}")
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]


def plain_render(messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
    """The prompt of a model without a chat template: "role: content" lines."""
    msgs = as_messages(messages)
    text = "\n".join(f"{m['role']}: {m['content']}" for m in msgs)
    return text + ("\nassistant:" if add_generation_prompt else "")


class Generator(ABC):
    """A loaded model behind one backend. Subclasses set `backend` and implement the abstract methods."""

    backend: str = ""

    def __init__(self, name: str, config: GenerationConfig, *, path: Path | None = None,
                 context_length: int, lock: threading.RLock | None = None) -> None:
        self.name = name
        self.config = config
        self.path = path  # the local model file or folder (adapters are checked against it); None: remote
        self.lock = lock or threading.RLock()
        self.adapter_sources: dict[str, str] = {}  # adapter slot -> where (and which version) it came from
        self.context_length: int = min(context_length, config.max_input_tokens + config.max_new_tokens)
        # The prompt needs room for at least one new token.
        self.max_input_tokens: int = min(config.max_input_tokens, self.context_length - 1)

    # ---------------------------------------------------------------- identity
    def identity(self) -> dict[str, Any]:
        """What a run's records depend on besides the prompt: backend, model and engine settings."""
        return {"backend": self.backend, "model": self.name, **self.engine()}

    def engine(self) -> dict[str, Any]:
        """Backend details for `identity` (dtype, device, quantization, library version ...)."""
        return {}

    def describe(self) -> str:
        """One line for people: "SmolLM2-135M-Instruct on llamacpp (Q4_1, 2 threads)"."""
        details = ", ".join(f"{k} {v}" for k, v in self.engine().items() if v not in (None, ""))
        return f"{self.name} on {self.backend}" + (f" ({details})" if details else "")

    # ---------------------------------------------------------------- text <-> tokens
    @abstractmethod
    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        """The prompt text for `messages` in the model's chat template (plain "role: content" without one)."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, special tokens in it parsed as such, no BOS/EOS added."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """The text of generated token ids, special tokens left out."""

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        """`text` cut to at most `max_tokens` tokens, at a token boundary."""
        if max_tokens <= 0:
            return ""
        ids = self.encode(text)
        if len(ids) <= max_tokens:
            return text
        n = max_tokens
        cut = self.decode(ids[:n])
        while n > 0 and self.count_tokens(cut) > max_tokens:  # re-tokenizing a prefix can differ slightly
            n -= 1
            cut = self.decode(ids[:n])
        return cut.rstrip("\ufffd")

    def encode_prompt(self, prompt: Prompt, *, check: bool = True) -> EncodedPrompt:
        """`prompt` rendered (messages) and tokenized; with `check`, an InputError when it does not fit the
        model's input budget (see check_prompt)."""
        if isinstance(prompt, EncodedPrompt):
            encoded = prompt
        elif isinstance(prompt, str):
            encoded = EncodedPrompt(prompt, self.encode(prompt))
        else:
            msgs = as_messages(prompt)
            text = self.render(msgs)
            encoded = EncodedPrompt(text, self.encode(text), tuple(msgs))
        return self.check_prompt(encoded) if check else encoded

    def check_prompt(self, prompt: EncodedPrompt) -> EncodedPrompt:
        """`prompt` itself, or an InputError when it is empty or longer than the model reads."""
        n = len(prompt.ids)
        if n > self.max_input_tokens:
            limit = (
                "generation.max_input_tokens"
                if self.max_input_tokens == self.config.max_input_tokens
                else "the model's context"
            )
            raise InputError(f"the prompt is {n} tokens; the model reads at most {self.max_input_tokens} ({limit})")
        if not n:
            raise InputError("the prompt is empty")
        return prompt

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt, or InputError when it does not fit the model's input budget."""
        return self.encode_prompt(prompt).ids

    def max_new(self, n_prompt: int, max_new_tokens: int | None) -> int:
        """How many tokens a reply to an `n_prompt`-token prompt may have."""
        wanted = max_new_tokens if max_new_tokens is not None else self.config.max_new_tokens
        return max(1, min(wanted, self.context_length - n_prompt))

    def temperature(self, temperature: float | None) -> float:
        temp = self.config.temperature if temperature is None else temperature
        if temp < 0:
            raise InputError(f"temperature must be >= 0, got {temp}")
        return temp

    # ---------------------------------------------------------------- adapters
    @property
    @abstractmethod
    def adapters(self) -> list[str]:
        """Slots of the adapters attached (with `load_adapter`)."""

    @abstractmethod
    def load_adapter(self, path: Path, name: str) -> None:
        """Attach the peft adapter in folder `path` under slot `name`; the base stays loaded as it is."""

    @abstractmethod
    def delete_adapter(self, name: str) -> None:
        """Detach adapter slot `name`."""

    def check_adapter(self, adapter: str | None) -> None:
        if adapter is not None and adapter not in self.adapters:
            raise unknown("adapter loaded on this model", adapter, self.adapters)

    # ---------------------------------------------------------------- generation
    @abstractmethod
    def generate(self, messages: Prompt, *, max_new_tokens: int | None = None, temperature: float | None = None,
                 stop: Sequence[str] = (), adapter: str | None = None) -> Generation:
        """The model's reply: greedy when temperature is 0; ends at end-of-turn, a stop string or the length."""

    @abstractmethod
    def stream(self, messages: Prompt, *, max_new_tokens: int | None = None, temperature: float | None = None,
               stop: Sequence[str] = (), adapter: str | None = None) -> GenerationStream:
        """The same reply as `generate`, as text pieces; `result` holds the Generation once iterated.
        A too-long prompt or an unknown adapter fails here, not on the first piece."""

    @abstractmethod
    def score_options(self, messages: Prompt, options: Sequence[str], *, normalize: bool = False,
                      adapter: str | None = None) -> list[float]:
        """Log-likelihood of each option as the assistant's reply (`normalize`: per token)."""

    def run_jobs(self, jobs: Sequence[Job]) -> list[Done]:
        """Each job's options scored, then its reply generated: an evaluation's questions, asked together.
        Here one job after another; backends that write replies together do so (llama.cpp and transformers
        in batches, a server through parallel requests). A job's own failure (a prompt too long, a server
        error) is its `Done.error`; the other jobs go on."""
        return [self.run_job(job) for job in jobs]

    def run_job(self, job: Job) -> Done:
        try:
            prompt = self.encode_prompt(job.prompt)
            scores = self.score_options(prompt, job.options, adapter=job.adapter) if job.options else None
            return Done(scores, self.generate(prompt, max_new_tokens=job.max_new_tokens, adapter=job.adapter))
        except AssistantError as exc:
            return Done(error=exc)


class InProcessGenerator(Generator):
    """A backend that decodes token by token in this process (transformers, llama.cpp): `generate` decodes
    on the calling thread, `stream` in a worker thread (models/streaming.py), both under `lock` and through
    the same `run_decode`. Subclasses give `eos_token_ids`, `activate` and `decode_tokens`."""

    eos_token_ids: list[int]
    batcher: Batcher | None = None  # set by a backend that decodes concurrent replies together
    scores_in_batch = False  # whether its batches score a request's options themselves (Request.options)

    @abstractmethod
    def activate(self, adapter: str | None) -> None:
        """Select `adapter` (None: the plain base) for the next passes. Callers hold `self.lock`."""

    @abstractmethod
    def decode_tokens(self, ids: list[int], max_new_tokens: int | None, temperature: float | None,
                      stop: Sequence[str], *, streamer: Any = None, cancel: threading.Event | None = None
                      ) -> list[int]:
        """Generated token ids (the prompt excluded), each also put to `streamer`. Callers hold `self.lock`."""

    def finish_reason(self, new: list[int], raw: str, stop: Sequence[str], ids: list[int],
                      max_new_tokens: int | None) -> FinishReason:
        if (new and new[-1] in self.eos_token_ids) or any(s and s in raw for s in stop):
            return "stop"
        return "length" if len(new) >= self.max_new(len(ids), max_new_tokens) else "stop"

    def generate(self, messages: Prompt, *, max_new_tokens: int | None = None, temperature: float | None = None,
                 stop: Sequence[str] = (), adapter: str | None = None) -> Generation:
        ids = self.prompt_ids(messages)
        stop = as_stop_list(stop)
        new, seconds = self.run_decode(ids, max_new_tokens, temperature, stop, adapter)
        return finished(self, ids, new, seconds, stop, max_new_tokens)

    def run_decode(self, ids: list[int], max_new_tokens: int | None, temperature: float | None, stop: list[str],
                   adapter: str | None, *, streamer: Any = None, cancel: threading.Event | None = None
                   ) -> tuple[list[int], float]:
        """One reply's new token ids and its compute seconds (not time spent waiting for other callers):
        decoded in a batch with the replies requested at the same moment where the backend has a `batcher`
        (models/batching.py), else one reply at a time, under `lock`."""
        try:
            if self.batcher is not None:
                self.check_adapter(adapter)
                return self.batcher.submit(self._request(ids, max_new_tokens, temperature, stop, adapter,
                                                         streamer=streamer, cancel=cancel))
            with self.lock:
                start = time.perf_counter()
                self.activate(adapter)
                new = self.decode_tokens(ids, max_new_tokens, temperature, stop, streamer=streamer, cancel=cancel)
                return new, time.perf_counter() - start
        finally:
            trim_heap()

    def run_jobs(self, jobs: Sequence[Job]) -> list[Done]:
        """With a `batcher`: the prompts checked and (where the batches do not score) their options scored
        one by one, then all replies queued at once, so that they are written in batches of `max_batch`."""
        if self.batcher is None or len(jobs) < 2:
            return super().run_jobs(jobs)
        done = [Done() for _ in jobs]
        queued: dict[int, Request] = {}
        for i, job in enumerate(jobs):
            try:
                prompt = self.encode_prompt(job.prompt)
                self.check_adapter(job.adapter)
                options = None
                if job.options and self.scores_in_batch:
                    options = self.option_ids(prompt, job.options)[1]
                elif job.options:
                    done[i].scores = self.score_options(prompt, job.options, adapter=job.adapter)
                queued[i] = self._request(prompt.ids, job.max_new_tokens, None, [], job.adapter, options=options,
                                          exclusive=True)
            except AssistantError as exc:
                done[i].error = exc
        try:
            self.batcher.submit_all(list(queued.values()))
        finally:
            trim_heap()
        for i, r in queued.items():
            if isinstance(r.error, AssistantError):
                done[i].error = r.error
            elif r.error is not None:  # a bug, or the process stopping: not one question's failure
                raise r.error
            else:
                if r.options:
                    done[i].scores = r.scores
                done[i].generation = finished(self, r.ids, r.new, r.seconds, [], jobs[i].max_new_tokens)
        return done

    def _request(self, ids: list[int], max_new_tokens: int | None, temperature: float | None, stop: list[str],
                 adapter: str | None, **extra: Any) -> Request:
        """A reply for the `batcher`, its length and temperature resolved as for a reply alone."""
        return Request(ids, self.max_new(len(ids), max_new_tokens), self.temperature(temperature), stop, adapter,
                       **extra)

    def decode_alone(self, r: Request, start: float) -> None:
        """A batch of one (`batcher`): decoded as a lone reply and finished. Callers hold `lock`."""
        self.activate(r.adapter)
        new = self.decode_tokens(r.ids, r.max_new, r.temperature, r.stop, streamer=r.streamer, cancel=r.cancel)
        r.finish(new, time.perf_counter() - start)

    def stream(self, messages: Prompt, *, max_new_tokens: int | None = None, temperature: float | None = None,
               stop: Sequence[str] = (), adapter: str | None = None) -> GenerationStream:
        """Text pieces as they are generated; joined, they equal the final `result.text`. Each new token is
        decoded with all earlier ones (multi-byte characters and stop strings come out whole); closing the
        iterator early stops generation at the next token (and `result` stays None)."""
        ids = self.prompt_ids(messages)  # checked here, not on the first next()
        self.check_adapter(adapter)
        return GenerationStream(self, ids, max_new_tokens, temperature, as_stop_list(stop), adapter)

    def option_ids(self, prompt: Prompt, options: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        """The prompt's and each option's token ids, or InputError (empty option, too long together)."""
        check_options(options)
        ids = self.prompt_ids(prompt)
        option_ids = [self.encode(o) for o in options]
        for option, toks in zip(options, option_ids, strict=True):
            if not toks:
                raise InputError(f"cannot score the empty option {option!r}")
        longest = max((len(t) for t in option_ids), default=0)
        if len(ids) + longest > self.context_length:
            raise InputError(f"the prompt and the longest option are {len(ids) + longest} tokens; "
                             f"the model reads at most {self.context_length}")
        return ids, option_ids


_LIBC: list[Any] = []


def trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's `malloc_trim`, ~1 ms). Reading a long prompt
    frees ~100 MB of activations that glibc keeps mapped, scattered through the heap, where the next long
    prompt does not fit them all: without this the app's memory climbs answer by answer. A no-op where
    the C library has no malloc_trim."""
    if not _LIBC:
        import ctypes

        try:
            _LIBC.append(getattr(ctypes.CDLL(None), "malloc_trim", None))
        except (OSError, AttributeError):
            _LIBC.append(None)
    if _LIBC[0] is not None:
        _LIBC[0](0)


def as_stop_list(stop: Sequence[str]) -> list[str]:
    # stop="Question:" is one stop string, not nine one-character ones.
    if isinstance(stop, str):
        return [stop] if stop else []
    return [s for s in stop if s]


def check_options(options: Sequence[str]) -> None:
    if isinstance(options, str):
        raise InputError("options must be a list of strings, not one string")


__all__ = ["END_OF_TURN", "Done", "EncodedPrompt", "Generator", "InProcessGenerator", "Job", "Message", "Prompt", "as_messages", "as_stop_list",
           "check_options", "plain_render"]
