"""`assistant train` and `assistant adapters` through typer's runner, on the tiny model and a tiny QA corpus.

The user path: train an SFT and a CPT adapter, list and show them, answer with the adapter strategies,
merge, delete; and the mistakes a user makes exit 2 with one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.models import clear_generators
from tests.corpus.conftest import write_recipe

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def pubmedqa_like(folder: Path, n: int = 24) -> list[Path]:
    """n PubMedQA-format items, the last 8 of them the test split."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = ["yes", "no", "maybe"]
    items = {
        str(1000 + i): {
            "QUESTION": f"Does treatment number {i} reduce symptom {i % 5}?",
            "CONTEXTS": [f"We studied treatment {i} in {20 + i} patients.", f"Symptom {i % 5} was measured weekly."],
            "LABELS": ["METHODS", "RESULTS"],
            "MESHES": ["Treatment"],
            "YEAR": "2020",
            "reasoning_required_pred": labels[i % 3],
            "reasoning_free_pred": labels[i % 3],
            "final_decision": labels[i % 3],
            "LONG_ANSWER": f"Treatment {i} {'reduced' if i % 3 == 0 else 'did not reduce'} symptom {i % 5}.",
        }
        for i in range(n)
    }
    test = {pmid: items[pmid]["final_decision"] for pmid in list(items)[-8:]}
    (folder / "ori_pqal.json").write_text(json.dumps(items), encoding="utf-8")
    (folder / "test_ground_truth.json").write_text(json.dumps(test), encoding="utf-8")
    return [folder / "ori_pqal.json", folder / "test_ground_truth.json"]


@pytest.fixture
def train_home(home: Path, tiny_model_dir: Path, tmp_path: Path) -> Iterator[Path]:
    (home / "assistant.yaml").write_text(
        "embedding: {model: 'hash:384', quantize: false}\n"
        f"generation: {{model: '{tiny_model_dir}', dtype: float32, max_new_tokens: 8}}\n"
        "training: {batch_size: 2, seq_len: 384, max_steps: 3, eval_every: 2, save_every: 2, quantize: false}\n"
    )
    from assistant.config import load_config

    write_recipe(load_config(), "mini", "pubmedqa", pubmedqa_like(tmp_path / "src"))  # type: ignore[arg-type]
    yield home
    clear_generators()  # the adapters attached here stay off the models other tests share


def test_train_list_show_ask_merge_delete(train_home: Path, tmp_path: Path) -> None:
    code, out = run("train", "sft", "--domain", "mini", "--name", "mini-sft")
    assert code == 0, out
    assert "trained mini-sft (sft)" in out and "3 steps" in out
    folder = train_home / "adapters" / "mini-sft"
    assert {"adapter_config.json", "adapter_model.safetensors", "training.json", "loss.png"} <= {
        p.name for p in folder.iterdir()
    }

    code, out = run("train", "cpt", "--domain", "mini", "--name", "mini-cpt", "--seq-len", "64", "--max-steps", "2")
    assert code == 0, out
    assert "trained mini-cpt (cpt)" in out

    code, out = run("adapters", "list", "--json")
    assert code == 0, out
    listed = {a["name"]: a for a in json.loads(out)}
    assert set(listed) == {"mini-cpt", "mini-sft"}
    assert listed["mini-sft"]["kind"] == "sft" and listed["mini-sft"]["steps"] == 3
    assert listed["mini-sft"]["quantize"] is False
    code, out = run("adapters", "list")
    assert code == 0 and "mini-sft" in out and "LoRA" in out

    code, out = run("adapters", "show", "mini-sft")
    assert code == 0, out
    record = json.loads(out)
    assert record["data"]["corpora"] == ["mini"] and record["data"]["domain"] == "mini"
    assert record["base"]["fingerprint"]

    code, out = run("ask", "Does treatment number 3 reduce symptom 3?", "--strategy", "adapter", "--adapter", "mini-sft",
                    "--json")
    assert code == 0, out
    answer = json.loads(out)
    assert answer["strategy"] == "adapter" and answer["model"].endswith("+ adapter mini-sft")
    code, out = run("ask", "Does it work?", "--strategy", "adapter:mini-cpt", "--json")
    assert code == 0, out
    assert json.loads(out)["model"].endswith("+ adapter mini-cpt")

    merged = tmp_path / "merged"
    code, out = run("adapters", "merge", "mini-sft", "--out", str(merged))
    assert code == 0, out
    assert (merged / "config.json").is_file() and (merged / "merged_from.json").is_file()

    code, out = run("adapters", "delete", "mini-cpt")
    assert code == 0 and not (train_home / "adapters" / "mini-cpt").exists()
    code, out = run("adapters", "show", "mini-cpt")
    assert code == 2 and "unknown adapter 'mini-cpt' (known: mini-sft)" in out


def test_user_errors_exit_2_with_one_line(train_home: Path) -> None:
    cases = [
        (("train", "sft", "--domain", "nowhere", "--name", "x"), "nowhere"),
        (("train", "sft", "--domain", "mini", "--name", "../evil"), "not valid"),
        (("train", "sft", "--domain", "mini", "--name", "x", "--seq-len", "5000"), "longer than the model"),
        (("train", "sft", "--domain", "mini", "--name", "x", "--with-context"), "index build mini"),
        (("ask", "Why?", "--strategy", "adapter"), "needs an adapter"),
        (("ask", "Why?", "--strategy", "adapter", "--adapter", "nope"), "unknown adapter 'nope'"),
        (("ask", "Why?", "--strategy", "base", "--adapter", "nope"), "uses no adapter"),
        (("adapters", "merge", "nope", "--out", "/tmp/x"), "unknown adapter"),
    ]
    for args, message in cases:
        code, out = run(*args)
        assert code == 2, (args, out)
        assert message in out, (args, out)
        assert "Traceback" not in out
    code, out = run("train", "sft", "--domain", "mini", "--name", "twice", "--max-steps", "1")
    assert code == 0, out
    code, out = run("train", "sft", "--domain", "mini", "--name", "twice", "--max-steps", "1")
    assert code == 2 and "--overwrite" in out
    code, out = run("train", "sft", "--domain", "mini", "--name", "twice", "--max-steps", "1", "--overwrite")
    assert code == 0, out


def test_ctrl_c_says_how_to_resume(train_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import assistant

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(assistant, "train", interrupted)
    result = runner.invoke(app, ["train", "sft", "--domain", "mini", "--name", "x"])
    assert result.exit_code == 130 and "add --resume to continue from the last checkpoint" in result.output


def test_the_train_command_runs_unchanged_under_accelerate_launch(train_home: Path) -> None:
    """The user's command line, under `accelerate launch` with 2 CPU processes: one adapter, written once."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    bin_dir = Path(sys.executable).parent
    cmd = [
        str(bin_dir / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", port,
        str(bin_dir / "assistant"), "train", "sft", "--domain", "mini", "--name", "ddp-sft", "--max-steps", "2",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained ddp-sft (sft)") == 1, proc.stdout  # the summary is printed once
    record = json.loads((train_home / "adapters" / "ddp-sft" / "training.json").read_text())
    assert record["processes"] == 2 and record["results"]["steps"] == 2
    assert sorted(p.name for p in (train_home / "adapters").iterdir()) == ["ddp-sft"]
