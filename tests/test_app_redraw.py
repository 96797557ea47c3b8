"""The chat redraws a reply being written at most every REDRAW_S, and always shows the finished answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

import assistant
from assistant import load_config


class Writer:
    """An Assistant whose streamed reply is 40 pieces, one every 10 ms, then the finished answer."""

    def ask_stream(self, question: str, **_: Any) -> Iterator[Any]:
        for i in range(40):
            time.sleep(0.01)
            yield f"w{i} "
        yield assistant.Answer(question, "".join(f"w{i} " for i in range(40)).strip(), [], "base")


def test_the_chat_redraws_a_reply_at_most_every_redraw_interval(home: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import app_service

    svc = app_service.Service(load_config())
    monkeypatch.setattr(svc, "assistant", lambda domain: Writer())
    frames = list(svc.chat("What is glaucoma?", [], "medical", "base", None))
    writing = [f for f in frames if f[3] == "_Writing…_"]
    assert 1 <= len(writing) <= 0.4 / app_service.REDRAW_S + 1  # ~0.4 s of writing: not 40 redraws
    assert writing[0][1][-1]["content"].startswith("w0 w1")  # each redraw shows all written so far
    assert "w39" in frames[-1][1][-1]["content"]  # the finished answer, whatever the last redraw showed
