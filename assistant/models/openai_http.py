"""HTTP for the OpenAI-compatible backend: one shared httpx.Client, retries with backoff, one-line errors.

    http = OpenAIHTTP(config.generation)                      # base_url, key from $api_key_env, timeout
    data = http.call("/chat/completions", body, model="llama3.2")      # JSON dict, or a one-line error
    response = http.send("POST", "/chat/completions", body, model=..., stream=True)
    for event in sse_events(response, http, "/chat/completions", "llama3.2"): ...

Requests are retried (0.5 s, 1 s, 2 s ... `generation.max_retries` times; a small `Retry-After` is honoured)
on 429, 5xx, timeouts and refused connections. What is left becomes a ModelUnavailableError (InputError for
a request the server rejects as invalid) naming the model, the backend, the server and the fix, never a
traceback. httpx.Client is thread-safe: concurrent questions go to the server in parallel.
Used by assistant/models/openai_api.py; tested in tests/test_openai_backend.py.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Generator as PieceGenerator
from dataclasses import dataclass
from typing import Any

import httpx

from assistant.config import GenerationConfig
from assistant.errors import AssistantError, InputError, ModelUnavailableError
from assistant.models.streaming import Generation, GenerationStream, visible_text

BACKOFF_S = 0.5
MAX_RETRY_AFTER_S = 10.0  # a longer Retry-After (a quota reset) is not waited for: backoff as usual
START_HINT = "e.g. `python -m llama_cpp.server --model FILE.gguf`, `vllm serve MODEL` or `ollama serve`"


def served_as(name: str, listed: Sequence[str]) -> str | None:
    """The listed model id that `name` asks for: itself, or with Ollama's default tag (`llama3.2` is
    listed as `llama3.2:latest`); None when the server does not serve it."""
    for candidate in (name, f"{name}:latest"):
        if candidate in listed:
            return candidate
    return None


@dataclass(frozen=True)
class Tokenizer:
    """A server's tokenize and detokenize endpoints (at its root, not under /v1)."""

    tokenize: str
    tokenize_body: Callable[[str, str], dict[str, Any]]  # (text, model) -> request
    detokenize: str
    detokenize_body: Callable[[list[int], str], dict[str, Any]]  # (ids, model) -> request
    text_field: str  # where the detokenize answer holds the text


# Tried once, in this order: llama.cpp's server, vLLM, llama-cpp-python's server.
TOKENIZERS = (
    Tokenizer("/tokenize", lambda text, model: {"content": text},
              "/detokenize", lambda ids, model: {"tokens": ids}, "content"),
    Tokenizer("/tokenize", lambda text, model: {"model": model, "prompt": text, "add_special_tokens": False},
              "/detokenize", lambda ids, model: {"model": model, "tokens": ids}, "prompt"),
    Tokenizer("/extras/tokenize", lambda text, model: {"input": text, "model": model},
              "/extras/detokenize", lambda ids, model: {"tokens": ids, "model": model}, "text"),
)


def first_line(text: str, limit: int = 200) -> str:
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def server_message(response: httpx.Response) -> str:
    """The error message a server put in its body ({"error": {"message": ...}}, {"detail": ...}, text)."""
    try:
        data = response.json()
    except ValueError:
        return first_line(response.text)
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        return first_line(str(err if err is not None else data))
    return first_line(str(data))


def retry_after(response: httpx.Response) -> float | None:
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None  # absent, or an HTTP date: use the backoff
    return seconds if 0 <= seconds <= MAX_RETRY_AFTER_S else None


class OpenAIHTTP:
    """The server at `config.base_url`: requests with retries, and the errors a user can fix."""

    def __init__(self, config: GenerationConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = config.base_url.rstrip("/")
        # Non-OpenAI endpoints (llama.cpp's /tokenize) live at the server's root, above /v1.
        self.root_url = self.base_url.removesuffix("/v1")
        self.key_env = config.api_key_env
        self.max_retries = config.max_retries
        self.timeout_s = config.timeout_s
        key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        self.has_key = bool(key)
        headers = {"Authorization": f"Bearer {key}"} if key else {}  # a local server needs none
        self.client = httpx.Client(headers=headers, timeout=config.timeout_s, transport=transport)

    def close(self) -> None:
        self.client.close()

    def url(self, path: str, *, root: bool = False) -> str:
        return (self.root_url if root else self.base_url) + path

    # ---------------------------------------------------------------- requests
    def send(self, method: str, path: str, body: dict[str, Any] | None = None, *, model: str, root: bool = False,
             stream: bool = False, probe: bool = False) -> httpx.Response:
        """The server's response after retrying connection errors, 429 and 5xx; 401/403 raise (a wrong key
        is never taken for a missing endpoint). A `probe` (is there such an endpoint?) retries connection
        errors only. With `stream`, the body is not read yet: the caller closes the response."""
        tries = 1 + self.max_retries
        for attempt in range(tries):
            last = attempt == tries - 1
            request = self.client.build_request(method, self.url(path, root=root), json=body)
            try:
                response = self.client.send(request, stream=stream)
            except httpx.TransportError as exc:
                if last:
                    raise self.unreachable(exc, model, tries) from None
                time.sleep(BACKOFF_S * 2**attempt)
                continue
            status = response.status_code
            if status in (401, 403):
                response.close()
                raise self.auth_error(response, model)
            if probe or last or not (status == 429 or status >= 500):
                return response
            wait = retry_after(response)
            response.close()
            time.sleep(BACKOFF_S * 2**attempt if wait is None else wait)
        raise AssertionError("unreachable")  # the loop returns or raises on its last try

    def call(self, path: str, body: dict[str, Any], *, model: str) -> dict[str, Any]:
        """POST `body` to `path` and return the JSON object it answers, or raise a one-line error."""
        response = self.send("POST", path, body, model=model)
        if response.status_code >= 400:
            raise self.status_error(response, path, model)
        return self.json_of(response, path, model)

    def json_of(self, response: httpx.Response, path: str, model: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise self.malformed(path, model, f"not JSON: {first_line(response.text, 80)!r}") from None
        if not isinstance(data, dict):
            raise self.malformed(path, model, f"a JSON {type(data).__name__}, not an object")
        return data

    def models(self, model: str) -> list[dict[str, Any]] | None:
        """The server's model list (GET /models), or None where it has none (or answers it oddly).
        Unreachable servers and refused keys raise: nothing else would work either."""
        response = self.send("GET", "/models", model=model)
        if response.status_code != 200:
            return None
        try:
            data = response.json().get("data")
        except (ValueError, AttributeError):
            return None
        if not isinstance(data, list):
            return None
        return [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    def tokenize(self, tok: Tokenizer, text: str, model: str, *, probe: bool = False) -> list[int] | None:
        """Token ids of `text`; with `probe`, None where the endpoint is missing or answers oddly."""
        response = self.send("POST", tok.tokenize, tok.tokenize_body(text, model), model=model, root=True,
                             probe=probe)
        if response.status_code >= 400:
            if probe:
                return None
            raise self.status_error(response, tok.tokenize, model)
        try:
            tokens = response.json().get("tokens")
        except (ValueError, AttributeError):
            tokens = None
        if isinstance(tokens, list) and all(isinstance(t, int) for t in tokens):
            return [int(t) for t in tokens]
        if probe:
            return None
        raise self.malformed(tok.tokenize, model, "no list of token ids in 'tokens'")

    def detokenize(self, tok: Tokenizer, ids: Sequence[int], model: str) -> str:
        response = self.send("POST", tok.detokenize, tok.detokenize_body(list(ids), model), model=model, root=True)
        if response.status_code >= 400:
            raise self.status_error(response, tok.detokenize, model)
        text = self.json_of(response, tok.detokenize, model).get(tok.text_field)
        if not isinstance(text, str):
            raise self.malformed(tok.detokenize, model, f"no text in '{tok.text_field}'")
        return text

    # ---------------------------------------------------------------- errors
    def where(self, model: str) -> str:
        return f"the openai server at {self.base_url} (model '{model}')"

    def unreachable(self, exc: httpx.TransportError, model: str, tries: int) -> ModelUnavailableError:
        attempts = f"{tries} tries" if tries > 1 else "1 try"
        if isinstance(exc, httpx.TimeoutException):
            return ModelUnavailableError(
                f"{self.where(model)} did not answer within {self.timeout_s:g} s ({attempts}): "
                f"raise generation.timeout_s or check the server's load"
            )
        return ModelUnavailableError(
            f"cannot reach {self.where(model)} ({type(exc).__name__}, {attempts}): is the server running? "
            f"start it ({START_HINT}) or fix generation.base_url"
        )

    def auth_error(self, response: httpx.Response, model: str) -> ModelUnavailableError:
        code = response.status_code
        if not self.has_key:
            return ModelUnavailableError(
                f"{self.where(model)} wants an API key (HTTP {code}): set ${self.key_env} "
                f"(generation.api_key_env names the variable)"
            )
        return ModelUnavailableError(
            f"{self.where(model)} refused the API key in ${self.key_env} (HTTP {code}): "
            f"set ${self.key_env} to a valid key"
        )

    def status_error(self, response: httpx.Response, path: str, model: str) -> AssistantError:
        code = response.status_code
        message = server_message(response)
        if code == 404:
            served = self.models(model)
            names = [m["id"] for m in served or []]
            if served is not None and model not in names:
                return self.not_served(model, names)
            return ModelUnavailableError(
                f"{self.where(model)} has no {path} (HTTP 404: {message}): check generation.base_url "
                f"(OpenAI-compatible servers answer under /v1)"
            )
        if code in (400, 413, 422):
            return InputError(f"{self.where(model)} rejected the request to {path} (HTTP {code}): {message}")
        if code == 429:
            return ModelUnavailableError(
                f"{self.where(model)} is rate-limiting (HTTP 429 after {self.max_retries} retries): {message}; "
                f"wait, or raise generation.max_retries"
            )
        return ModelUnavailableError(
            f"{self.where(model)} failed on {path} (HTTP {code}): {message}; check the server's log"
        )

    def not_served(self, model: str, served: list[str]) -> ModelUnavailableError:
        listed = ", ".join(served) if served else "none"
        return ModelUnavailableError(
            f"model '{model}' is not served by the openai server at {self.base_url} (it serves: {listed}): "
            f"set generation.model to a served name, or start the server with it "
            f"(vLLM: --served-model-name / --lora-modules NAME=PATH; llama-cpp-python: model_alias)"
        )

    def adapter_not_served(self, served: str, listed: list[str], path: object) -> ModelUnavailableError:
        return ModelUnavailableError(
            f"adapter '{served}' is not served by the openai server at {self.base_url} "
            f"(it serves: {', '.join(listed) or 'none'}): start the server with it "
            f"(vLLM: --lora-modules {served}={path or 'PATH'}; llama.cpp server: --lora; "
            f"llama-cpp-python: a model entry with model_alias '{served}')"
        )

    def malformed(self, path: str, model: str, detail: str) -> ModelUnavailableError:
        return ModelUnavailableError(
            f"{self.where(model)} returned malformed JSON for {path} ({detail}): "
            f"is generation.base_url an OpenAI-compatible API (usually ending in /v1)?"
        )


def sse_events(response: httpx.Response, http: OpenAIHTTP, path: str, model: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a server-sent event stream's `data:` lines, up to `data: [DONE]`."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, comments (": ping"), event names
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            event = json.loads(payload)
        except ValueError:
            raise http.malformed(path, model, f"stream event {first_line(payload, 80)!r}") from None
        if not isinstance(event, dict):
            raise http.malformed(path, model, "a stream event that is not an object")
        if "error" in event:
            error = event["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ModelUnavailableError(f"{http.where(model)} failed while streaming: {first_line(str(message))}")
        yield event


# (raw reply, finish reason, usage, seconds) -> the Generation, as the backend finishes a reply
Finish = Callable[[str, Any, Any, float], Generation]


class OpenAIStream(GenerationStream):
    """A GenerationStream over a server-sent event stream (chat `delta.content` or completion `text`
    pieces); `result` is set once the iteration ends; `close()` closes the connection (the server stops)."""

    def __init__(self, http: OpenAIHTTP, response: httpx.Response, path: str, model: str, stop: list[str],
                 finish: Finish, start: float) -> None:  # not GenerationStream.__init__: that one runs a model
        self.result: Generation | None = None
        self._response = response
        self._pieces = self._read(http, path, model, stop, finish, start)

    def close(self) -> None:
        self._pieces.close()
        self._response.close()

    def _read(self, http: OpenAIHTTP, path: str, model: str, stop: list[str], finish: Finish,
              start: float) -> PieceGenerator[str, None, None]:
        raw, sent, reason, usage = "", "", None, None
        try:
            for event in sse_events(self._response, http, path, model):
                usage = event["usage"] if isinstance(event.get("usage"), dict) else usage
                choices = event.get("choices")
                if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
                    continue  # the usage event (include_usage) has no choices
                reason = choices[0].get("finish_reason") or reason
                delta = choices[0].get("delta")
                piece = (delta.get("content") if isinstance(delta, dict) else None) if path.startswith("/chat") \
                    else choices[0].get("text")
                if isinstance(piece, str) and piece:
                    raw += piece
                    text = visible_text(raw, stop, final=False)
                    if len(text) > len(sent) and text.startswith(sent):
                        yield text[len(sent) :]
                        sent = text
                    if any(s in raw for s in stop):
                        break  # a stop string the server was not told about (it takes 4)
        except httpx.TransportError as exc:
            raise http.unreachable(exc, model, 1) from None
        finally:
            self._response.close()
        self.result = finish(raw, reason, usage, time.perf_counter() - start)
        text = self.result.text
        if len(text) > len(sent) and text.startswith(sent):
            yield text[len(sent) :]


__all__ = ["TOKENIZERS", "OpenAIHTTP", "OpenAIStream", "Tokenizer", "first_line", "server_message", "sse_events"]
