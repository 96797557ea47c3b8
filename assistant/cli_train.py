"""`assistant train ...` and `assistant adapters ...`: train LoRA / QLoRA adapters, then list, inspect,
merge, export (with an accuracy check) and delete them.

    assistant train sft --domain medical --name medical-sft --max-steps 200
    assistant train sft --domain medical --name medical-raft --with-context     # RAFT: needs the index
    assistant adapters list
    assistant adapters export medical-sft --to gguf --out exports/medical-sft-gguf   # checked on 50 test questions

Registered on the main app by `assistant.cli`; like the rest of the CLI they use the public Python API only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

import assistant as api
from assistant.cli_common import err, load_config, out, typer_app

train_app = typer_app("Train adapters from a domain's corpus: continued pretraining (cpt) or QLoRA instruction tuning (sft).")
adapters_app = typer_app("List, inspect, merge, export and delete trained adapters.")

Name = Annotated[str, typer.Option("--name", "-n", help="The adapter's name (its folder under adapters/).")]
Base = Annotated[str | None, typer.Option("--base", help="Base model spec (default: generation.model), e.g. a merged CPT model folder.")]
MaxExamples = Annotated[int | None, typer.Option("--max-examples", help="Train on at most N examples (documents for cpt).")]
Fraction = Annotated[float | None, typer.Option("--fraction", help="Train on this share of the examples (0-1].")]
MaxSteps = Annotated[int | None, typer.Option("--max-steps", help="Optimizer steps (default: training.max_steps).")]
Epochs = Annotated[float | None, typer.Option("--epochs", help="Passes over the data (the run ends at max-steps or epochs).")]
SeqLen = Annotated[int | None, typer.Option("--seq-len", help="Tokens per example / packed block.")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", help="Sequences per step and process.")]
GradAccum = Annotated[int | None, typer.Option("--grad-accum", help="Gradient accumulation steps.")]
LearningRate = Annotated[float | None, typer.Option("--lr", help="Learning rate.")]
LoraR = Annotated[int | None, typer.Option("--lora-r", help="LoRA rank.")]
Quantize = Annotated[bool | None, typer.Option("--quantize/--no-quantize", help="QLoRA (4-bit NF4 base) or plain LoRA (fp32 base).")]
Seed = Annotated[int | None, typer.Option("--seed", help="Seed for data order, sampling and initialisation.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last checkpoint.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing adapter of this name.")]


def _train(kind: str, domain: str, name: str, with_context: bool = False, **options: Any) -> None:
    info = api.train(kind, domain, name, load_config(), with_context=with_context,  # type: ignore[arg-type]
                     **{k: v for k, v in options.items() if v is not None})
    if os.environ.get("RANK", "0") != "0":
        return  # under accelerate launch: the first process reports
    summary = info.summary()
    res = info.training.results
    out.print(f"[bold green]trained[/] {info.name} ({info.kind}) -> {info.path}", highlight=False)
    val = "" if summary["final_val_loss"] is None else f", validation loss {summary['final_val_loss']:.4f}"
    out.print(f"  {summary['steps']} steps on {summary['train_examples']} examples in {res.get('wall_seconds', 0) / 60:.1f} min "
              f"({res.get('tokens_per_second')} tokens/s); train loss {res.get('first_train_loss')} -> "
              f"{summary['final_train_loss']}{val}", highlight=False)
    leakage = info.training.data.leakage
    if leakage:
        out.print(f"  leakage check: {leakage['removed']} train questions near-duplicating a test question removed",
                  highlight=False)
    out.print(f"  loss curve: {info.path / 'loss.png'}", highlight=False)


@train_app.command("cpt")
def train_cpt(
    name: Name,
    domain: Annotated[str, typer.Option("--domain", "-d", help="Domain (or one corpus) whose documents to train on.")] = "medical",
    base: Base = None,
    replay: Annotated[str | None, typer.Option("--replay", help="A prepared corpus or domain mixed in against forgetting.")] = None,
    replay_ratio: Annotated[float | None, typer.Option("--replay-ratio", help="Share of replay text in the mix (default 0.1 with --replay).")] = None,
    max_examples: MaxExamples = None,
    fraction: Fraction = None,
    max_steps: MaxSteps = None,
    epochs: Epochs = None,
    seq_len: SeqLen = None,
    batch_size: BatchSize = None,
    grad_accum: GradAccum = None,
    lr: LearningRate = None,
    lora_r: LoraR = None,
    quantize: Quantize = None,
    seed: Seed = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
) -> None:
    """Continued (domain-adaptive) pretraining: a LoRA adapter on the raw text of the corpus, packed in blocks."""
    _train("cpt", domain, name, base=base, replay=replay, replay_ratio=replay_ratio, max_examples=max_examples,
           fraction=fraction, max_steps=max_steps, epochs=epochs, seq_len=seq_len, batch_size=batch_size,
           grad_accum=grad_accum, learning_rate=lr, lora_r=lora_r, quantize=quantize, seed=seed, resume=resume,
           overwrite=overwrite)


@train_app.command("sft")
def train_sft(
    name: Name,
    domain: Annotated[str, typer.Option("--domain", "-d", help="Domain (or one corpus) whose QA train split to train on.")] = "medical",
    with_context: Annotated[bool, typer.Option("--with-context", help="RAFT: each question with retrieved passages (needs the domain's index).")] = False,
    gold_share: Annotated[float | None, typer.Option("--gold-share", help="RAFT: share of examples whose passages hold the gold document.")] = None,
    passages: Annotated[int | None, typer.Option("--passages", help="RAFT: passages per question.")] = None,
    base: Base = None,
    max_examples: MaxExamples = None,
    fraction: Fraction = None,
    max_steps: MaxSteps = None,
    epochs: Epochs = None,
    seq_len: SeqLen = None,
    batch_size: BatchSize = None,
    grad_accum: GradAccum = None,
    lr: LearningRate = None,
    lora_r: LoraR = None,
    quantize: Quantize = None,
    seed: Seed = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
) -> None:
    """QLoRA instruction adapter from the QA train split (loss on answers only, test near-duplicates removed)."""
    _train("sft", domain, name, with_context=with_context, gold_share=gold_share, passages=passages, base=base,
           max_examples=max_examples, fraction=fraction, max_steps=max_steps, epochs=epochs, seq_len=seq_len,
           batch_size=batch_size, grad_accum=grad_accum, learning_rate=lr, lora_r=lora_r, quantize=quantize,
           seed=seed, resume=resume, overwrite=overwrite)


# --- adapters -------------------------------------------------------------------------------------


@adapters_app.command("list")
def adapters_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The trained adapters: kind, domain, base, steps, losses."""
    infos = api.list_adapters(load_config())
    if as_json:
        print(json.dumps([i.summary() for i in infos], indent=2))
        return
    if not infos:
        out.print("no adapters yet: `assistant train sft --domain medical --name medical-sft`")
        return
    table = Table("kind", "domain", "steps", "examples", "val loss", "min")
    table.columns.insert(0, Column("name", no_wrap=True, overflow="fold"))
    for i in infos:
        s = i.summary()
        kind = s["kind"] + ("+RAFT" if s["with_context"] else "") + (" QLoRA" if s["quantize"] else " LoRA")
        val = "-" if s["final_val_loss"] is None else f"{s['final_val_loss']:.3f}"
        table.add_row(s["name"], kind, str(s["domain"]), str(s["steps"]), str(s["train_examples"]), val,
                      f"{(s['wall_seconds'] or 0) / 60:.1f}")
    out.print(table)
    out.print("[dim]base model, config, data and losses: `assistant adapters show NAME`[/]")


@adapters_app.command("show")
def adapters_show(name: Annotated[str, typer.Argument(help="Adapter name.")]) -> None:
    """Everything training.json records about an adapter: config, data counts, leakage, losses."""
    print(json.dumps(api.get_adapter(load_config(), name).record, indent=2))


@adapters_app.command("merge")
def adapters_merge(
    name: Annotated[str, typer.Argument(help="Adapter name.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the merged full-precision model.")],
) -> None:
    """Merge an adapter into its full-precision base: a plain transformers folder (a new --base or for serving)."""
    path = api.merge_adapter(load_config(), name, out_dir)
    out.print(f"merged {name} into {path}", highlight=False)


@adapters_app.command("export")
def adapters_export(
    name: Annotated[str, typer.Argument(help="Adapter name.")],
    to: Annotated[str, typer.Option("--to", help="gguf (GGUF LoRA for llama.cpp / Ollama ADAPTER), merged (full-precision "
                                    "model folder), vllm (LoRA module folder + serve.sh), ollama (Modelfile + GGUF LoRA).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the export (new, or empty; see --overwrite).")],
    check: Annotated[int, typer.Option("--check", help="Test questions of the adapter's domain asked of the adapter and "
                                       "of the export (0 skips the check).")] = 50,
    min_agreement: Annotated[float | None, typer.Option("--min-agreement", help="Fail below this share of questions "
                             "answered alike (default 0.9 for gguf/ollama, 0.98 for merged/vllm).")] = None,
    max_prob_diff: Annotated[float | None, typer.Option("--max-prob-diff", help="Fail when an option's probability differs "
                             "by more (default 0.2 for gguf/ollama, 0.02 for merged/vllm).")] = None,
    base_gguf: Annotated[Path | None, typer.Option("--base-gguf", help="gguf/ollama: the base model as a GGUF, when the "
                         "adapter's base is a transformers folder.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace what --out holds.")] = False,
) -> None:
    """Export an adapter for another engine, then check on N test questions that it answers as the adapter does.

    The check asks each question of the peft adapter (transformers, fp32) and of the export as its engine loads
    it (llama.cpp for gguf/ollama, transformers for merged, peft on the vLLM folder's files as a stand-in for
    vLLM), scoring closed labels by option log-likelihood (else greedy text, compared exactly). It prints both
    accuracies, the agreement and the largest option-probability difference, writes export_check.json beside the
    export, and exits 1 beyond the tolerance.
    """
    config = load_config()
    tolerance = api.export_tolerance(to, min_agreement, max_prob_diff)
    export, result = api.export_adapter(config, name, to, out_dir, check=check, tolerance=tolerance,
                                        overwrite=overwrite, base_gguf=base_gguf,
                                        log=lambda msg: out.print(msg, highlight=False))
    out.print(f"  serve: {export.serve}", highlight=False)
    for note in export.notes:
        out.print(f"  note: {note}", highlight=False)
    if result is None:
        out.print("  not checked (--check 0)")
        return
    kind = "closed labels by option scoring" if result.scoring == "options" else "greedy replies compared by text"
    out.print(f"check on {result.n} test questions ({kind}), {result.seconds:.0f} s:", highlight=False)
    out.print(f"  accuracy: adapter {result.accuracy_adapter:.3f}, export {result.accuracy_export:.3f}", highlight=False)
    diff = "" if result.max_prob_diff is None else (
        f"; largest option-probability difference {result.max_prob_diff:.4f} (max {result.tolerance.max_prob_diff:g})")
    out.print(f"  agreement {result.agreement:.3f} (min {result.tolerance.min_agreement:g}){diff}", highlight=False)
    out.print(f"  export: {result.exported}", highlight=False)
    if not result.passed:
        err.print(f"[bold red]check failed:[/] {'; '.join(result.failures)}: the export does not answer as the adapter "
                  f"does (kept in {export.path} for inspection; details in export_check.json)", highlight=False)
        raise typer.Exit(1)
    out.print(f"[bold green]check passed[/] (details in {export.path / 'export_check.json'})", highlight=False)


@adapters_app.command("delete")
def adapters_delete(name: Annotated[str, typer.Argument(help="Adapter name.")]) -> None:
    """Delete an adapter folder (and any interrupted run of it)."""
    path = api.delete_adapter(load_config(), name)
    out.print(f"deleted {path}", highlight=False)
