"""generation.extra_body: a server's own sampling settings, sent with every reply request of the openai backend.

Config: a mapping in assistant.yaml, shown as one by `assistant config show`, refused for the fields the
backend sets itself or for values that are not scalars; a named model on another server does not inherit
it. Backend: the fields reach a real llama-cpp-python server (its `repeat_penalty` changes a greedy reply),
not its option-scoring requests, and the engine identity records them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from assistant.config import GenerationConfig, dump_config, load_config
from assistant.errors import ConfigError
from assistant.models import describe_backend
from assistant.models.openai_api import OpenAIGenerator
from tests.openai_server import LlamaServer, embedded_server

REPEAT = [{"role": "user", "content": "List ten fruits."}]  # greedy: repeat_penalty 1.3 changes the reply in 32 tokens


def write(home: Path, text: str) -> Path:
    (home / "assistant.yaml").write_text(text, encoding="utf-8")
    return home


def test_a_mapping_in_the_config_shown_as_one(tmp_path: Path) -> None:
    home = write(tmp_path, "generation: {backend: openai, base_url: 'http://127.0.0.1:9/v1', model: m,\n"
                           "             extra_body: {repetition_penalty: 1.15, top_k: 20}}\n"
                           "models: {hosted: {base_url: 'https://api.example.com/v1', model: g},\n"
                           "         same: {model: other},\n"
                           "         vllm: {base_url: 'http://127.0.0.1:8/v1', model: v, extra_body: {min_p: 0.05}}}\n")
    config = load_config(home=home)
    assert config.generation.extra_body == (("repetition_penalty", 1.15), ("top_k", 20))
    assert yaml.safe_load(dump_config(config))["generation"]["extra_body"] == {"repetition_penalty": 1.15, "top_k": 20}
    assert config.for_model("same").generation.extra_body == config.generation.extra_body  # the same server
    assert config.for_model("hosted").generation.extra_body == ()  # another server: not sent there
    assert config.for_model("vllm").generation.extra_body == (("min_p", 0.05),)
    assert json.loads(json.dumps(config.to_dict()))["models"]["vllm"]["extra_body"] == {"min_p": 0.05}
    assert "each reply request with {'repetition_penalty': 1.15, 'top_k': 20}" in describe_backend(config)


@pytest.mark.parametrize(("given", "says"), [
    ("{temperature: 0.5}", "generation.extra_body.temperature: the openai backend sets 'temperature' itself"),
    ("{logit_bias: [1, 2]}", "generation.extra_body.logit_bias: expected a number, string or boolean"),
    ("[repetition_penalty]", "generation.extra_body: expected a mapping of request fields"),
])
def test_fields_the_backend_sets_or_not_scalars_are_refused(tmp_path: Path, given: str, says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(home=write(tmp_path, f"generation: {{extra_body: {given}}}\n"))
    assert says in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match=r"generation\.extra_body\.max_tokens"):
        GenerationConfig(extra_body=(("max_tokens", 5),))


# ---------------------------------------------------------------- the real server
@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    with embedded_server(aliases=("base",)) as running:
        yield running


def generator(server: LlamaServer, **extra: Any) -> OpenAIGenerator:
    return OpenAIGenerator(GenerationConfig(backend="openai", base_url=server.base_url, model="base", max_new_tokens=32,
                                            extra_body=tuple(sorted(extra.items()))))


def test_sent_with_replies_not_with_scoring_and_recorded(server: LlamaServer) -> None:
    plain, penalised = generator(server, repeat_penalty=1.0), generator(server, repeat_penalty=1.3)
    bodies: list[dict[str, Any]] = []

    def hook(request: httpx.Request) -> None:
        if request.url.path.endswith("completions"):
            bodies.append(json.loads(request.content))

    penalised.http.client.event_hooks["request"].append(hook)
    try:
        assert plain.generate(REPEAT).text != penalised.generate(REPEAT).text  # the server applied it
        assert bodies[-1]["repeat_penalty"] == 1.3 and bodies[-1]["temperature"] == 0.0
        assert "".join(penalised.stream(REPEAT)) and bodies[-1]["repeat_penalty"] == 1.3
        before = len(bodies)
        penalised.score_options(REPEAT, ["Yes.", "No."])
        scoring = bodies[before:]  # by log-probs on this server: the model's own
        assert scoring and all("repeat_penalty" not in b and b["max_tokens"] == 1 for b in scoring)
        assert penalised.identity()["extra_body"] == {"repeat_penalty": 1.3}
        assert "extra_body" not in generator(server).identity()
    finally:
        plain.close()
        penalised.close()
