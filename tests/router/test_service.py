"""The router at work on the toy domain: the auto strategy, out-of-domain and missing-index fallbacks,
learning from evaluation records, refusing records of another model, and the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from assistant.api import Assistant
from assistant.cli import app
from assistant.config import Config, GenerationConfig
from assistant.errors import InputError, NotFoundError
from assistant.evaluation.runner import evaluate
from assistant.jobs.router import eval_router, train_router
from assistant.routing import clear_cache, show_router
from tests.evaluation.conftest import DOMAIN, N_TEST

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
STRATEGIES = ["base", "rag", "adapter:yes", "rag+adapter:yes", "adapter:no"]


@pytest.fixture(autouse=True)
def fresh() -> None:
    clear_cache()


def test_auto_routes_each_question_and_says_why(with_adapters: Config) -> None:
    assistant = Assistant(DOMAIN, with_adapters)
    answer = assistant.ask("Is tea good?")  # the default strategy is auto
    assert answer.strategy in ("rag", "rag+adapter:yes", "rag+adapter:no", "adapter:yes", "adapter:no", "base")
    assert answer.reason.startswith("auto -> ") and "[policy: rules" in answer.reason
    assert "route" in answer.timings and answer.details["signals"]["domain"] == DOMAIN
    outside = assistant.ask("Which team won the world cup final?")
    assert outside.strategy == "base" and "outside the known domains" in outside.reason
    assert not outside.sources


def test_auto_warm_up_loads_what_routing_reads_once(with_adapters: Config) -> None:
    from assistant import routing as service

    assistant = Assistant(DOMAIN, with_adapters)
    assistant.warm_up("auto")
    assert {key[0] for key in service._CACHE} >= {"adapters", "accuracy", "policy", "others"}
    assert assistant.ask("Is tea good?").reason.startswith("auto -> ")


def test_auto_without_an_index_answers_with_base(eval_config: Config) -> None:
    config = eval_config.replace(domains={**eval_config.domains, "empty": eval_config.domains[DOMAIN].__class__(name="empty")})
    answer = Assistant("empty", config).ask("Is tea good?")
    assert answer.strategy == "base" and "index is not built" in answer.reason


def test_train_eval_show_a_learned_router(with_adapters: Config) -> None:
    assert show_router(DOMAIN, with_adapters)["policy"] == "rules"
    with pytest.raises(NotFoundError, match="no evaluation runs for 'evaltoy'"):
        train_router(DOMAIN, [], with_adapters)
    with pytest.raises(NotFoundError, match="no learned router"):
        eval_router(DOMAIN, with_adapters)
    run = evaluate(DOMAIN, STRATEGIES, with_adapters, progress=False, log=lambda m: None)
    metrics = train_router(DOMAIN, [run.run_id], with_adapters)
    held_out = set(metrics["test_ids"])
    assert held_out and metrics["train_questions"] + len(held_out) == N_TEST  # every question, in one part only
    assert metrics["router"]["n"] == len(held_out)
    assert 0.0 <= metrics["router"]["accuracy"] <= metrics["oracle"] <= 1.0
    assert eval_router(DOMAIN, with_adapters)["test_ids"] == metrics["test_ids"]
    info = show_router(DOMAIN, with_adapters)
    assert info["policy"] == "learned" and set(info["strategies"]) <= set(STRATEGIES)
    answer = Assistant(DOMAIN, with_adapters).ask("Is rice good?")
    assert answer.strategy in STRATEGIES
    if metrics["router"]["accuracy"] >= metrics["rules"]["accuracy"]:
        assert "[policy: learned" in answer.reason
    else:  # a learned policy worse than the rules on held-out questions is not used
        assert "below the rules'" in answer.reason

    # the same records no longer describe a router that answers with another model
    other = with_adapters.replace(generation=GenerationConfig(model="/elsewhere/model"))
    with pytest.raises(InputError, match="was made with model"):
        train_router(DOMAIN, [run.run_id], other)
    assert "another index or model" in show_router(DOMAIN, other)["in_use"]


def test_router_methods_and_partly_evaluated_strategies(with_adapters: Config) -> None:
    run = evaluate(DOMAIN, STRATEGIES, with_adapters, progress=False, log=lambda m: None)
    few = evaluate(DOMAIN, ["cot"], with_adapters, limit=3, progress=False, log=lambda m: None)
    said: list[str] = []
    metrics = train_router(DOMAIN, [run.run_id, few.run_id], with_adapters, log=said.append)
    assert any(m.startswith(f"leaving out cot: not evaluated on all {N_TEST} questions") for m in said)
    assert "cot" not in metrics["single"] and "cot" not in show_router(DOMAIN, with_adapters)["strategies"]
    assert metrics["method"] in ("best-single", "per-strategy", "cheapest-correct")
    assert sum(row["chosen"] for row in metrics["cv"]) == 1 and len(metrics["cv"]) == 5
    cf = metrics["crossfit"]
    assert cf["n"] == N_TEST and cf["router"]["n"] == N_TEST and sum(cf["methods"].values()) <= cf["folds"]
    assert 0.0 <= cf["router"]["accuracy"] <= cf["oracle"] <= 1.0
    metrics = train_router(DOMAIN, [run.run_id], with_adapters, method="best-single")
    assert metrics["method"] == "best-single" and [r["method"] for r in metrics["cv"]] == ["best-single"]
    assert "did not predict" in Assistant(DOMAIN, with_adapters).ask("Is rice good?").reason or \
        metrics["router"]["accuracy"] < metrics["rules"]["accuracy"]
    with pytest.raises(InputError, match="unknown router method 'magic'"):
        train_router(DOMAIN, [run.run_id], with_adapters, method="magic")
    with pytest.raises(InputError, match="too few to learn a router"):
        train_router(DOMAIN, [few.run_id], with_adapters)


def test_router_cli(with_adapters: Config) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["router", "show", "--domain", DOMAIN])
    assert result.exit_code == 0 and "policy in use: rules" in result.output
    result = runner.invoke(app, ["router", "train", "--domain", DOMAIN])
    assert result.exit_code == 2 and "no evaluation runs" in result.output
    evaluate(DOMAIN, STRATEGIES, with_adapters, progress=False, log=lambda m: None)
    result = runner.invoke(app, ["router", "train", "--domain", DOMAIN])
    assert result.exit_code == 0, result.output
    assert "learned router" in result.output and "oracle" in result.output
    assert "cross-validated" in result.output and "chosen" in result.output
    assert f"cross-fitted over all {N_TEST} questions" in result.output
    result = runner.invoke(app, ["router", "eval", "--domain", DOMAIN])
    assert result.exit_code == 0 and "rule policy" in result.output
    result = runner.invoke(app, ["router", "train", "--domain", DOMAIN, "--method", "magic"])
    assert result.exit_code != 0 and "unknown router method" in result.output


def test_a_question_of_another_domain_is_answered_from_that_domains_index(with_adapters: Config) -> None:
    from assistant.config import DomainConfig
    from assistant.index import build_index
    from assistant.types import Document

    sports = [Document(id=f"sp:{i}", corpus="sportsdocs", title=f"Match report {i}",
                       text=f"The world cup final in football was won by team {name} after extra time.")
              for i, name in enumerate(("Ardenia", "Borvia", "Calmar"))]
    config = with_adapters.replace(domains={**with_adapters.domains, "sports": DomainConfig("sports")})
    build_index("sports", config, documents=sports, corpora=["sportsdocs"], progress=False)
    clear_cache()
    answer = Assistant(DOMAIN, config).ask("Which team won the world cup final in football?")
    assert answer.domain == "sports" and answer.sources and all(s.doc_id.startswith("sp:") for s in answer.sources)
    assert answer.reason.startswith("auto -> question looks like the sports domain (similarity ")
    assert "answered in the sports domain; " in answer.reason and answer.strategy.startswith("rag")
    assert answer.warnings[0] == f"answered from the 'sports' domain (asked in '{DOMAIN}'): the question looks like it belongs there"
    assert answer.details["asked_in"] == DOMAIN
    # a question of its own domain stays there; one outside every domain is marked unverified
    assert Assistant(DOMAIN, config).ask("Is tea good?").domain == DOMAIN
    outside = Assistant(DOMAIN, config).ask("How do I change a bicycle tyre?")
    assert outside.strategy == "base" and any(w.startswith("unverified: ") for w in outside.warnings)
