"""The OpenAI-compatible backend: any server with /v1/chat/completions (vLLM, Ollama, llama.cpp's server,
llama-cpp-python's server, a hosted API) behind the Generator interface.

    gen = OpenAIGenerator(GenerationConfig(backend="openai", base_url="http://127.0.0.1:8000/v1", model="base"))
    gen.generate([{"role": "user", "content": "Is aspirin an NSAID?"}]).text
    gen.load_adapter(Path("adapters/medical-sft"), "medical-sft")   # a name the server serves (--lora-modules)
    gen.score_options(msgs, ["yes", "no", "maybe"])                  # first-token logprobs, or generate-and-parse

Chat messages go to /chat/completions (the server applies its own chat template, so `render` is plain
"role: content" text, used only to count the prompt); a string prompt goes to /completions. Adapters are
served model names: the slot `medical-sft` sends `model: medical-sft`. Tokens come from the server's
tokenize endpoint where it has one (llama.cpp, vLLM, llama-cpp-python), else from an estimate of 4
characters a token; `engine()` says which, and which option scoring the server allows. Nothing is locked:
the shared httpx client sends concurrent questions to the server in parallel. HTTP, retries and the
one-line errors live in models/openai_http.py. Tests: `.venv/bin/pytest tests/test_openai_backend.py -q`.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from assistant.config import GenerationConfig
from assistant.errors import InputError
from assistant.models.adapters import slot_name
from assistant.models.generator import (
    Done,
    EncodedPrompt,
    Generator,
    Job,
    Message,
    Prompt,
    as_stop_list,
    check_options,
    plain_render,
)
from assistant.models.openai_http import (
    TOKENIZERS,
    OpenAIHTTP,
    OpenAIStream,
    Tokenizer,
    served_as,
    server_message,
)
from assistant.models.scoring import distinct, first_token_scores, norm, reply_option
from assistant.models.streaming import FinishReason, Generation, GenerationStream, visible_text

CHAT, COMPLETIONS = "/chat/completions", "/completions"
CHARS_PER_TOKEN = 4  # the token estimate where the server has no tokenize endpoint
TOP_LOGPROBS = 20  # OpenAI's maximum
NOT_CHOSEN = -1e9  # generate-and-parse scoring: the options the reply does not start with
MAX_STOP = 4  # OpenAI accepts at most 4 stop strings; the rest are cut here (visible_text)


# ---------------------------------------------------------------- estimated tokens
def estimate_ids(text: str) -> list[int]:
    """One id per 4 characters, each id the characters themselves (21 bits each, under a leading 1 bit),
    so that `estimate_text` gives back exactly the text of any run of ids."""
    ids = []
    for i in range(0, len(text), CHARS_PER_TOKEN):
        value = 1
        for char in reversed(text[i : i + CHARS_PER_TOKEN]):
            value = (value << 21) | ord(char)
        ids.append(value)
    return ids


def estimate_text(ids: Sequence[int]) -> str:
    chars = []
    for value in ids:
        while value > 1:
            chars.append(chr(value & 0x1FFFFF))
            value >>= 21
    return "".join(chars)


def cut_words(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars` characters, at a word boundary where one is in the second half."""
    if len(text) <= max_chars:
        return text
    if text[max_chars].isspace():
        return text[:max_chars].rstrip()
    cut = text[:max_chars]
    space = max((m.start() for m in re.finditer(r"\s", cut)), default=-1)
    return (cut[:space] if space >= max_chars // 2 else cut).rstrip()


class OpenAIGenerator(Generator):
    """A model served over HTTP; `config.model` is the served name, `config.base_url` the server."""

    backend = "openai"

    def __init__(self, config: GenerationConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(config.model, config, path=None,
                         context_length=config.max_input_tokens + config.max_new_tokens)
        self.http = OpenAIHTTP(config, transport=transport)
        self.served: dict[str, str] = {}  # adapter slot -> the model name the server serves it under
        self.last_scoring_note: str | None = None  # why the last score_options call did not use logprobs
        self._init = threading.RLock()  # the lazy probes below run once; generation itself takes no lock
        self._models: list[str] | None = None
        self._models_checked = False
        self._tokenizer: Tokenizer | None = None
        self._bos: list[int] = []  # ids a tokenize endpoint puts before any text (a BOS): left out
        self._tokens_mode: str | None = None
        self._scoring_mode: str | None = None

    def close(self) -> None:
        self.http.close()

    # ---------------------------------------------------------------- what the server offers (probed once)
    def served_models(self) -> list[str] | None:
        """The model names the server lists (None where it has no /models); checks `self.name` is one."""
        if not self._models_checked:
            with self._init:
                if not self._models_checked:
                    listed = self.http.models(self.name)
                    if listed is not None:
                        names = [m["id"] for m in listed]
                        if served_as(self.name, names) is None:
                            raise self.http.not_served(self.name, names)
                        self._context_from(next(m for m in listed if m["id"] == served_as(self.name, names)))
                        self._models = names
                    self._models_checked = True
        return self._models

    def _context_from(self, entry: dict[str, Any]) -> None:
        """vLLM (and some others) list the served context length with the model."""
        length = next((entry[k] for k in ("max_model_len", "context_length") if isinstance(entry.get(k), int)), 0)
        if length > 1:
            self.context_length = min(self.context_length, length)
            self.max_input_tokens = min(self.config.max_input_tokens, self.context_length - 1)

    def tokens_mode(self) -> str:
        """"server" where the server tokenizes (counts are exact), "estimate" (4 characters a token)."""
        if self._tokens_mode is None:
            with self._init:
                if self._tokens_mode is None:
                    for tok in TOKENIZERS:
                        empty = self.http.tokenize(tok, "", self.name, probe=True)
                        if empty is not None and self.http.tokenize(tok, "Hi there", self.name, probe=True):
                            self._tokenizer, self._bos = tok, empty
                            break
                    self._tokens_mode = "estimate" if self._tokenizer is None else "server"
        return self._tokens_mode

    def scoring_method(self) -> str:
        """"logprobs" where the server returns top log-probs of a chat reply, else "generate"."""
        if self._scoring_mode is None:
            with self._init:
                if self._scoring_mode is None:
                    probe = EncodedPrompt("", [1], ({"role": "user", "content": "Is water wet? Answer yes or no."},))
                    top, _ = self._top_logprobs(probe, self.name, probe=True)
                    self._scoring_mode = "generate" if top is None else "logprobs"
        return self._scoring_mode

    def engine(self) -> dict[str, Any]:
        found = {"base_url": self.http.base_url, "scoring": self.scoring_method(), "tokens": self.tokens_mode()}
        return found | ({"extra_body": dict(self.config.extra_body)} if self.config.extra_body else {})

    # ---------------------------------------------------------------- text <-> tokens
    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        """Plain "role: content" text, to count the prompt: the server applies its own chat template."""
        return plain_render(messages, add_generation_prompt=add_generation_prompt)

    def encode(self, text: str) -> list[int]:
        if self.tokens_mode() == "estimate" or self._tokenizer is None:
            return estimate_ids(text)
        ids = self.http.tokenize(self._tokenizer, text, self.name) or []
        n = len(self._bos)
        return ids[n:] if n and ids[:n] == self._bos else ids

    def decode(self, ids: Sequence[int]) -> str:
        if self.tokens_mode() == "estimate" or self._tokenizer is None:
            return estimate_text(ids)
        return self.http.detokenize(self._tokenizer, ids, self.name) if ids else ""

    def truncate(self, text: str, max_tokens: int) -> str:
        """`text` cut to at most `max_tokens` tokens; with estimated tokens at a word boundary."""
        if self.tokens_mode() == "server":
            return super().truncate(text, max_tokens)
        return cut_words(text, max_tokens * CHARS_PER_TOKEN) if max_tokens > 0 else ""

    # ---------------------------------------------------------------- adapters: served model names
    @property
    def adapters(self) -> list[str]:
        return list(self.served)

    def load_adapter(self, path: Path | str | None, name: str, served_name: str | None = None) -> None:
        """Attach slot `name` as the model name the server serves the adapter under (by default the
        adapter's name). `path` is not read: the server loads the adapter (vLLM `--lora-modules NAME=PATH`,
        llama.cpp's server `--lora`, llama-cpp-python a second model entry with `model_alias`)."""
        served = served_name or slot_name(name)
        with self.lock:
            if name in self.served:
                raise InputError(f"an adapter named '{name}' is already attached: delete it first")
            listed = self.served_models()
            if listed is not None and served_as(served, listed) is None:
                raise self.http.adapter_not_served(served, listed, path)
            self.served[name] = served

    def delete_adapter(self, name: str) -> None:
        with self.lock:
            self.check_adapter(name)
            del self.served[name]
            self.adapter_sources.pop(name, None)

    def model_for(self, adapter: str | None) -> str:
        """The model name to send: the base's, or the served name of adapter slot `adapter`."""
        self.check_adapter(adapter)
        self.served_models()
        return self.served[adapter] if adapter is not None else self.name

    # ---------------------------------------------------------------- generation
    def _request(self, prompt: EncodedPrompt, model: str, max_new_tokens: int | None, temperature: float | None,
                 stop: list[str], *, stream: bool = False) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            **dict(self.config.extra_body),  # the server's own settings (none of the fields set here)
            "model": model,
            "max_tokens": self.max_new(len(prompt.ids), max_new_tokens),
            "temperature": self.temperature(temperature),  # 0: greedy
        }
        if stop:
            body["stop"] = stop[:MAX_STOP]
        if prompt.messages is not None:
            path, body["messages"] = CHAT, [dict(m) for m in prompt.messages]
        else:
            path, body["prompt"] = COMPLETIONS, prompt.text
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})  # ignored by some servers
        return path, body

    def finish(self, prompt: EncodedPrompt, raw: str, stop: Sequence[str], reason: Any, usage: Any,
               seconds: float) -> Generation:
        """The Generation of a reply `raw`, as the in-process backends give it (visible_text)."""
        stopped = any(s in raw for s in stop)
        finish: FinishReason = "length" if reason == "length" and not stopped else "stop"
        usage = usage if isinstance(usage, dict) else {}
        n_prompt = usage.get("prompt_tokens")
        n_out = usage.get("completion_tokens")
        return Generation(
            visible_text(raw, stop, final=True),
            n_prompt if isinstance(n_prompt, int) else len(prompt.ids),
            n_out if isinstance(n_out, int) else (self.count_tokens(raw) if raw else 0),
            seconds,
            finish,
        )

    def generate(self, messages: Prompt, *, max_new_tokens: int | None = None, temperature: float | None = None,
                 stop: Sequence[str] = (), adapter: str | None = None) -> Generation:
        prompt = self.encode_prompt(messages)
        model = self.model_for(adapter)
        stops = as_stop_list(stop)
        path, body = self._request(prompt, model, max_new_tokens, temperature, stops)
        start = time.perf_counter()
        data = self.http.call(path, body, model=model)
        seconds = time.perf_counter() - start
        choice = self._choice(data, path, model)
        raw = choice.get("message", {}).get("content") if path == CHAT else choice.get("text")
        if raw is not None and not isinstance(raw, str):
            raise self.http.malformed(path, model, "the reply is not text")
        return self.finish(prompt, raw or "", stops, choice.get("finish_reason"), data.get("usage"), seconds)

    def _choice(self, data: dict[str, Any], path: str, model: str) -> dict[str, Any]:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self.http.malformed(path, model, "no 'choices'")
        if path == CHAT and not isinstance(choices[0].get("message"), dict):
            raise self.http.malformed(path, model, "no 'message' in the choice")
        return choices[0]

    def stream(self, messages: Prompt, *, max_new_tokens: int | None = None, temperature: float | None = None,
               stop: Sequence[str] = (), adapter: str | None = None) -> GenerationStream:
        """The reply as text pieces; the request is sent here, so a bad prompt, adapter or server fails
        where stream() is called. `close()` stops reading and closes the connection (the server stops)."""
        prompt = self.encode_prompt(messages)
        model = self.model_for(adapter)
        stops = as_stop_list(stop)
        path, body = self._request(prompt, model, max_new_tokens, temperature, stops, stream=True)
        start = time.perf_counter()
        response = self.http.send("POST", path, body, model=model, stream=True)
        if response.status_code >= 400:
            response.read()
            response.close()
            raise self.http.status_error(response, path, model)

        def finish(raw: str, reason: Any, usage: Any, seconds: float) -> Generation:
            return self.finish(prompt, raw, stops, reason, usage, seconds)

        return OpenAIStream(self.http, response, path, model, stops, finish, start)

    # ---------------------------------------------------------------- option scoring
    def run_jobs(self, jobs: Sequence[Job]) -> list[Done]:
        """Up to `generation.max_batch` jobs in flight at once: a server with parallel slots (vLLM, llama.cpp's
        `--parallel`) writes their replies together."""
        if len(jobs) < 2:
            return super().run_jobs(jobs)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(len(jobs), self.config.max_batch), thread_name_prefix="openai-job") as pool:
            return list(pool.map(self.run_job, jobs))

    def _top_logprobs(self, prompt: EncodedPrompt, model: str,
                      probe: bool = False) -> tuple[list[tuple[str, float]] | None, str]:
        """The top tokens of the reply's first position with their log-probs, or None and why not."""
        body: dict[str, Any] = {"model": model, "max_tokens": 1, "temperature": 0.0}
        if prompt.messages is not None:
            path = CHAT
            body.update(messages=[dict(m) for m in prompt.messages], logprobs=True, top_logprobs=TOP_LOGPROBS)
        else:
            path = COMPLETIONS
            body.update(prompt=prompt.text, logprobs=TOP_LOGPROBS)
        response = self.http.send("POST", path, body, model=model, probe=probe)
        if response.status_code >= 400:
            return None, f"the server refused logprobs (HTTP {response.status_code}: {server_message(response)})"
        try:
            logprobs = response.json()["choices"][0]["logprobs"]
            if path == CHAT:
                first = logprobs["content"][0]
                top = [(t["token"], float(t["logprob"])) for t in [first, *first.get("top_logprobs", [])]]
            else:
                top = [(t, float(lp)) for t, lp in logprobs["top_logprobs"][0].items()]
                top.append((logprobs["tokens"][0], float(logprobs["token_logprobs"][0])))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None, "the server returned no logprobs"
        top = distinct([(t, lp) for t, lp in top if isinstance(t, str) and math.isfinite(lp)])
        return (top, "") if top else (None, "the server returned no logprobs")

    def _option_key(self, option: str, top: Sequence[tuple[str, float]]) -> str:
        """The option's first token, normalized: from the server's tokenizer, else the longest top token
        that begins the option."""
        if self.tokens_mode() == "server":
            key = norm(self.decode(self.encode(option.strip())[:1]))
            if key and "\ufffd" not in key:
                return key
        text = norm(option)
        prefixes = [norm(t) for t, _ in top if norm(t) and text.startswith(norm(t))]
        return max(prefixes, key=len) if prefixes else text

    def score_options(self, messages: Prompt, options: Sequence[str], *, normalize: bool = False,
                      adapter: str | None = None) -> list[float]:
        """Log-prob of each option's first token as the reply's first token (summed over case and spacing
        variants; `normalize`: divided by the option's token count). Where the server gives no logprobs or
        options share their first token: generate a short reply and give 0.0 to the option it starts with,
        -1e9 to the others; `last_scoring_note` says why."""
        check_options(options)
        if not options:
            return []
        for option in options:
            if not option.strip():
                raise InputError(f"cannot score the empty option {option!r}")
        prompt = self.encode_prompt(messages)
        model = self.model_for(adapter)
        self.last_scoring_note = None
        why = "the server returns no logprobs"
        if self.scoring_method() == "logprobs":
            top, why = self._top_logprobs(prompt, model)
            if top is not None:
                keys = [self._option_key(o, top) for o in options]
                shared = next((k for k in keys if keys.count(k) > 1), None)
                if shared is None:
                    scores = first_token_scores(top, keys)
                    if normalize:
                        scores = [s / max(1, self.count_tokens(o)) for s, o in zip(scores, options, strict=True)]
                    return scores
                why = f"options share their first token {shared!r}"
        longest = max(self.count_tokens(o) for o in options)
        reply = self.generate(prompt, max_new_tokens=longest + 4, temperature=0.0, adapter=adapter).text
        chosen = reply_option(reply, options)
        found = f"it starts with {options[chosen]!r}" if chosen is not None else "it starts with no option"
        self.last_scoring_note = f"{why}: scored by generating a reply ({reply[:40]!r}; {found})"
        return [0.0 if i == chosen else NOT_CHOSEN for i in range(len(options))]


__all__ = ["OpenAIGenerator", "OpenAIStream", "cut_words", "estimate_ids", "estimate_text", "first_token_scores",
           "reply_option"]
