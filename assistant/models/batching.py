"""Replies decoded together: the questions waiting at the same moment go through the model as one batch.

    batcher = Batcher(gen.lock, gen.decode_batch, max_batch=8, max_tokens=12288)   # see models/hf.py
    new, seconds = batcher.submit(Request(ids, max_new, temperature, stop, adapter, streamer, cancel))
    batcher.submit_all(requests)          # many at once (an evaluation's questions): each ends done or failed

There is no scheduler thread: a caller that gets the generator's lock takes the waiting requests that can
share a batch (the oldest first, then the others with its adapter and temperature, up to `max_batch` replies
and `max_tokens` prompt tokens in all) and decodes them together; the other callers wait for their own
row to end (not the whole batch), or for the lock, to lead the next batch. A row ends at its end-of-turn
token, stop string, length or cancellation; its streamer gets its tokens as they come.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

POLL_S = 0.02  # how often a waiting caller looks whether its reply is done or the lock is free


@dataclass(eq=False)
class Request:
    """One reply to decode: its prompt ids and settings, then its result (`new`, `seconds`) or `error`."""

    ids: list[int]
    max_new: int
    temperature: float
    stop: list[str]
    adapter: str | None
    streamer: Any = None
    cancel: threading.Event | None = None
    # token ids of answer options to score on the prompt before the reply (a backend that scores in its
    # batches, models/llamacpp_batch.py), then their log-likelihoods
    options: list[list[int]] | None = None
    scores: list[float] | None = None
    # queued by Generator.run_jobs (an evaluation): no other question of this process is prepared beside
    # its batch, so the batch may take every core
    exclusive: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    new: list[int] = field(default_factory=list)
    seconds: float = 0.0
    error: BaseException | None = None

    def finish(self, new: list[int], seconds: float) -> None:
        self.new, self.seconds = new, seconds
        self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()

    def ended(self, new: list[int], eos: set[int], decode: Callable[[list[int]], str]) -> bool:
        """Whether a reply that has produced `new` so far is over."""
        if (new and new[-1] in eos) or len(new) >= self.max_new or (self.cancel is not None and self.cancel.is_set()):
            return True
        return bool(self.stop) and any(s in decode(new) for s in self.stop)


class Batcher:
    """Collects concurrent requests to one model; `run(batch, start)` decodes a batch and finishes every
    request in it (called with `lock` held)."""

    def __init__(self, lock: threading.RLock, run: Callable[[list[Request], float], None], *, max_batch: int,
                 max_tokens: int) -> None:
        self.lock, self.run = lock, run
        self.max_batch, self.max_tokens = max_batch, max_tokens
        self._pending: list[Request] = []
        self._pending_lock = threading.Lock()

    def submit(self, request: Request) -> tuple[list[int], float]:
        """Decode `request`, in a batch with whatever waits beside it: (new token ids, compute seconds)."""
        with self._pending_lock:
            self._pending.append(request)
        self._wait(request)
        if request.error is not None:
            raise request.error
        return request.new, request.seconds

    def submit_all(self, requests: list[Request]) -> None:
        """Decode `requests`, queued together so that they share batches (an evaluation's questions); each
        ends with its result or its `error`, none is raised."""
        with self._pending_lock:
            self._pending.extend(requests)
        for request in requests:
            self._wait(request)

    def _wait(self, request: Request) -> None:
        """Until `request` is done: lead the next batch whenever the lock is free."""
        while not request.done.is_set():
            if not self.lock.acquire(timeout=POLL_S):
                continue
            try:
                if batch := self._take():
                    self._run(batch)
            finally:
                self.lock.release()

    def _take(self) -> list[Request]:
        with self._pending_lock:
            if not self._pending:
                return []
            first = self._pending[0]
            batch: list[Request] = []
            tokens = 0
            for r in self._pending:
                if (r.adapter, r.temperature) != (first.adapter, first.temperature):
                    continue
                if batch and (len(batch) >= self.max_batch or tokens + len(r.ids) > self.max_tokens):
                    break
                batch.append(r)
                tokens += len(r.ids)
            self._pending = [r for r in self._pending if r not in batch]
        return batch

    def _run(self, batch: list[Request]) -> None:
        start = time.perf_counter()  # compute time, not time spent waiting for the lock
        try:
            self.run(batch, start)
        except BaseException as exc:  # every caller in the batch gets the error (the leader's may be elsewhere)
            for r in batch:
                if not r.done.is_set():
                    r.fail(exc)
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: this thread stops too
                raise
        for r in batch:  # a decoder that left a row unfinished is a bug: say so rather than hang
            if not r.done.is_set():
                r.fail(RuntimeError("the batch ended without finishing this reply"))


class BatchRows:
    """transformers' streamer and stopping criterion for one batch: each row's new tokens go to its
    request's streamer; a row that has ended finishes its request at once and stops being decoded."""

    def __init__(self, batch: list[Request], width: int, eos: set[int], decode: Callable[[list[int]], str],
                 start: float) -> None:
        self.batch, self.width, self.eos, self.decode, self.start = batch, width, eos, decode, start
        self.live = [True] * len(batch)
        self.prompt_seen = False

    # ---- streamer
    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # the first put is the prompt
            self.prompt_seen = True
            return
        for row, token in enumerate(value.reshape(-1).tolist()):
            request = self.batch[row]
            if self.live[row] and request.streamer is not None:
                request.streamer.put_ids([int(token)])

    def end(self) -> None:
        """Rows end in the criterion."""

    # ---- stopping criterion
    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        for row, request in enumerate(self.batch):
            if self.live[row]:
                new = [int(t) for t in input_ids[row, self.width :].tolist()]
                if request.ended(new, self.eos, self.decode):
                    self.live[row] = False
                    request.finish(new, time.perf_counter() - self.start)
        return torch.tensor([not live for live in self.live], dtype=torch.bool, device=input_ids.device)

    def finish_rest(self, output: Any) -> None:
        """Rows still open when generate() returned (it stopped at the longest length): finished as they are."""
        for row, request in enumerate(self.batch):
            if self.live[row]:
                self.live[row] = False
                request.finish([int(t) for t in output[row, self.width :].tolist()], time.perf_counter() - self.start)


__all__ = ["BatchRows", "Batcher", "Request"]
