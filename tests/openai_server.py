"""Servers for tests/test_openai_backend.py: a real OpenAI-compatible one and a tiny scripted one.

    with LlamaServer(gguf, api_key="k", aliases=("base", "medical-sft")) as server:   # llama-cpp-python
        server.base_url                                   # http://127.0.0.1:PORT/v1
    with ScriptedServer(handler) as fake:                 # handler(method, path, body) -> (status, headers, bytes)
        fake.base_url, fake.requests                      # every request: (method, path, headers, body)

LlamaServer runs `python -m llama_cpp.server --config_file ...` (needs llama-cpp-python with its server
extras) with one model entry per alias, all on the same GGUF: a second alias stands for an adapter the
server serves. One thread per model: with two, llama.cpp's threads spin-wait for each other and slow down
~100x whenever the two cores are busy with anything else.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

Reply = tuple[int, dict[str, str], bytes]
Handler = Callable[[str, str, Any], Reply]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def embedded_server(**settings: Any) -> LlamaServer:
    """A LlamaServer (not started) on the embedded GGUF; the test is skipped where llama-cpp-python's server
    extras or the GGUF are missing."""
    import importlib.util

    import pytest

    from assistant.errors import ModelUnavailableError
    from assistant.models.loading import embedded_gguf

    for needed in ("llama_cpp", "sse_starlette", "starlette_context", "uvicorn", "fastapi"):
        if importlib.util.find_spec(needed) is None:
            pytest.skip(f"llama-cpp-python's server needs {needed}: pip install 'llama-cpp-python[server]'")
    try:
        return LlamaServer(embedded_gguf("SmolLM2-135M-Instruct"), **settings)
    except ModelUnavailableError as exc:
        pytest.skip(str(exc))


class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1, one model entry per alias."""

    def __init__(self, gguf: Path, *, api_key: str | None = None, aliases: tuple[str, ...] = ("base",),
                 n_ctx: int = 1024, start_timeout: float = 120.0) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.api_key = api_key
        self.folder = Path(tempfile.mkdtemp(prefix="llama-server-"))
        self.log = self.folder / "server.log"
        models = [
            {"model": str(gguf), "model_alias": alias, "n_ctx": n_ctx, "n_threads": 1, "n_threads_batch": 1,
             "logits_all": True, "verbose": False}
            for alias in aliases
        ]
        config = {"host": "127.0.0.1", "port": self.port, "api_key": api_key, "models": models,
                  "interrupt_requests": False}  # else a second request cuts a stream short
        (self.folder / "config.json").write_text(json.dumps(config))
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LlamaServer:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--config_file", str(self.folder / "config.json")],
                stdout=log, stderr=subprocess.STDOUT,
            )
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({self.process.returncode}): {self.tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", headers=headers, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.__exit__(None, None, None)
        raise RuntimeError(f"llama_cpp.server did not answer within {self.start_timeout} s: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(data).encode()


def sse_reply(events: list[Any]) -> Reply:
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return 200, {"Content-Type": "text/event-stream"}, body.encode()


def chat_reply(text: str, finish: str = "stop", usage: dict[str, int] | None = None) -> Reply:
    data: dict[str, Any] = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                         "finish_reason": finish}]}
    if usage is not None:
        data["usage"] = usage
    return json_reply(data)


class ScriptedServer:
    """An HTTP server on 127.0.0.1 whose answers come from `handler(method, path, json_body)`; it records
    every request as (method, path, headers, body)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.answer("GET")

            def do_POST(self) -> None:
                self.answer("POST")

            def answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                outer.requests.append((method, self.path, dict(self.headers), body))
                status, headers, payload = outer.handler(method, self.path, body)
                self.send_response(status)
                for key, value in {"Content-Length": str(len(payload)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _, _ in self.requests if method is None or m == method]

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
