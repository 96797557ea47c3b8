"""Answer modes in the evaluation: rungs "rag/extractive" and "rag/auto" beside "rag", each record naming its mode,
closed-label verdicts untouched by the mode, and a run's default mode part of its fingerprint (toy domain)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from assistant.config import Config
from assistant.errors import ConfigError, InputError
from assistant.evaluation.runner import evaluate, parse_strategies, split_mode, split_rung
from assistant.evaluation.store import RunStore
from tests.evaluation.conftest import DOMAIN, N_TEST

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def quiet(msg: str) -> None:
    pass


def test_rung_specs_carry_an_answer_mode(eval_config: Config) -> None:
    assert split_mode("rag@big/auto") == ("rag@big", "auto") and split_rung("rag@big/auto") == ("rag", "big")
    assert split_rung("rag/extractive") == ("rag", None) and split_mode("rag") == ("rag", None)
    assert parse_strategies("rag, rag/auto ,auto/extractive", eval_config) == ["rag", "rag/auto", "auto/extractive"]
    with pytest.raises(ConfigError, match="'rag/guess': the answer mode after '/' must be one of generate, extractive, auto"):
        parse_strategies("rag/guess", eval_config)
    with pytest.raises(InputError, match="answer modes apply to rungs that retrieve"):
        parse_strategies("base/auto", eval_config)


def test_modes_are_rungs_recorded_per_record_and_leave_labels_alone(eval_config: Config) -> None:
    specs = ["rag", "rag/extractive", "rag/generate"]
    run = evaluate(DOMAIN, specs, eval_config, progress=False, log=quiet)
    assert run.made_with.engine is not None and run.made_with.engine["answer_mode"] == "auto"  # the default
    records = RunStore.open(eval_config).records(run.run_id)
    assert len(records) == N_TEST * len(specs)
    by = {(r.strategy, r.item_id): r for r in records}
    for r in records:
        assert not r.error, r
        assert r.extra["answer_mode"] == {"rag": "auto", "rag/extractive": "extractive", "rag/generate": "generate"}[r.strategy]
        assert "unsupported" in r.extra and "grounded" in r.extra
        assert set(r.extra["evidence_ids"]) <= set(r.retrieved_ids)  # the documents its quotes come from
        if r.answer_type == "label":  # generated in every mode, judged by the same option scores
            plain = by[("rag/generate", r.item_id)]
            assert r.extra["answered_with"] == ("generated" if r.strategy == "rag/generate" else "generated (closed labels)")
            assert r.extra["option_scores"] == plain.extra["option_scores"] and r.correct == plain.correct
            assert r.answer == plain.answer
    costs = by[("rag/extractive", "ev:span")]
    assert costs.extra["answered_with"] == "evidence sentence" and costs.output_tokens == 0
    assert "Costs were 40 in 2019." in costs.answer


def test_a_run_is_not_resumed_in_another_default_mode(eval_config: Config) -> None:
    run = evaluate(DOMAIN, ["rag"], eval_config, limit=2, progress=False, log=quiet)
    generate = eval_config.replace(generation=replace(eval_config.generation, answer_mode="generate"))
    with pytest.raises(InputError, match=r"another engine \(answer_mode generate, not auto\)"):
        evaluate(DOMAIN, ["rag"], generate, run_id=run.run_id, progress=False, log=quiet)
