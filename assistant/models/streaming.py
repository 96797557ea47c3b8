"""Pieces of streaming decoding: a token-queue streamer, stop criteria and the visible-text rule.

`Generator.generate` and `Generator.stream` both pass the decoded reply through `visible_text`, so the
streamed pieces join to exactly the generated text. Used by assistant/models/generator.py; tested there.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

DONE = object()  # end-of-stream marker the generation worker puts on the queue


class TokenQueue:
    """A generate() streamer that forwards new token ids to a queue (the first put is the prompt)."""

    def __init__(self, tokens: queue.Queue[Any]) -> None:
        self.tokens = tokens
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.tokens.put(value.reshape(-1).tolist())

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
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool)


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
