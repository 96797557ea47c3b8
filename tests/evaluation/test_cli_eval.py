"""`assistant eval | advise | report | runs` through typer's runner on the toy domain and the tiny model."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.config import Config
from assistant.evaluation.store import RunStore
from tests.evaluation.conftest import DOMAIN, N_TEST

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_eval_report_runs(eval_config: Config) -> None:
    code, out = run("eval", "--domain", DOMAIN, "--strategies", "base,rag", "--batch", "4", "--quiet")
    assert code == 0, out
    store = RunStore.open(eval_config)
    (r,) = store.runs()
    records = store.records(r.run_id)
    assert len(records) == 2 * N_TEST
    # answered four at a time (11 questions: 4, 4, 3), and the run's settings say so
    assert r.config["evaluation"]["batch"] == 4 and {x.extra["answered_together"] for x in records} == {4, 3}
    assert "base" in out and f"run {r.run_id}: report" in out
    report = eval_config.runs_dir / r.run_id / "report.md"
    text = report.read_text()
    assert "assistant eval --domain evaltoy --strategies base,rag --batch 4 --quiet\n" in text
    assert "answered 4 questions of a rung at a time" in text

    code, out = run("runs", "list")
    assert code == 0 and r.run_id in out and "done" in out
    out_dir = eval_config.home / "elsewhere"
    code, out = run("report", "--out", str(out_dir))  # the latest run by default
    assert code == 0, out
    assert (out_dir / "report.md").is_file() and (out_dir / "accuracy.png").is_file()
    code, out = run("runs", "delete", r.run_id)
    assert code == 0 and store.runs() == []


def test_advise_prints_the_ladder(eval_config: Config) -> None:
    code, out = run("advise", "--domain", DOMAIN, "--limit", "4", "--corpus", "evaltoy", "--quiet")
    assert code == 0, out
    assert "Ladder for 'evaltoy'" in out and "Recommendation:" in out
    assert "adapter" in out and "unavailable" in out  # no adapters trained for the toy domain


def test_user_errors_exit_2_with_one_line(eval_config: Config) -> None:
    cases = [
        (("eval", "--domain", DOMAIN, "--strategies", "base,magic"), "unknown strategy 'magic'"),
        (("eval", "--domain", DOMAIN, "--strategies", "adapter:nope"), "unknown adapter 'nope'"),
        (("eval", "--domain", DOMAIN, "--strategies", "fewshot:9"), "K from 1 to 6"),
        (("eval", "--domain", DOMAIN, "--run", "nope"), "no evaluation runs yet"),
        (("eval", "--domain", DOMAIN, "--sweep-data", "x"), "--sweep-data takes"),
        (("eval", "--domain", DOMAIN, "--sweep-data", "0.5", "--adapter-recipe", "magic"), "unknown adapter recipe"),
        (("report", "--run", "nope"), "no evaluation runs yet"),
        (("report",), "no evaluation runs yet"),
    ]
    for args, message in cases:
        code, out = run(*args)
        assert code == 2, (args, out)
        assert message in out, (args, out)
        assert "Traceback" not in out
