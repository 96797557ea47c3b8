"""Data parallel on CPU: the same trainer under `accelerate launch` with 2 processes (gloo).

`accelerate launch --cpu --num_processes 2` starts a single process in accelerate 1.x (its simple
launcher runs multi-CPU only through mpirun), so the test uses `--multi_gpu`, which runs torchrun;
the trainer asks for the CPU itself when there is no GPU, and gloo is the backend there.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from assistant.config import PROJECT_ROOT
from assistant.training.trainer import TRAINING_FILE, run_dir

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from transformers import AutoTokenizer

    from assistant.config import TrainingConfig
    from assistant.training.data import render_sft
    from assistant.training.trainer import TrainJob, run_training

    base, out = Path(sys.argv[1]), Path(sys.argv[2])
    tokenizer = AutoTokenizer.from_pretrained(base)
    examples = [
        render_sft(tokenizer, [{"role": "user", "content": f"Question {i}?"}], "Yes, it is.", 64)[0]
        for i in range(10)
    ]
    cfg = TrainingConfig(seq_len=64, batch_size=2, max_steps=3, epochs=100.0, quantize=False,
                         gradient_checkpointing=False, save_every=2, eval_every=3, warmup_steps=0)
    # 2 validation examples make one batch: the second process evaluates none, and must not hang.
    run_training(TrainJob(name=out.name, kind="sft", base_path=base, base_spec="tiny", out_dir=out,
                          config=cfg, train=examples[:8], val=examples[8:], pad_token_id=2))
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_cpu_processes_train_one_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT, encoding="utf-8")
    out = tmp_path / "adapters" / "ddp"
    accelerate = Path(sys.executable).parent / "accelerate"
    cmd = [
        str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
        str(script), str(tiny_model_dir), str(out),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)  # a hang fails, not stalls
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == {
        "README.md", "adapter_config.json", "adapter_model.safetensors", TRAINING_FILE, "loss.png"
    }
    assert [p.name for p in out.parent.iterdir()] == ["ddp"] and not run_dir(out).exists()
    record = json.loads((out / TRAINING_FILE).read_text())
    assert record["processes"] == 2 and record["results"]["steps"] == 3
    assert record["results"]["final_val_loss"] is not None
    # each step takes one batch of 2 on each process: 3 steps see 12 of the 8 examples' sequences
    assert record["results"]["epochs"] == 1.5
