"""The OpenAI-compatible backend (assistant/models/openai_api.py) against a real server and scripted ones.

    .venv/bin/pytest tests/test_openai_backend.py -q -p no:cacheprovider

The main paths run against llama-cpp-python's own OpenAI-compatible server on 127.0.0.1, serving the
embedded SmolLM2 GGUF under two names ("base", and "medical-sft" standing for an adapter the server
serves); they are skipped when llama-cpp-python or its server extras are missing. Error paths a real
server cannot be made to show (garbage JSON, 503s, slow answers) use a tiny scripted HTTP server, and the
token estimate uses httpx's MockTransport (no server at all).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.config import Config, GenerationConfig
from assistant.errors import InputError, ModelUnavailableError, NotFoundError
from assistant.models.adapters import adapter_slot, attach
from assistant.models.openai_api import (
    NOT_CHOSEN,
    OpenAIGenerator,
    cut_words,
    estimate_ids,
    estimate_text,
)
from assistant.models.scoring import distinct, first_token_scores, reply_option
from tests.openai_server import (
    LlamaServer,
    ScriptedServer,
    chat_reply,
    embedded_server,
    free_port,
    json_reply,
    sse_reply,
)

KEY_ENV = "ASSISTANT_TEST_OPENAI_KEY"
KEY = "test-key"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
YES_NO = [{"role": "user", "content": "Is the sky blue? Answer yes or no."}]


MADE: list[OpenAIGenerator] = []


def make(base_url: str, transport: httpx.BaseTransport | None = None, **overrides: Any) -> OpenAIGenerator:
    settings: dict[str, Any] = {"backend": "openai", "base_url": base_url, "model": "base", "api_key_env": KEY_ENV,
                                "max_new_tokens": 32, **overrides}
    MADE.append(OpenAIGenerator(GenerationConfig(**settings), transport=transport))
    return MADE[-1]


@pytest.fixture(autouse=True)
def _close_generators() -> Iterator[None]:
    """Each test's generators close their connections (no sockets left to the garbage collector)."""
    yield
    while MADE:
        MADE.pop().close()


def one_line(exc: pytest.ExceptionInfo[Exception]) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# ---------------------------------------------------------------- the real server
@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    with embedded_server(api_key=KEY, aliases=("base", "medical-sft")) as running:
        yield running


@pytest.fixture
def gen(server: LlamaServer, monkeypatch: pytest.MonkeyPatch) -> OpenAIGenerator:
    monkeypatch.setenv(KEY_ENV, KEY)
    return make(server.base_url)


def record(gen: OpenAIGenerator) -> list[dict[str, Any]]:
    """The JSON bodies of the generator's completion requests from now on (not tokenize)."""
    bodies: list[dict[str, Any]] = []

    def hook(request: httpx.Request) -> None:
        if request.url.path.endswith("completions"):
            bodies.append({"path": request.url.path, **json.loads(request.content)})

    gen.http.client.event_hooks["request"].append(hook)
    return bodies


def test_engine_reports_server_tokens_and_logprobs(gen: OpenAIGenerator, server: LlamaServer) -> None:
    assert gen.engine() == {"base_url": server.base_url, "scoring": "logprobs", "tokens": "server"}
    assert gen.identity()["backend"] == "openai" and KEY not in json.dumps(gen.identity())
    ids = gen.encode("yes no maybe")
    assert ids and gen.decode(ids) == "yes no maybe"
    assert gen.count_tokens("yes no maybe") == len(ids)
    cut = gen.truncate("The quick brown fox jumps over the lazy dog", 3)
    assert "The quick brown fox".startswith(cut) and 0 < gen.count_tokens(cut) <= 3


def test_generate_greedy(gen: OpenAIGenerator) -> None:
    # the server re-reads only the last prompt token once the prompt is cached, and llama.cpp's logits for
    # one token read alone differ slightly from the same token in a batch: compare cached with cached
    gen.generate(QUESTION, temperature=0)
    out = gen.generate(QUESTION, temperature=0)
    assert out.text and out.text == out.text.strip()
    assert out.prompt_tokens > 0 and out.output_tokens > 0 and out.seconds > 0
    assert out.finish_reason in ("stop", "length")
    assert gen.generate(QUESTION, temperature=0).text == out.text  # greedy: reproducible


def test_length_finish_and_plain_prompt(gen: OpenAIGenerator) -> None:
    out = gen.generate(QUESTION, max_new_tokens=3)
    assert out.finish_reason == "length" and out.output_tokens == 3
    bodies = record(gen)
    plain = gen.generate("The capital of France is", max_new_tokens=4)
    assert plain.text and bodies[-1]["path"].endswith("/completions") and "chat" not in bodies[-1]["path"]
    assert bodies[-1]["prompt"] == "The capital of France is" and bodies[-1]["temperature"] == 0.0


def test_stream_joins_to_generate(gen: OpenAIGenerator) -> None:
    gen.generate(QUESTION)  # the prompt cached, as for the stream below (see test_generate_greedy)
    expected = gen.generate(QUESTION)
    stream = gen.stream(QUESTION)
    pieces = list(stream)
    assert len(pieces) > 1 and "".join(pieces) == expected.text
    assert stream.result is not None and stream.result.text == expected.text
    assert stream.result.output_tokens > 0 and stream.result.finish_reason == expected.finish_reason


def test_stream_fails_at_call_and_closes_early(server: LlamaServer, gen: OpenAIGenerator) -> None:
    with pytest.raises(NotFoundError, match="no-such-adapter"):
        gen.stream(QUESTION, adapter="no-such-adapter")
    short = make(server.base_url, max_input_tokens=4)
    with pytest.raises(InputError, match="the prompt is"):
        short.stream(QUESTION)
    stream = gen.stream(QUESTION, max_new_tokens=32)
    assert next(stream)
    stream.close()
    assert stream.result is None
    assert gen.generate(QUESTION, max_new_tokens=4).text  # the server is free again


def test_stop_strings(gen: OpenAIGenerator) -> None:
    reply = gen.generate(QUESTION).text
    words = reply.split()
    assert len(words) > 3, reply
    stop = " " + words[2]
    expected = reply[: reply.index(stop)].strip()
    out = gen.generate(QUESTION, stop=[stop])
    assert out.text == expected and out.finish_reason == "stop"
    # More stop strings than OpenAI's 4: the server gets 4, the rest are cut here, streaming too.
    many = ["zzz1", "zzz2", "zzz3", "zzz4", stop]
    assert gen.generate(QUESTION, stop=many).text == expected
    stream = gen.stream(QUESTION, stop=many)
    assert "".join(stream) == expected and stream.result is not None and stream.result.text == expected


def test_score_options_by_logprobs(gen: OpenAIGenerator) -> None:
    reply = gen.generate(YES_NO, max_new_tokens=4).text
    first = reply.split()[0].strip(".,!").lower()
    assert first in ("yes", "no"), reply
    scores = gen.score_options(YES_NO, ["yes", "no"])
    assert all(math.isfinite(s) and s < 0 for s in scores) and gen.last_scoring_note is None
    assert ["yes", "no"][scores.index(max(scores))] == first
    assert sum(math.exp(s) for s in scores) <= 1.0 + 1e-6  # probabilities of distinct tokens: none counted twice
    options = ["yes", "no", "definitely not"]
    raw = gen.score_options(YES_NO, options)
    normalized = gen.score_options(YES_NO, options, normalize=True)
    n = gen.count_tokens("definitely not")
    assert n > 1 and normalized[2] == pytest.approx(raw[2] / n) and normalized[:2] == pytest.approx(raw[:2])


def test_score_options_shared_first_token_generates(gen: OpenAIGenerator) -> None:
    reply = gen.generate(YES_NO, max_new_tokens=8).text
    word = reply.split()[0].strip(".,!")
    options = [word + " indeed", word + " and more", "something else"]
    scores = gen.score_options(YES_NO, options)
    assert gen.last_scoring_note and "share their first token" in gen.last_scoring_note
    assert set(scores) <= {0.0, NOT_CHOSEN}
    assert gen.score_options(YES_NO, ["yes", "no"]) and gen.last_scoring_note is None


def test_adapter_slot_sends_served_name(gen: OpenAIGenerator, config: Config) -> None:
    folder = config.adapters_dir / "medical-sft"
    folder.mkdir(parents=True)
    record_file = {"name": "medical-sft", "kind": "sft", "created": "2025-01-01T00:00:00",
                   "base": {"spec": "base"}, "data": {"domain": "medical"}}
    (folder / "training.json").write_text(json.dumps(record_file))
    slot = attach(gen, "medical-sft", config)  # path is None: no base check, the server serves the adapter
    assert gen.adapters == [slot] and attach(gen, "medical-sft", config) == slot
    bodies = record(gen)
    with_adapter = gen.generate(QUESTION, adapter=slot, max_new_tokens=8)
    assert bodies[-1]["model"] == "medical-sft"
    base = gen.generate(QUESTION, max_new_tokens=8)
    assert bodies[-1]["model"] == "base"
    assert with_adapter.text == base.text  # the same GGUF under both names
    assert gen.score_options(QUESTION, ["Paris", "London"], adapter=slot)
    assert bodies[-1]["model"] == "medical-sft"
    gen.delete_adapter(slot)
    assert gen.adapters == []
    with pytest.raises(ModelUnavailableError) as exc:
        gen.load_adapter(Path("adapters/finance-sft"), "finance-sft")
    message = one_line(exc)
    assert "'finance-sft' is not served" in message and "base, medical-sft" in message
    assert "--lora-modules finance-sft=adapters/finance-sft" in message


def test_concurrent_questions(gen: OpenAIGenerator) -> None:
    prompts = [[{"role": "user", "content": f"Name a color number {i}."}] for i in range(3)]
    alone = [gen.generate(p, max_new_tokens=8).text for p in prompts]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda p: gen.generate(p, max_new_tokens=8).text, prompts))
    assert together == alone


def test_jobs_are_sent_together_and_each_keeps_its_own_error(gen: OpenAIGenerator) -> None:
    from assistant.models import Job

    prompts = [[{"role": "user", "content": f"Name a color number {i}."}] for i in range(3)]
    alone = [gen.generate(p, max_new_tokens=8).text for p in prompts]
    jobs = [Job(YES_NO, ("yes", "no"), 4), *(Job(p, (), 8) for p in prompts), Job(YES_NO, (), 4, adapter="none-such")]
    first, *colors, unknown = gen.run_jobs(jobs)
    assert first.scores == pytest.approx(gen.score_options(YES_NO, ["yes", "no"]), abs=1e-6)
    assert first.generation is not None and first.error is None
    assert [d.generation.text for d in colors if d.generation] == alone and all(d.scores is None for d in colors)
    assert unknown.generation is None and isinstance(unknown.error, NotFoundError)


def test_unknown_model(server: LlamaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # llama-cpp-python's server would quietly answer with its first model: the backend checks /models.
    monkeypatch.setenv(KEY_ENV, KEY)
    with pytest.raises(ModelUnavailableError) as exc:
        make(server.base_url, model="nope").generate(QUESTION)
    message = one_line(exc)
    assert "model 'nope' is not served" in message and server.base_url in message
    assert "it serves: base, medical-sft" in message and "generation.model" in message


def test_wrong_or_missing_key(server: LlamaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "wrong")
    with pytest.raises(ModelUnavailableError) as exc:
        make(server.base_url).generate(QUESTION)
    message = one_line(exc)
    assert f"refused the API key in ${KEY_ENV}" in message and "HTTP 401" in message
    assert server.base_url in message and "'base'" in message
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ModelUnavailableError, match=rf"wants an API key \(HTTP 401\): set \${KEY_ENV}"):
        make(server.base_url).generate(QUESTION)


# ---------------------------------------------------------------- scripted servers: errors and retries
def test_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError) as exc:
        make(url, max_retries=1).generate(QUESTION)
    message = one_line(exc)
    assert f"cannot reach the openai server at {url} (model 'base')" in message
    assert "is the server running?" in message and "2 tries" in message
    assert time.monotonic() - start < 10


def test_slow_server_times_out() -> None:
    def slow(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        time.sleep(1.5)
        return json_reply({})

    with ScriptedServer(slow) as fake, pytest.raises(ModelUnavailableError) as exc:
        make(fake.base_url, timeout_s=0.3, max_retries=0).generate(QUESTION)
    assert "did not answer within 0.3 s" in one_line(exc)


def test_malformed_json() -> None:
    with ScriptedServer(lambda m, p, b: (200, {"Content-Type": "text/html"}, b"<html>oops</html>")) as fake:
        gen = make(fake.base_url)
        with pytest.raises(ModelUnavailableError) as exc:
            gen.generate(QUESTION)
        message = one_line(exc)
        assert f"the openai server at {fake.base_url} (model 'base') returned malformed JSON" in message
        assert "<html>oops" in message and gen.tokens_mode() == "estimate"
    no_choices = ScriptedServer(lambda m, p, b: json_reply({"choices": []}) if "chat" in p else json_reply({}, 404))
    with no_choices as fake, pytest.raises(ModelUnavailableError, match=r"JSON for /chat/completions \(no 'choices'\)"):
        make(fake.base_url).generate(QUESTION)


def test_unknown_endpoint_404() -> None:
    missing = ScriptedServer(lambda m, p, b: json_reply({"detail": "Not Found"}, 404))
    with missing as fake, pytest.raises(ModelUnavailableError) as exc:
        make(fake.base_url).generate(QUESTION)
    assert "has no /chat/completions (HTTP 404: Not Found): check generation.base_url" in one_line(exc)


@pytest.mark.parametrize("status", [429, 503])
def test_retries_then_success(status: int) -> None:
    calls: list[str] = []

    def flaky(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        if not path.endswith("/chat/completions"):
            return json_reply({"detail": "Not Found"}, 404)
        calls.append(path)
        if len(calls) <= 2:
            return json_reply({"error": {"message": "busy"}}, status, {"Retry-After": "0"})
        return chat_reply("Hello there.", usage={"prompt_tokens": 7, "completion_tokens": 3})

    with ScriptedServer(flaky) as fake:
        out = make(fake.base_url).generate(QUESTION)
    assert (out.text, out.prompt_tokens, out.output_tokens, out.finish_reason) == ("Hello there.", 7, 3, "stop")
    assert len(calls) == 3


def test_backoff_and_giving_up() -> None:
    calls: list[float] = []

    def down(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        if not path.endswith("/chat/completions"):
            return json_reply({}, 404)
        calls.append(time.monotonic())
        return json_reply({"error": {"message": "model is loading"}}, 503)

    with ScriptedServer(down) as fake, pytest.raises(ModelUnavailableError) as exc:
        make(fake.base_url, max_retries=2).generate(QUESTION)
    message = one_line(exc)
    assert "failed on /chat/completions (HTTP 503): model is loading" in message
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.45 and calls[2] - calls[1] >= 0.95  # 0.5 s, then 1 s


def test_no_key_sends_no_authorization(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        return chat_reply("Hi.") if path.endswith("/chat/completions") else json_reply({}, 404)

    monkeypatch.delenv(KEY_ENV, raising=False)
    with ScriptedServer(handler) as fake:
        make(fake.base_url).generate(QUESTION)
        assert all("authorization" not in {k.lower() for k in h} for _, _, h, _ in fake.requests)
        monkeypatch.setenv(KEY_ENV, "k1")
        fake.requests.clear()
        make(fake.base_url).generate(QUESTION)
        assert all(h.get("Authorization") == "Bearer k1" for _, _, h, _ in fake.requests)


def test_stream_over_sse_with_usage() -> None:
    events = [
        {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"content": " Hel"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"content": "lo!"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}},
    ]

    def handler(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        if path.endswith("/chat/completions"):
            assert body["stream"] and body["stream_options"] == {"include_usage": True}
            return sse_reply(events)
        return json_reply({}, 404)

    with ScriptedServer(handler) as fake:
        stream = make(fake.base_url).stream(QUESTION)
        assert "".join(stream) == "Hello!"
    assert stream.result is not None
    assert (stream.result.text, stream.result.prompt_tokens, stream.result.output_tokens) == ("Hello!", 9, 2)
    assert stream.result.finish_reason == "length"


# ---------------------------------------------------------------- no server: estimate, scoring helpers
def mock(handler: Any = None) -> httpx.MockTransport:
    return httpx.MockTransport(handler or (lambda request: httpx.Response(404, json={"detail": "Not Found"})))


def test_token_estimate_and_truncation() -> None:
    gen = make("http://server.invalid/v1", transport=mock())
    assert gen.tokens_mode() == "estimate" and gen.engine()["scoring"] == "generate"
    text = "The quick brown fox jumps over the lazy dog"
    ids = gen.encode(text)
    assert len(ids) == math.ceil(len(text) / 4) == gen.count_tokens(text)
    assert gen.decode(ids) == text and gen.decode(ids[:3]) == text[:12]
    assert estimate_text(estimate_ids("a\x00é😀b")) == "a\x00é😀b"
    assert gen.truncate(text, 3) == "The quick"  # 12 characters, back to the word boundary
    assert gen.truncate(text, 4) == "The quick brown"  # cut falls on a space
    assert gen.truncate(text, 100) == text and gen.truncate(text, 0) == ""
    assert cut_words("Supercalifragilistic", 8) == "Supercal"  # no boundary in reach: a hard cut
    with pytest.raises(InputError, match="the prompt is"):
        make("http://server.invalid/v1", transport=mock(), max_input_tokens=3).encode_prompt(QUESTION)


def test_scoring_by_generating_without_logprobs() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/chat/completions"):
            return httpx.Response(200, json={"choices": [{"message": {"content": "Maybe, it depends."}}]})
        return httpx.Response(404)

    gen = make("http://server.invalid/v1", transport=mock(handler))
    assert gen.score_options(YES_NO, ["yes", "no", "maybe"]) == [NOT_CHOSEN, NOT_CHOSEN, 0.0]
    assert gen.last_scoring_note and "no logprobs" in gen.last_scoring_note and "'maybe'" in gen.last_scoring_note
    with pytest.raises(InputError, match="empty option"):
        gen.score_options(YES_NO, ["yes", " "])


def test_adapter_names_with_dots() -> None:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "base"}, {"id": "medical.sft"}]})
        if request.url.path.endswith("/chat/completions"):
            sent.append(json.loads(request.content)["model"])
            return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]})
        return httpx.Response(404)

    gen = make("http://server.invalid/v1", transport=mock(handler))
    slot = adapter_slot("medical.sft")
    gen.load_adapter(None, slot)
    assert gen.generate(QUESTION, adapter=slot).text == "ok" and sent == ["medical.sft"]
    with pytest.raises(InputError, match="already attached"):
        gen.load_adapter(None, slot)


def test_first_token_scores_and_reply_option() -> None:
    top = [("No", -1.0), (" no", -3.0), ("Yes", -2.0), ("The", -4.0)]
    scores = first_token_scores(top, ["no", "yes", "maybe"])
    assert scores[0] == pytest.approx(math.log(math.exp(-1.0) + math.exp(-3.0)))
    assert scores[1] == -2.0 and scores[2] == -5.0  # not in the list: the lowest minus 1
    # the server lists the chosen token alone and again among the top ones: it counts once
    assert distinct([("No", -1.0), ("No", -1.0), (" no", -3.0)]) == [("No", -1.0), (" no", -3.0)]
    assert reply_option("No, it is not.", ["yes", "no"]) == 1
    assert reply_option("Nothing", ["no", "yes"]) is None  # a whole word, not a prefix of one
    assert reply_option("yes, definitely", ["yes", "yes, definitely"]) == 1  # the longest
