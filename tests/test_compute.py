"""The in-process engines compute on one thread, whichever thread asks (models/compute.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from assistant.config import EMBEDDED_GENERATOR, GenerationConfig
from assistant.models import compute
from assistant.models.compute import on_compute_thread


def here() -> str:
    return threading.current_thread().name


def test_calls_from_any_thread_run_on_the_one_compute_thread() -> None:
    names: list[str] = []
    callers = [threading.Thread(target=lambda: names.append(on_compute_thread(here))) for _ in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    names.append(on_compute_thread(here))
    assert len(set(names)) == 1 and names[0].startswith(compute.NAME)
    assert on_compute_thread(lambda: on_compute_thread(here)) == names[0]  # from the compute thread: inline

    def fails() -> None:
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        on_compute_thread(fails)


def test_llamacpp_evaluates_on_the_compute_thread_for_every_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.models.llamacpp import LlamaCppGenerator
    from assistant.models.loading import embedded_gguf

    gen = LlamaCppGenerator(EMBEDDED_GENERATOR, embedded_gguf("SmolLM2-135M-Instruct"),
                            GenerationConfig(max_new_tokens=4))
    seen: set[str] = set()
    original = type(gen.llm).eval

    def recording(self: Any, tokens: Any) -> None:
        seen.add(here())
        original(self, tokens)

    monkeypatch.setattr(type(gen.llm), "eval", recording)
    replies: list[str] = []

    def ask(text: str) -> None:
        replies.append(gen.generate([{"role": "user", "content": text}]).text)

    callers = [threading.Thread(target=ask, args=(f"Name a colour, {i}.",)) for i in range(3)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    ask("Name a fruit.")
    assert len(replies) == 4 and all(replies)
    assert seen and all(name.startswith(compute.NAME) for name in seen)
