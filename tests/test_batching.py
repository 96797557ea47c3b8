"""Concurrent questions decoded together (assistant/models/batching.py, the transformers backend): who
shares a batch, each caller gets its own reply (the same as alone), streams and cancellation per row,
errors reach every caller; and prompt lookup decoding gives the same greedy reply."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Config
from assistant.models import load_generator
from assistant.models.batching import Batcher, Request
from assistant.models.hf import TransformersGenerator
from tests.test_models import tiny_config

PROMPTS = [
    [{"role": "user", "content": "Is the sky blue?"}],
    [{"role": "user", "content": "Name a prime number between ten and twenty, please."}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is aspirin?"}],
    [{"role": "user", "content": "Why?"}],
]


def request(n_ids: int, adapter: str | None = None, temperature: float = 0.0) -> Request:
    return Request(list(range(n_ids)), 4, temperature, [], adapter)


def run_together(batcher: Batcher, requests: list[Request]) -> list[Any]:
    """Submit `requests` from one thread each while the lock is held, so that all wait at the same moment."""
    results: list[Any] = [None] * len(requests)

    def submit(i: int) -> None:
        try:
            results[i] = batcher.submit(requests[i])
        except Exception as exc:  # the test looks at what each caller got
            results[i] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(requests))]
    with batcher.lock:
        for t in threads:
            t.start()
        while len(batcher._pending) < len(requests):
            threading.Event().wait(0.005)
    for t in threads:
        t.join(timeout=60)
    return results


def fake_batcher(seen: list[list[Request]], fail: bool = False, **caps: int) -> Batcher:
    def run(batch: list[Request], start: float) -> None:
        seen.append(batch)
        if fail:
            raise RuntimeError("the model broke")
        for r in batch:
            r.finish([len(r.ids)], 0.1)

    return Batcher(threading.RLock(), run, max_batch=caps.get("max_batch", 8), max_tokens=caps.get("max_tokens", 100))


# ---------------------------------------------------------------- who shares a batch
def test_waiting_requests_share_a_batch_by_adapter_and_temperature() -> None:
    seen: list[list[Request]] = []
    reqs = [request(3), request(4, "a"), request(5), request(6, temperature=0.7), request(7)]
    results = run_together(fake_batcher(seen), reqs)
    assert results == [([3], 0.1), ([4], 0.1), ([5], 0.1), ([6], 0.1), ([7], 0.1)]
    assert [[len(r.ids) for r in b] for b in seen] == [[3, 5, 7], [4], [6]]  # the oldest leads each batch


def test_a_batch_stops_at_max_batch_and_max_tokens() -> None:
    seen: list[list[Request]] = []
    run_together(fake_batcher(seen, max_batch=2, max_tokens=100), [request(10) for _ in range(5)])
    assert [len(b) for b in seen] == [2, 2, 1]
    seen.clear()
    run_together(fake_batcher(seen, max_batch=8, max_tokens=25), [request(10) for _ in range(5)])
    assert [len(b) for b in seen] == [2, 2, 1]
    seen.clear()
    run_together(fake_batcher(seen, max_tokens=5), [request(10), request(10)])  # a long prompt still runs, alone
    assert [len(b) for b in seen] == [1, 1]


def test_requests_submitted_at_once_share_batches_and_keep_their_errors() -> None:
    seen: list[list[Request]] = []
    requests = [request(3), request(3, "a"), request(3), request(3), request(3, "a")]
    fake_batcher(seen, max_batch=2).submit_all(requests)
    assert [[requests.index(r) for r in batch] for batch in seen] == [[0, 2], [1, 4], [3]]
    assert all(r.done.is_set() and r.new == [3] for r in requests)
    failing = [request(3), request(3)]
    fake_batcher([], fail=True).submit_all(failing)  # nothing raised: each request holds the error
    assert all(isinstance(r.error, RuntimeError) for r in failing)


def test_an_error_reaches_every_caller_in_the_batch() -> None:
    seen: list[list[Request]] = []
    results = run_together(fake_batcher(seen, fail=True), [request(3), request(4)])
    assert all(isinstance(r, RuntimeError) and "the model broke" in str(r) for r in results)
    # a leader whose own request is in the next batch does not take the first batch's error for its own
    seen.clear()
    calls = 0

    def fails_first(batch: list[Request], start: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the model broke")
        for r in batch:
            r.finish([1], 0.1)

    results = run_together(Batcher(threading.RLock(), fails_first, max_batch=1, max_tokens=100),
                           [request(3), request(4)])
    assert isinstance(results[0], RuntimeError) and results[1] == ([1], 0.1)


# ---------------------------------------------------------------- on a real (tiny) model
@pytest.fixture
def tiny(config: Config, tiny_model_dir: Path) -> Callable[..., TransformersGenerator]:
    def make(**generation: object) -> TransformersGenerator:
        gen = load_generator(tiny_config(config, tiny_model_dir, max_new_tokens=12, **generation))
        assert isinstance(gen, TransformersGenerator)
        return gen

    return make


def batch_sizes(gen: TransformersGenerator, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    run = gen.batcher.run

    def counted(batch: list[Request], start: float) -> None:
        sizes.append(len(batch))
        run(batch, start)

    monkeypatch.setattr(gen.batcher, "run", counted)
    return sizes


def concurrently(gen: TransformersGenerator, calls: list[Callable[[], Any]]) -> list[Any]:
    """Start `calls` in threads while the model is busy, so that they queue up and go as one batch."""
    results: list[Any] = [None] * len(calls)

    def call(i: int) -> None:
        results[i] = calls[i]()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    with gen.lock:
        for t in threads:
            t.start()
        while len(gen.batcher._pending) < len(calls):
            threading.Event().wait(0.005)
    for t in threads:
        t.join(timeout=120)
    return results


def test_replies_decoded_together_are_the_replies_alone(tiny: Callable[..., TransformersGenerator],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    gen = tiny(prompt_lookup_tokens=0)
    alone = [gen.generate(p) for p in PROMPTS]
    sizes = batch_sizes(gen, monkeypatch)
    together = concurrently(gen, [lambda p=p: gen.generate(p) for p in PROMPTS])
    assert sizes == [len(PROMPTS)]
    assert [g.text for g in together] == [g.text for g in alone]
    assert [(g.prompt_tokens, g.output_tokens, g.finish_reason) for g in together] == [
        (g.prompt_tokens, g.output_tokens, g.finish_reason) for g in alone]
    # each row ends at its own length
    short = concurrently(gen, [lambda: gen.generate(PROMPTS[0], max_new_tokens=2),
                               lambda: gen.generate(PROMPTS[1], max_new_tokens=9)])
    assert [g.output_tokens for g in short] == [2, 9] and sizes == [len(PROMPTS), 2]
    # a one-token prompt has no prefix to read first: the batch reads the padded prompts in one pass
    one = gen.generate("a").text
    raw = concurrently(gen, [lambda: gen.generate("a"), lambda: gen.generate(PROMPTS[0])])
    assert sizes[-1] == 2 and [g.text for g in raw] == [one, alone[0].text]


def test_streams_in_one_batch_each_get_their_own_pieces(tiny: Callable[..., TransformersGenerator],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    gen = tiny(prompt_lookup_tokens=0)
    alone = [gen.generate(p).text for p in PROMPTS[:3]]
    sizes = batch_sizes(gen, monkeypatch)

    def read(prompt: Any) -> tuple[str, str]:
        stream = gen.stream(prompt)
        pieces = "".join(stream)
        assert stream.result is not None
        return pieces, stream.result.text

    def read_two(prompt: Any) -> str:  # the reader that goes away: its row ends, the others go on
        stream = gen.stream(prompt)
        first = next(iter(stream), "")
        stream.close()
        return first

    results = concurrently(gen, [lambda p=p: read(p) for p in PROMPTS[:3]] + [lambda: read_two(PROMPTS[3])])
    assert sizes == [4]
    assert [r[0] for r in results[:3]] == alone and [r[1] for r in results[:3]] == alone


def test_prompt_lookup_gives_the_greedy_reply(tiny: Callable[..., TransformersGenerator]) -> None:
    text = "The dose was 75 mg daily; the dose was 75 mg daily for 12 weeks. " * 2
    prompt = [{"role": "user", "content": text + "What was the dose?"}]
    plain = tiny(prompt_lookup_tokens=0).generate(prompt)
    drafted_gen = tiny(prompt_lookup_tokens=10)
    assert drafted_gen.identity()["prompt_lookup"] == 10
    drafted = drafted_gen.generate(prompt)
    assert (drafted.text, drafted.output_tokens) == (plain.text, plain.output_tokens)
    streamed = drafted_gen.stream(prompt)
    assert "".join(streamed) == plain.text
