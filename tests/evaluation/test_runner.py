"""The evaluation end to end on the toy domain with the tiny model: records, scoring, resume, few-shot
selection, option scoring with trained adapters, advise, the data-size sweep, reports and user errors."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from assistant.config import Config
from assistant.errors import InputError, NotFoundError
from assistant.evaluation import runner
from assistant.evaluation.advise import advise, ladder
from assistant.evaluation.report import report_run
from assistant.evaluation.runner import evaluate
from assistant.evaluation.store import RunStore
from assistant.jobs.sweep import parse_amounts, sweep_data
from assistant.types import QAItem
from tests.evaluation.conftest import DOMAIN, N_TEST, eval_qa

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def quiet(msg: str) -> None:
    pass


def test_eval_writes_one_scored_record_per_question_and_strategy(eval_config: Config) -> None:
    strategies = ["base", "fewshot:2", "cot", "rag"]
    run = evaluate(DOMAIN, strategies, eval_config, progress=False, log=quiet)
    store = RunStore.open(eval_config)
    records = store.records(run.run_id)
    assert run.status == "done" and run.strategies == strategies
    assert Counter(r.strategy for r in records) == dict.fromkeys(strategies, N_TEST)
    assert run.fingerprint["model"] == eval_config.generation.model and run.fingerprint["index"]["name"] == DOMAIN
    test_ids = {i.id for i in eval_qa() if i.split == "test"}
    train_ids = {i.id for i in eval_qa() if i.split == "train"}
    for r in records:
        assert r.item_id in test_ids and not r.error, r
        assert r.latency > 0 and isinstance(r.correct, bool)
        if r.answer_type == "label" and r.strategy != "cot":
            assert r.scored in ("yes", "no", "maybe") and set(r.extra["option_scores"]) == {"yes", "no", "maybe"}
            assert r.correct == (r.scored == r.gold)
        if r.strategy == "cot":
            assert r.scored is None  # CoT is judged on its parsed final answer only
        if r.strategy == "rag":
            assert r.retrieved_ids and r.extra["uses_retrieval"]
        if r.answer_type in ("arithmetic", "span", "free"):
            assert r.em is not None and r.f1 is not None
        if not r.correct:
            assert r.bucket
    # a rung's questions are answered eight at a time (evaluation.batch): 11 test questions, 8 then 3
    together = Counter(r.extra.get("answered_together") for r in records if r.strategy == "base")
    assert eval_config.evaluation.batch == 8 and together == {8: 8, 3: 3}
    # few-shot: demonstrations come from train only, and never repeat the question being asked
    for r in store.records(run.run_id, "fewshot:2"):
        demos = r.extra["demonstrations"]
        assert demos and set(demos) <= train_ids
        if r.question == "Is coffee good?":
            assert "ev:trainleak" not in demos

    path = report_run(run.run_id, eval_config, command="assistant eval --domain evaltoy")
    text = path.read_text()
    assert path.name == "report.md" and "assistant eval --domain evaltoy" in text
    assert {"accuracy.png", "accuracy_latency.png", "errors.png"} <= {p.name for p in path.parent.iterdir()}
    for strategy in strategies:
        assert f"| {strategy} |" in text


def test_an_interrupted_run_resumes_without_duplicates(eval_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    config = replace(eval_config, evaluation=replace(eval_config.evaluation, batch=2))  # questions answered in twos
    real = runner.answer_items
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "answer_items", flaky)
    with pytest.raises(KeyboardInterrupt):
        evaluate(DOMAIN, ["base", "rag"], config, progress=False, log=quiet)
    store = RunStore.open(config)
    (run,) = store.runs(DOMAIN)
    assert run.status == "running" and len(store.records(run.run_id)) == 4
    seen: list[str] = []

    def counted(assistant: object, spec: str, items: list[QAItem], *a: object) -> object:
        assert len(items) <= 2
        seen.extend(i.id for i in items)
        return real(assistant, spec, items, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "answer_items", counted)
    done = evaluate(DOMAIN, ["base", "rag"], config, run_id=run.run_id, progress=False, log=quiet)
    assert done.status == "done" and len(seen) == 2 * N_TEST - 4
    keys = [(r.strategy, r.item_id) for r in store.records(run.run_id)]
    assert len(keys) == len(set(keys)) == 2 * N_TEST


def test_option_scoring_picks_what_the_adapter_was_trained_to_say(with_adapters: Config) -> None:
    run = evaluate(DOMAIN, ["adapter:yes", "adapter:no"], with_adapters, corpora=["evaltoy"], progress=False, log=quiet)
    store = RunStore.open(with_adapters)
    for name in ("yes", "no"):
        labels = [r for r in store.records(run.run_id, f"adapter:{name}") if r.answer_type == "label"]
        assert labels and all(r.scored == name for r in labels), [r.extra for r in labels]
        assert all(r.parsed == name for r in labels)  # the generated "Yes." / "No." parses too


def test_limit_and_seed_choose_the_same_sample(eval_config: Config) -> None:
    a = evaluate(DOMAIN, ["base"], eval_config, limit=3, seed=1, progress=False, log=quiet)
    b = evaluate(DOMAIN, ["base"], eval_config, limit=3, seed=1, progress=False, log=quiet)
    store = RunStore.open(eval_config)
    ids = [sorted(r.item_id for r in store.records(x.run_id)) for x in (a, b)]
    assert ids[0] == ids[1] and len(ids[0]) == 3


def test_user_errors(eval_config: Config, with_adapters: Config) -> None:
    with pytest.raises(NotFoundError, match="unknown strategy 'magic'"):
        evaluate(DOMAIN, "base,magic", eval_config, log=quiet)
    with pytest.raises(NotFoundError, match="unknown adapter 'nope'"):
        evaluate(DOMAIN, ["adapter:nope"], eval_config, log=quiet)
    with pytest.raises(InputError, match="needs the adapter's name"):
        evaluate(DOMAIN, ["adapter"], eval_config, log=quiet)
    with pytest.raises(NotFoundError, match="unknown domain"):
        evaluate("nowhere", ["base"], eval_config, log=quiet)
    with pytest.raises(InputError, match="not part of the 'evaltoy' domain"):
        evaluate(DOMAIN, ["base"], eval_config, corpora=["pubmedqa"], log=quiet)
    with pytest.raises(NotFoundError, match="no evaluation runs yet"):
        RunStore.open(eval_config).get_run("nope")
    with pytest.raises(NotFoundError, match="no evaluation runs yet"):
        report_run("nope", eval_config)
    assert RunStore.open(eval_config).runs() == []  # nothing was started


def test_a_domain_without_test_questions_is_a_clear_error(eval_config: Config) -> None:
    with pytest.raises(InputError, match="has no test questions"):
        evaluate("medical", ["base"], eval_config, log=quiet)


def test_advise_climbs_the_ladder_and_recommends(with_adapters: Config, tmp_path: Path) -> None:
    specs = [s for s, _ in ladder(DOMAIN, with_adapters)]
    assert specs[:4] == ["base", "fewshot:3", "cot", "rag"]
    assert specs[4].startswith("adapter") and specs[5].startswith("rag+adapter")
    advice = advise(DOMAIN, with_adapters, progress=False, log=quiet)
    evaluated = [r.strategy for r in advice.rungs if r.status == "evaluated"]
    assert evaluated[0] == "base" and advice.recommended in evaluated
    text = advice.text()
    assert "Recommendation: " in text and advice.run_id in text
    records = RunStore.open(with_adapters).records(advice.run_id)
    assert {r.strategy for r in records} == set(evaluated)
    # a resumed run keeps the adapters it evaluated, whatever adapter is newest now
    kept = ladder(DOMAIN, with_adapters, ["base", "adapter:old-one", "rag+adapter:old-ctx"])
    assert [s for s, _ in kept][4:] == ["adapter:old-one", "rag+adapter:old-ctx"] and not kept[4][1]


def test_advise_patience_never_skips_rag_or_adapter_rungs(with_adapters: Config) -> None:
    impatient = with_adapters.replace(evaluation=replace(with_adapters.evaluation, patience=1, min_gain=1.0))
    advice = advise(DOMAIN, impatient, limit=3, progress=False, log=quiet)
    status = {r.strategy.partition(":")[0]: r.status for r in advice.rungs}
    assert [status[k] for k in ("base", "fewshot", "cot", "rag")] == ["evaluated", "evaluated", "skipped", "evaluated"]
    assert status["adapter"] != "skipped" and status["rag+adapter"] != "skipped"  # evaluated, or no adapter
    assert "no gain in the last 1 rungs" in advice.text()


def test_sweep_trains_one_adapter_per_amount_and_plots_them(eval_config: Config) -> None:
    assert parse_amounts("0.5,1.0,3") == [(0.5, None), (1.0, None), (None, 3)]
    with pytest.raises(InputError, match="fractions"):
        parse_amounts("0.5,abc")
    with pytest.raises(InputError, match="whole item counts"):
        parse_amounts("2.5")
    options = {"seq_len": 128, "batch_size": 2, "quantize": False, "gradient_checkpointing": False, "max_steps": 2}
    run, points = sweep_data(DOMAIN, "0.5,1.0", "sft", eval_config, references=["base"], train_options=options,
                             progress=False, log=quiet)
    adapters = {p["strategy"] for p in points if "strategy" in p}
    assert adapters == {"adapter:evaltoy-sft-f0.5", "adapter:evaltoy-sft-f1"}
    assert [p["reference"] for p in points if "reference" in p] == ["base"]
    assert RunStore.open(eval_config).get_run(run.run_id).meta["sweep"] == points
    path = report_run(run.run_id, eval_config)
    assert (path.parent / "data_size.png").is_file()


def test_rescore_scores_stored_answers_again(eval_config: Config) -> None:
    from assistant.evaluation.runner import rescore

    run = evaluate(DOMAIN, ["base"], eval_config, limit=4, progress=False, log=quiet)
    store = RunStore.open(eval_config)
    first = store.records(run.run_id)[0]
    first.correct = not first.correct  # as if scored by an older, different rule
    store.add(first)
    assert rescore(run.run_id, eval_config) == 1
    again = {r.item_id: r.correct for r in store.records(run.run_id)}
    assert again[first.item_id] is (not first.correct) and len(again) == 4


def test_a_run_is_not_resumed_on_another_engine(eval_config: Config) -> None:
    """Records made in fp32 and in bf16 would not compare: resuming on another dtype is refused."""
    from assistant.models import clear_generators

    run = evaluate(DOMAIN, ["base"], eval_config, limit=2, progress=False, log=quiet)
    assert RunStore.open(eval_config).get_run(run.run_id).made_with.engine["dtype"] == "float32"  # type: ignore[index]
    clear_generators()
    bf16 = eval_config.replace(generation=replace(eval_config.generation, dtype="bfloat16"))
    with pytest.raises(InputError, match=r"another engine \(dtype bfloat16, not float32\)"):
        evaluate(DOMAIN, ["base", "rag"], bf16, run_id=run.run_id, progress=False, log=quiet)
    clear_generators()
