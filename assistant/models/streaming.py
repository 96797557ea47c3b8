"""Pieces of streaming decoding: a token-queue streamer, stop criteria and the visible-text rule.

`Generator.generate` decodes on the calling thread, `Generator.stream` in a worker thread whose pieces a
GenerationStream hands out; both finish through `finished` (the visible-text rule, the finish reason), so
the streamed pieces join to exactly the generated text and the stream's `result` is what `generate` gives. Used by the in-process backends (models/hf.py, models/llamacpp.py); tested in tests/test_models.py.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Generator as PieceGenerator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length"]

DONE = object()  # end-of-stream marker the generation worker puts on the queue


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    output_tokens: int
    seconds: float
    finish_reason: FinishReason

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.seconds if self.seconds > 0 else 0.0


def finished(gen: Decoder, ids: list[int], new: list[int], seconds: float, stop: Sequence[str],
             max_new_tokens: int | None) -> Generation:
    """The Generation of a finished decoding: what `generate` returns and a stream's `result` holds."""
    raw = gen.decode(new)
    reason = gen.finish_reason(new, raw, stop, ids, max_new_tokens)
    return Generation(visible_text(raw, stop, final=True), len(ids), len(new), seconds, reason)


class Decoder(Protocol):
    """What a GenerationStream needs of an in-process backend (assistant.models.hf, .llamacpp)."""

    def decode(self, ids: Sequence[int]) -> str: ...

    def run_decode(self, ids: list[int], max_new_tokens: int | None, temperature: float | None, stop: list[str],
                   adapter: str | None, *, streamer: Any = None, cancel: threading.Event | None = None
                   ) -> tuple[list[int], float]: ...

    def finish_reason(self, new: list[int], raw: str, stop: Sequence[str], ids: list[int],
                      max_new_tokens: int | None) -> FinishReason: ...


class TokenQueue:
    """A streamer that forwards new token ids to a queue: transformers' generate() calls `put` with
    tensors (the first put is the prompt); other decoders call `put_ids` with the new ids."""

    def __init__(self, tokens: queue.Queue[Any]) -> None:
        self.tokens = tokens
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.tokens.put(value.reshape(-1).tolist())

    def put_ids(self, ids: list[int]) -> None:
        self.tokens.put(list(ids))

    def end(self) -> None:
        """The worker signals the end itself, also when generate() raises."""


class StopCriteria:
    """Stops at a stop string in the decoded reply, or when a streaming consumer went away."""

    def __init__(self, tokenizer: Any, prompt_len: int, stop: list[str], cancel: threading.Event | None) -> None:
        self.tokenizer, self.prompt_len, self.stop, self.cancel = tokenizer, prompt_len, stop, cancel

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = bool(self.cancel and self.cancel.is_set())
        if not done and self.stop:
            text = self.tokenizer.decode(input_ids[0, self.prompt_len :], skip_special_tokens=True)
            done = any(s in text for s in self.stop)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


def visible_text(raw: str, stop: Sequence[str], *, final: bool) -> str:
    """The reply text shown for decoded `raw`: cut at the first stop string, whitespace stripped.

    While streaming (`final=False`), text that may still change is held back: trailing whitespace
    (it is stripped if the reply ends there), an incomplete multi-byte character (decoded as U+FFFD),
    and a tail that could be the start of a stop string.
    """
    cuts = [raw.find(s) for s in stop if s and s in raw]
    if cuts:
        raw, final = raw[: min(cuts)], True
    text = raw.lstrip()
    if final:
        return text.rstrip()
    text = text.rstrip("\ufffd")
    hold = 0
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), hold, -1):
            if text.endswith(s[:k]):
                hold = k
                break
    if hold:
        text = text[:-hold]
    return text.rstrip()


class AnswerRepetitionPenalty:
    """CTRL's repetition penalty applied to the answer's own tokens only.

    transformers' `repetition_penalty` also penalises every token of the prompt, so a RAG answer is pushed
    away from the very numbers and terms it should copy from its sources. Small models still need a
    penalty against loops in their own output; this keeps it there.
    """

    def __init__(self, penalty: float, prompt_length: int) -> None:
        self.penalty = penalty
        self.prompt_length = prompt_length

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        generated = input_ids[:, self.prompt_length :]
        if generated.shape[1] == 0:
            return scores
        logits = scores.gather(1, generated)
        # as in CTRL (Keskar et al. 2019) and transformers: shrink positive logits, grow negative ones
        logits = logits.where(logits < 0, logits / self.penalty).where(logits >= 0, logits * self.penalty)
        return scores.scatter(1, generated, logits)


class GenerationStream:
    """One generation, read piece by piece: iterate for the text pieces; once the iteration has ended,
    `result` is the Generation (the token counts and finish reason as the model produced them)."""

    def __init__(
        self,
        generator: Decoder,
        ids: list[int],
        max_new_tokens: int | None,
        temperature: float | None,
        stop: Sequence[str],
        adapter: str | None,
    ) -> None:
        self.result = None
        self._pieces = self._generate(generator, ids, max_new_tokens, temperature, stop, adapter)

    @property
    def result(self) -> Generation | None:
        return self.__dict__.get("_result")

    @result.setter
    def result(self, value: Generation | None) -> None:
        self.__dict__["_result"] = value
        if value is not None:
            for callback in self.__dict__.get("_on_result", []):
                callback(value)

    def on_result(self, callback: Callable[[Generation], None]) -> GenerationStream:
        """Call `callback(result)` once the stream has finished (not when it is closed early)."""
        self.__dict__.setdefault("_on_result", []).append(callback)
        return self

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop generating (at the next token); `contextlib.closing` calls this."""
        self._pieces.close()

    def _generate(
        self,
        gen: Decoder,
        ids: list[int],
        max_new_tokens: int | None,
        temperature: float | None,
        stop: Sequence[str],
        adapter: str | None,
    ) -> PieceGenerator[str, None, None]:
        tokens: queue.Queue[Any] = queue.Queue()
        cancel = threading.Event()
        errors: list[BaseException] = []
        done: list[tuple[list[int], float]] = []

        def work() -> None:
            try:
                # The worker waits for the model (not the consumer, whose next() calls may come from
                # different threads in a web server).
                done.append(gen.run_decode(ids, max_new_tokens, temperature, list(stop), adapter,
                                           streamer=TokenQueue(tokens), cancel=cancel))
            except BaseException as exc:  # handed to the consumer, which re-raises it
                errors.append(exc)
            finally:
                tokens.put(DONE)

        worker = threading.Thread(target=work, name="assistant-generate", daemon=True)
        worker.start()
        streamed: list[int] = []
        sent = ""
        try:
            while (item := tokens.get()) is not DONE:
                streamed.extend(item)
                text = visible_text(gen.decode(streamed), stop, final=False)
                if len(text) > len(sent) and text.startswith(sent):
                    yield text[len(sent) :]
                    sent = text
            worker.join()
            if errors:
                raise errors[0]
            new, seconds = done[0]
            self.result = finished(gen, ids, new, seconds, stop, max_new_tokens)
            text = self.result.text
            if len(text) > len(sent) and text.startswith(sent):
                yield text[len(sent) :]
        finally:
            cancel.set()
            worker.join()
