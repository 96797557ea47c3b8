"""Adapter training throughput on the embedded SmolLM2-135M: QLoRA vs LoRA, and packed vs padded CPT.

Part 1 trains the same SFT batches (PubMedQA train questions rendered with the chat template, as
`assistant train sft` makes them) with QLoRA (4-bit NF4 base, `quantize=True`, the default) and with
plain LoRA on the fp32 base. Part 2 trains continued pretraining on the same documents (a seeded sample
of PubMedQA abstracts, then of MedQuAD answers) packed into full blocks (`pack_blocks`, as `assistant
train cpt` does) and, as the baselines, one document per sequence, truncated at seq_len and padded: to
seq_len (`padding="max_length"`, the naive per-document baseline), to the longest in a random batch
(dynamic padding), and to the longest in the trainer's length-grouped batches (the least padding). "kept" is the share of the documents' tokens that the
sequences hold: truncation is the padded baseline's other loss (text it never trains on).

Every configuration runs through the project's own trainer in a subprocess of its own, so that its peak
memory (ru_maxrss) is its own. Tokens/s counts non-padding tokens only ("effective"): the median over
the steps after the first (warm-up), robust to bursts of other work on a shared machine; the mean and
the trainer's own figure (first step included) are kept in the JSON with each step's seconds.

    .venv/bin/python bench/train.py                        # 6 steps each, batch 4, seq 256 (~8 min on 2 cores)
    .venv/bin/python bench/train.py --steps 3 --docs 40    # a quick check
    .venv/bin/python bench/train.py --corpus pubmedqa      # the packing comparison on PubMedQA only
    python bench/train.py --device cuda                    # on a GPU: bench/train_cuda.py (trainer vs a plain loop)

Target: packed CPT >= 1.5x the effective tokens/s of the padded baseline.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.config import EMBEDDED_GENERATOR, ENV_DATA, TrainingConfig, load_config

RESULTS = Path(__file__).resolve().parent / "results"
SFT_ROWS = (("sft qlora", True), ("sft lora", False))  # name, quantize
CPT_ROWS = (
    ("packed", "packed"),
    ("padded to seq_len", "fixed"),
    ("padded (random batches)", "random"),
    ("padded (length-grouped)", "grouped"),
)


# ---------------------------------------------------------------- one configuration, in a subprocess
def documents(corpus: str, n: int) -> list[str]:
    """A seeded sample of `n` documents of `corpus`, as `train_cpt` formats them (title, blank line, text)."""
    from assistant.corpus import is_prepared, load_documents, read_sources

    config = load_config()
    found = load_documents(corpus, config) if is_prepared(corpus, config) else read_sources(corpus, config).documents
    docs = sorted(found, key=lambda d: d.id)
    docs = random.Random(0).sample(docs, min(n, len(docs)))
    return [f"{d.title}\n\n{d.text}" if d.title and d.title not in d.text[:200] else d.text for d in docs]


def sft_examples(tokenizer: Any, n: int, seq_len: int) -> list[Any]:
    from assistant.corpus import read_sources
    from assistant.prompts import base_messages, target_answer
    from assistant.training.data import render_sft

    config = load_config()
    items = sorted((q for q in read_sources("pubmedqa", config).qa if q.split == "train"), key=lambda q: q.id)[:n]
    instruction = config.domain("medical").instruction
    rendered = [render_sft(tokenizer, base_messages(instruction, q.question), target_answer(q), seq_len)[0] for q in items]
    return [e for e in rendered if e is not None]


def padded_examples(texts: Sequence[str], tokenizer: Any, seq_len: int) -> list[Any]:
    """One sequence per document: its tokens and EOS, cut at seq_len (the trainer pads each batch)."""
    from assistant.training.data import Example

    out = []
    for text in texts:
        ids = [*tokenizer(text, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id][:seq_len]
        out.append(Example(input_ids=ids, labels=list(ids)))
    return out


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from assistant.models import resolve_model
    from assistant.training import trainer
    from assistant.training.data import pack_blocks, shuffle_blocks

    folder = resolve_model(EMBEDDED_GENERATOR, load_config())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    seq_len, batch, steps = spec["seq_len"], spec["batch"], spec["steps"]
    kept = None
    if spec["kind"] == "sft":
        examples = sft_examples(tokenizer, spec["docs"], seq_len)
    else:
        texts = documents(spec["corpus"], spec["docs"])
        total = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts)  # + EOS
        if spec["layout"] == "packed":
            examples, _ = pack_blocks(texts, tokenizer, seq_len)
            examples = shuffle_blocks(examples, 0)
        else:
            examples = padded_examples(texts, tokenizer, seq_len)
        kept = sum(len(e.input_ids) for e in examples) / total
    if len(examples) < steps * batch:
        raise SystemExit(f"{len(examples)} examples are fewer than {steps} steps x {batch}: raise --docs")

    if spec["layout"] == "fixed":  # every sequence padded to seq_len (padding="max_length")
        collate = trainer.collate

        def fixed_width(examples: Sequence[Any], pad: int) -> dict[str, Any]:
            import torch

            batch = collate(examples, pad)
            extra = seq_len - batch["input_ids"].shape[1]
            if extra > 0:
                batch["input_ids"] = torch.nn.functional.pad(batch["input_ids"], (0, extra), value=pad)
                batch["labels"] = torch.nn.functional.pad(batch["labels"], (0, extra), value=-100)
                batch["attention_mask"] = torch.nn.functional.pad(batch["attention_mask"], (0, extra), value=0)
            return batch

        trainer.collate = fixed_width  # type: ignore[assignment]
    if spec["layout"] in ("random", "fixed"):

        def random_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
            order = list(range(len(lengths)))
            random.Random(seed).shuffle(order)
            return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

        trainer.length_grouped_batches = random_batches  # type: ignore[assignment]

    # When each batch is handed to the loop: the gap between two is one optimizer step.
    stamps: list[tuple[float, int]] = []
    positions: list[int] = []  # batch x width: what the model computes, padding included
    batches = trainer.epoch_batches

    def timed(*args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for b in batches(*args, **kwargs):
            stamps.append((time.perf_counter(), int(b["attention_mask"].sum())))
            positions.append(int(b["attention_mask"].numel()))
            yield b

    trainer.epoch_batches = timed  # type: ignore[assignment]

    quantize = TrainingConfig().quantize if spec["quantize"] is None else spec["quantize"]
    cfg = TrainingConfig(
        seq_len=seq_len, batch_size=batch, max_steps=steps, epochs=100.0, quantize=quantize, save_every=10_000,
        eval_every=10_000,
    )  # fmt: skip
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        job = trainer.TrainJob(
            name="bench", kind=spec["kind"], base_path=folder, base_spec=EMBEDDED_GENERATOR,
            out_dir=Path(tmp) / "bench", config=cfg, train=examples, pad_token_id=int(tokenizer.pad_token_id),
            log=lambda msg: None,
        )  # fmt: skip
        record = trainer.run_training(job)
    # Steps 2..n-1 are timed from their batch to the next (the last step has no next batch). The median
    # step keeps a burst of another process on this shared machine from deciding the figure.
    timed = [(n, later[0] - t) for (t, n), later in itertools.pairwise(stamps[1:])]
    rates = sorted(n / dt for n, dt in timed)
    seconds = sorted(dt for _, dt in timed)
    res = record["results"]
    return {
        **spec,
        "quantize": quantize,
        "examples": len(examples),
        "kept": kept,
        "mean_example_tokens": sum(len(e.input_ids) for e in examples) / len(examples),
        "tokens_per_second": statistics.median(rates),
        "seconds_per_step": statistics.median(seconds),
        "mean_tokens_per_second": sum(n for n, _ in timed) / sum(seconds),
        "step_seconds": [round(dt, 3) for _, dt in timed],
        "load_average": os.getloadavg()[0],  # of the last minute, at the end: > ~2.5 means others ran too
        "trainer_tokens_per_second": res["tokens_per_second"],
        "tokens": res["tokens"],
        "fill": res["tokens"] / (steps * batch * seq_len),  # non-padding share of steps x batch x seq_len
        # non-padding share of the positions computed: a step's time follows its batch's shape (measured:
        # a packed and a padded batch of 4 x 256 take the same time), so effective tokens/s ~ speed x this
        "position_fill": sum(n for _, n in stamps) / sum(positions),
        "wall_seconds": res["wall_seconds"],
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "memory_before_model_mb": rss_before,
        "first_loss": res["first_train_loss"],
        "final_loss": res["final_train_loss"],
    }


def run_in_subprocess(spec: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{spec['name']} failed:\n{proc.stderr[-4000:]}")
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("RESULT "))
    row = json.loads(line.removeprefix("RESULT "))
    row["process_seconds"] = time.perf_counter() - start
    return row


# ---------------------------------------------------------------- the table
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per configuration (default 6)")
    parser.add_argument("--batch", type=int, default=4, help="sequences per step (default 4)")
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per sequence / packed block (default 256)")
    parser.add_argument("--docs", type=int, default=200, help="documents (and SFT questions) to draw from")
    parser.add_argument(
        "--corpus", action="append", help="corpus of the packing comparison; repeat (default: pubmedqa, medquad)"
    )
    parser.add_argument("--no-sft", action="store_true", help="skip the QLoRA / LoRA comparison")
    parser.add_argument("--data", type=Path, default=None, help="shipped data folder (default: ../shared/data)")
    parser.add_argument("--json", type=Path, default=RESULTS / "train.json", help="where to write the results")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: the trainer against a plain bf16 peft loop on the GPU (bench/train_cuda.py)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device == "cuda":
        import train_cuda  # beside this file

        given = [k for k in ("steps", "batch", "seq_len", "docs", "corpus", "no_sft", "json")
                 if getattr(args, k) != parser.get_default(k)]
        if given:
            parser.error(f"--device cuda takes no --{given[0].replace('_', '-')}: run bench/train_cuda.py with its own "
                         "options (--shapes, --steps, --seq-len, --json)")
        sys.argv = [sys.argv[0]]
        train_cuda.main()
        return
    if args.steps < 3:
        parser.error("--steps must be at least 3 (the first step is warm-up, the last one is not timed)")
    if args.data:
        os.environ[ENV_DATA] = str(args.data)
    if args.worker:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return

    corpora = args.corpus or ["pubmedqa", "medquad"]
    common = {"docs": args.docs, "steps": args.steps, "batch": args.batch, "seq_len": args.seq_len}
    specs = [] if args.no_sft else [
        {"name": name, "kind": "sft", "quantize": q, "layout": "grouped", "corpus": "pubmedqa", **common}
        for name, q in SFT_ROWS
    ]  # fmt: skip
    specs += [
        {"name": f"cpt {corpus} {name}", "kind": "cpt", "quantize": None, "layout": layout, "corpus": corpus, **common}
        for corpus in corpora
        for name, layout in CPT_ROWS
    ]
    rows = []
    for spec in specs:
        print(f"{spec['name']} ...", end=" ", flush=True)
        row = run_in_subprocess(spec)
        busy = f"  (load average {row['load_average']:.1f}: other work ran too)" if row["load_average"] > 2.5 else ""
        print(f"{row['tokens_per_second']:.0f} tokens/s, peak {row['peak_memory_mb']:.0f} MB{busy}", flush=True)
        rows.append(row)

    print(
        f"\nSmolLM2-135M-Instruct, {args.steps} steps x {args.batch} sequences x <= {args.seq_len} tokens; "
        f"{args.docs} documents per corpus; tokens/s = non-padding tokens per second, median step after the first\n"
    )
    header = f"{'configuration':40} {'quant':>5} {'s/step':>7} {'tokens/s':>9} {'fill':>5} {'kept':>5} {'peak MB':>8}"
    # fill: non-padding share of the positions computed; kept: share of the documents' tokens trained
    print(header + f" {'model+train MB':>15}")
    for r in rows:
        kept = f"{r['kept']:5.2f}" if r["kept"] is not None else f"{'':5}"
        print(
            f"{r['name']:40} {'nf4' if r['quantize'] else 'fp32':>5} {r['seconds_per_step']:7.2f} "
            f"{r['tokens_per_second']:9.0f} {r['position_fill']:5.2f} {kept} {r['peak_memory_mb']:8.0f} "
            f"{r['peak_memory_mb'] - r['memory_before_model_mb']:15.0f}"
        )
    by_name = {r["name"]: r for r in rows}
    ratios: dict[str, float] = {}
    print()
    if "sft qlora" in by_name and "sft lora" in by_name:
        q, lo = by_name["sft qlora"], by_name["sft lora"]
        print(
            f"QLoRA / LoRA: {q['tokens_per_second'] / lo['tokens_per_second']:.2f}x tokens/s, "
            f"{q['peak_memory_mb'] / lo['peak_memory_mb']:.2f}x peak memory"
        )
    for corpus in corpora:
        packed = by_name[f"cpt {corpus} packed"]
        for name, _ in CPT_ROWS[1:]:
            key = f"cpt {corpus} {name}"
            ratios[key] = packed["tokens_per_second"] / by_name[key]["tokens_per_second"]
            by_fill = packed["position_fill"] / by_name[key]["position_fill"]
            print(
                f"{corpus}: packed / {name}: {ratios[key]:.2f}x effective tokens/s measured, "
                f"{by_fill:.2f}x from the padding alone  (target >= 1.5x)"
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("json", "worker", "data")}
    settings["corpus"] = corpora
    args.json.write_text(json.dumps({"settings": settings, "rows": rows, "packed_over_padded": ratios}, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
