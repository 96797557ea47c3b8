"""Named models as part of a rung (rag@big): config, parsing, one run across models with each record's
model and engine, token-priced cost, the report, and advise trying the existing models first."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from assistant.config import EMBEDDED_GENERATOR, Config, load_config
from assistant.errors import ConfigError, InputError, NotFoundError
from assistant.evaluation.advise import advise, ladder
from assistant.evaluation.report import report_run
from assistant.evaluation.runner import evaluate, parse_strategies, split_rung
from assistant.evaluation.store import RunStore
from assistant.evaluation.summary import summarize
from tests.evaluation.conftest import DOMAIN, N_TEST

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def test_models_in_config(tmp_path: Path) -> None:
    (tmp_path / "assistant.yaml").write_text(
        "models:\n  small: embedded\n  big: {backend: openai, base_url: 'http://127.0.0.1:9/v1', model: qwen}\n"
        "  hosted: {backend: openai, base_url: 'https://api.example.com/v1', model: m, usd_per_million_input: 0.15,"
        " usd_per_million_output: 0.6}\n")
    config = load_config(home=tmp_path)
    assert config.for_model("small").generation.model == EMBEDDED_GENERATOR
    big = config.for_model("big").generation
    assert (big.backend, big.base_url, big.model) == ("openai", "http://127.0.0.1:9/v1", "qwen")
    assert config.models["hosted"].cost(1_000_000, 1_000_000) == pytest.approx(0.75)
    with pytest.raises(NotFoundError, match=r"unknown model 'huge' \(known: big, hosted, small\)"):
        config.for_model("huge")
    (tmp_path / "assistant.yaml").write_text("models:\n  big: {backend: gpu}\n")
    with pytest.raises(ConfigError, match=r"models\.big\.backend must be one of"):
        load_config(home=tmp_path)


def test_rung_specs_name_models(eval_config: Config) -> None:
    config = eval_config.replace(models={})
    assert split_rung("rag@big") == ("rag", "big") and split_rung("fewshot:3") == ("fewshot:3", None)
    with pytest.raises(NotFoundError, match="unknown model 'big'"):
        parse_strategies("base,rag@big", config)
    with pytest.raises(InputError, match="name a model after '@'"):
        parse_strategies("rag@", config)


def two_models(config: Config) -> Config:
    path = config.generation.model
    (config.home / "assistant.yaml").write_text(
        (config.home / "assistant.yaml").read_text()
        + f"models:\n  fp32: {{model: '{path}', dtype: float32}}\n"
        f"  priced: {{model: '{path}', dtype: bfloat16, usd_per_million_input: 2.0, usd_per_million_output: 8.0}}\n")
    return load_config()


def test_one_run_across_two_models(eval_config: Config) -> None:
    config = two_models(eval_config)
    run = evaluate(DOMAIN, ["base@fp32", "rag@priced", "base"], config, progress=False, log=lambda m: None)
    store = RunStore.open(config)
    records = store.records(run.run_id)
    assert Counter(r.strategy for r in records) == dict.fromkeys(["base@fp32", "rag@priced", "base"], N_TEST)
    assert {r.extra.get("model") for r in records} == {"fp32", "priced", None}
    engines = store.get_run(run.run_id).meta["engines"]
    assert engines["fp32"]["dtype"] == "float32" and engines["priced"]["dtype"] == "bfloat16"
    priced = [r for r in records if r.strategy == "rag@priced"]
    assert all(r.extra["usd"] == pytest.approx((2 * r.prompt_tokens + 8 * r.output_tokens) / 1e6) for r in priced)
    costs = {s.strategy: s.cost_per_1000 for s in summarize(records)}
    assert costs["rag@priced"] == pytest.approx(sum(r.extra["usd"] for r in priced) / len(priced) * 1000)
    text = report_run(run.run_id, config).read_text()
    assert "| base@fp32 |" in text and "| rag@priced |" in text and "- model `priced` (rungs `...@priced`)" in text
    # resuming with a model whose engine changed is refused, naming the model
    changed = config.replace(models={**config.models, "fp32": config.models["priced"]})
    with pytest.raises(InputError, match="another engine for model fp32"):
        evaluate(DOMAIN, ["base@fp32"], changed, run_id=run.run_id, progress=False, log=lambda m: None)


def test_advise_tries_the_existing_models_first(eval_config: Config) -> None:
    config = two_models(eval_config)
    rungs = [spec for spec, _ in ladder(DOMAIN, config, models=["priced"])]
    assert rungs[:4] == ["base@priced", "fewshot:3@priced", "rag@priced", "base"]
    advice = advise(DOMAIN, config, limit=3, progress=False, log=lambda m: None, models=["priced"])
    evaluated = [r.strategy for r in advice.rungs if r.status == "evaluated"]
    assert evaluated[:3] == ["base@priced", "fewshot:3@priced", "rag@priced"]  # never skipped by patience
    assert "base" in evaluated  # nor is the domain's own baseline, whatever the misses before it
    assert advice.recommended in evaluated


def test_the_router_may_choose_a_rung_on_a_named_model(eval_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant import routing
    from assistant.api import Assistant
    from assistant.router.policy import Decision

    config = two_models(eval_config)
    assert {"rag@priced", "base@fp32", "fewshot:2@priced"} <= routing.available_specs(DOMAIN, config)
    real = routing.route

    def learned(ctx, question, filters=None):  # a learned policy that picked a rung on a named model
        decision, signals = real(ctx, question, filters)
        return Decision("rag@priced", "learned: rag@priced scores best", decision.domain), signals

    monkeypatch.setattr(routing, "route", learned)
    answer = Assistant(DOMAIN, config).ask("Is tea good?")
    assert answer.strategy == "rag@priced" and answer.sources
    assert answer.reason == f"auto -> learned: rag@priced scores best [model priced: {config.generation.model}]"
