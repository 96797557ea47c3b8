"""The `assistant` command: a thin typer app over the public Python API.

    assistant corpus prepare --all
    assistant index build medical
    assistant ask "Do statins reduce mortality?" --domain medical
    assistant ask "What was Boeing's total revenue in 2022?" --domain finance --company BOEING --json

Errors a user can cause print one line and exit with code 2; Ctrl-C exits 130 and the same command resumes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table
from typer.core import TyperGroup

import assistant as api

# soft_wrap: no hard line breaks in long lines (paths, answers): terminals wrap, logs stay greppable
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class _Group(TyperGroup):
    """Turns user errors into one line on stderr and exit code 2, and Ctrl-C into a resumable stop."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except api.AssistantError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            training = "train" in (ctx.info_name, ctx.invoked_subcommand)
            hint = "add --resume to continue from the last checkpoint" if training else "run the same command again to resume"
            err.print(f"interrupted: nothing is lost; {hint}")
            raise typer.Exit(130) from None


def _typer(help_text: str) -> typer.Typer:
    return typer.Typer(cls=_Group, help=help_text, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False)


app = _typer("Answers 'RAG or finetune?' for medical and financial documents, with measurements.")
corpus_app = _typer("Prepare corpora: documents and QA splits from the shipped data or your own files.")
index_app = _typer("Build and inspect vector + BM25 indexes (Chroma on disk or a Chroma server).")
config_app = _typer("Show the resolved configuration.")
train_app = _typer("Train adapters from a domain's corpus: continued pretraining (cpt) or QLoRA instruction tuning (sft).")
adapters_app = _typer("List, inspect, merge and delete trained adapters.")
app.add_typer(corpus_app, name="corpus")
app.add_typer(index_app, name="index")
app.add_typer(train_app, name="train")
app.add_typer(adapters_app, name="adapters")
app.add_typer(config_app, name="config")

Domain = Annotated[str, typer.Option("--domain", "-d", help="Domain to answer from (medical, finance, ...).")]


def _config() -> api.Config:
    return api.load_config()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(api.__version__)
        raise typer.Exit()


# --- corpus ---------------------------------------------------------------------------------------


@corpus_app.command("list")
def corpus_list() -> None:
    """List the corpus recipes and whether each is prepared."""
    config = _config()
    table = Table("name", "domain", "loader", "prepared", "documents", "train", "test", "license")
    for recipe in api.list_recipes(config):
        if api.is_prepared(recipe.name, config):
            m = api.corpus_manifest(recipe.name, config)
            counts = m.get("counts", {})
            row = ["yes" + (" (stale)" if api.is_stale(recipe.name, config) else ""),
                   str(counts.get("documents", "")), str(counts.get("qa_train", "")), str(counts.get("qa_test", ""))]
        else:
            row = ["no", "", "", ""]
        table.add_row(recipe.name, recipe.domain, recipe.loader, *row, recipe.license)
    out.print(table)


@corpus_app.command("prepare")
def corpus_prepare(
    names: Annotated[list[str] | None, typer.Argument(help="Corpus or domain names.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Prepare every corpus recipe.")] = False,
    source: Annotated[Path | None, typer.Option("--from", help="Read from this file or folder instead of the recipe's sources.")] = None,
) -> None:
    """Normalize corpora into documents.jsonl and qa_{train,test}.jsonl under the data home."""
    config = _config()
    if all_:
        targets = [r.name for r in api.list_recipes(config)]
    elif names:
        targets = [c for n in names for c in api.corpora_for(n, config)]
    else:
        raise api.InputError("name a corpus or a domain, or pass --all (see `assistant corpus list`)")
    if source and len(targets) != 1:
        raise api.InputError("--from needs exactly one corpus name")
    for name in targets:
        report = api.prepare_corpus(name, config, source=source)
        _print_prepare(report)


def _print_prepare(report: Any) -> None:
    out.print(report.summary(), highlight=False)
    for warning in report.warnings[:10]:
        err.print(f"  warning: {warning}", highlight=False)
    if len(report.warnings) > 10:
        err.print(f"  ... and {len(report.warnings) - 10} more warnings")


@corpus_app.command("show")
def corpus_show(name: Annotated[str, typer.Argument(help="Corpus name.")]) -> None:
    """Show a corpus recipe and, when prepared, its manifest and a sample question."""
    config = _config()
    recipe = api.get_recipe(name, config)
    out.print_json(data={"recipe": {k: (str(v) if isinstance(v, Path) else v) for k, v in recipe.__dict__.items()}})
    if api.is_prepared(name, config):
        out.print_json(data=api.corpus_manifest(name, config))


@corpus_app.command("add")
def corpus_add(
    name: Annotated[str, typer.Argument(help="Name of the new corpus.")],
    source: Annotated[Path, typer.Option("--from", help="Folder or file of PDF / txt / md / html documents.")],
    domain: Domain,
    loader: Annotated[str, typer.Option(help="Loader for the source format.")] = "files",
    license_: Annotated[str, typer.Option("--license", help="License of the documents.")] = "",
    do_prepare: Annotated[bool, typer.Option("--prepare/--no-prepare", help="Prepare it right away.")] = True,
) -> None:
    """Add your own corpus (a recipe under the data home) to a domain."""
    config = _config()
    recipe = api.add_recipe(name, config, source=source, domain=domain, loader=loader, license=license_)
    out.print(f"added corpus '{recipe.name}' to the {recipe.domain} domain ({recipe.path})")
    if do_prepare:
        _print_prepare(api.prepare_corpus(name, config))
        out.print(f"run `assistant index build {domain}` to index it")


# --- index ----------------------------------------------------------------------------------------


def _print_build(result: Any) -> None:
    r = result.index
    out.print(f"[bold]{r.name}[/]: {r.n_documents} documents, {r.n_chunks} chunks "
              f"(added {r.added}, updated {r.updated}, removed {r.removed}, unchanged {r.unchanged}; "
              f"embedded {r.chunks_embedded} chunks in {r.seconds:.1f}s"
              + (f", {r.chunks_per_second:.1f} chunks/s" if r.chunks_embedded else "") + ")"
              + (" [rebuilt]" if r.rebuilt else ""))


@index_app.command("build")
def index_build(
    names: Annotated[list[str], typer.Argument(help="Index names: a domain (medical, finance) or a corpus.")],
    rebuild: Annotated[bool, typer.Option(help="Build a fresh collection (the old one is kept until it succeeds).")] = False,
) -> None:
    """Create or bring up to date an index; prepares missing corpora, embeds only new or changed documents."""
    config = _config()
    for name in names:
        _print_build(api.build(name, config, rebuild=rebuild, on_prepared=_print_prepare))


@index_app.command("update")
def index_update(
    name: Annotated[str, typer.Argument(help="Index (domain) name.")],
    add: Annotated[list[Path] | None, typer.Option("--add", help="Files or folders (PDF, txt, md, html) to add to the domain.")] = None,
) -> None:
    """Sync an existing index with its corpora, optionally adding your own files first."""
    config = _config()
    if add:
        result = api.add_documents(name, add, config, on_prepared=_print_prepare)
    else:
        result = api.update_index(name, config, on_prepared=_print_prepare)
    _print_build(result)


@index_app.command("remove")
def index_remove(
    name: Annotated[str, typer.Argument(help="Index name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an index (its Chroma collection, BM25 index and manifest). Prepared corpora are kept."""
    config = _config()
    status = api.index_status(name, config)
    if not yes and not typer.confirm(f"delete index '{name}' ({status.n_chunks} chunks)?"):
        raise typer.Exit(1)
    api.remove_index(name, config)
    out.print(f"removed index '{name}'")


@index_app.command("status")
def index_status(
    name: Annotated[str, typer.Argument(help="Index name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Documents, chunks, embedding model, store and last update of an index."""
    status = api.index_status(name, _config())
    data = dict(status.__dict__)
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    facets = data.pop("facets", {}) or {}
    table = Table("field", "value", show_header=False)
    for key, value in data.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    for key, values in facets.items():
        table.add_row(f"{key} ({len(values)})", ", ".join(values[:12]) + (" ..." if len(values) > 12 else ""))
    out.print(table)


@index_app.command("list")
def index_list() -> None:
    """List the indexes under the data home."""
    table = Table("name", "corpora", "documents", "chunks", "embedding model", "store", "updated")
    for s in api.list_indexes(_config()):
        table.add_row(s.name, ", ".join(s.corpora), str(s.n_documents), str(s.n_chunks), s.embedding_model,
                      s.store, s.updated_at)
    out.print(table)


# --- ask ------------------------------------------------------------------------------------------


def _filters(company: str | None, document: str | None, corpus: str | None, extra: list[str] | None) -> dict[str, str]:
    filters = {k: v for k, v in (("company", company), ("document", document), ("corpus", corpus)) if v}
    for item in extra or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise api.InputError(f"--filter expects KEY=VALUE, got '{item}'")
        filters[key.strip()] = value.strip()
    return filters


Company = Annotated[str | None, typer.Option(help="Scope retrieval to one company (e.g. BOEING).")]
DocumentOpt = Annotated[str | None, typer.Option("--document", help="Scope retrieval to one document (e.g. BOEING_2022_10K).")]
CorpusOpt = Annotated[str | None, typer.Option("--corpus", help="Scope retrieval to one corpus (e.g. medquad).")]
FilterOpt = Annotated[list[str] | None, typer.Option("--filter", help="Metadata filter KEY=VALUE (repeatable).")]
TopK = Annotated[int | None, typer.Option("--top-k", "-k", help="Number of sources.")]
Mode = Annotated[str | None, typer.Option(help="Retrieval mode: hybrid, dense or bm25.")]


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    domain: Domain = "medical",
    strategy: Annotated[str | None, typer.Option("--strategy", "-s", help="auto (the router decides; the default), base, fewshot:K, cot, rag, adapter, rag+adapter (see `assistant strategies`).")] = None,
    adapter: Annotated[str | None, typer.Option("--adapter", "-a", help="Trained adapter for the adapter strategies (`assistant adapters list`).")] = None,
    top_k: TopK = None,
    mode: Mode = None,
    company: Company = None,
    document: DocumentOpt = None,
    corpus: CorpusOpt = None,
    filter_: FilterOpt = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Cap on the answer's length in tokens.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole Answer as JSON.")] = False,
) -> None:
    """Answer a question from a domain, with the sources it cites."""
    assistant = api.Assistant.load(domain)
    answer = assistant.ask(question, strategy=strategy, top_k=top_k, mode=mode, max_new_tokens=max_new_tokens,
                           filters=_filters(company, document, corpus, filter_) or None, adapter=adapter)
    if as_json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return
    out.print(answer.text or "[dim](empty answer)[/]", highlight=False)
    out.print()
    if answer.sources:
        _print_sources(answer.sources)
    for warning in answer.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    t = answer.timings
    err.print(f"[dim]{answer.reason} | model {answer.model} | "
              + " ".join(f"{k} {v:.2f}s" for k, v in t.items()) + "[/]", highlight=False)


def _print_sources(sources: list[api.Source]) -> None:
    """Numbered as cited in the answer: title and id, where to find it, scores, the start of the passage."""
    out.print("[bold]Sources[/]")
    for i, s in enumerate(sources, 1):
        sim = "" if s.similarity is None else f" · similarity {s.similarity:.2f}"
        snippet = " ".join(s.snippet.split())
        out.print(f" [bold][{i}][/] {escape(s.title)} · [dim]{escape(s.doc_id)}[/]", highlight=False)
        out.print(f"     {escape(s.locator)} · score {s.score:.3f}{sim}", highlight=False)
        out.print(f"     [dim]{escape(snippet[:220])}{'…' if len(snippet) > 220 else ''}[/]", highlight=False)


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="The query.")],
    domain: Domain = "medical",
    top_k: TopK = None,
    mode: Mode = None,
    company: Company = None,
    document: DocumentOpt = None,
    corpus: CorpusOpt = None,
    filter_: FilterOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Retrieve passages only (no generation): check what the index returns for a question."""
    sources = api.Assistant.load(domain).retrieve(question, top_k=top_k, mode=mode,
                                                  filters=_filters(company, document, corpus, filter_) or None)
    if as_json:
        print(json.dumps([s.to_dict() for s in sources], indent=2, ensure_ascii=False))
    else:
        _print_sources(sources)


@app.command()
def strategies() -> None:
    """List the answer strategies."""
    table = Table("strategy", "what it does")
    for name, description in api.Assistant.strategies().items():
        table.add_row(name, description)
    out.print(table)


# --- train ----------------------------------------------------------------------------------------

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
    info = api.train(kind, domain, name, _config(), with_context=with_context,  # type: ignore[arg-type]
                     **{k: v for k, v in options.items() if v is not None})
    if os.environ.get("RANK", "0") != "0":
        return  # under accelerate launch: the first process reports
    summary = info.summary()
    res = info.record.get("results", {})
    out.print(f"[bold green]trained[/] {info.name} ({info.kind}) -> {info.path}", highlight=False)
    val = "" if summary["final_val_loss"] is None else f", validation loss {summary['final_val_loss']:.4f}"
    out.print(f"  {summary['steps']} steps on {summary['train_examples']} examples in {res.get('wall_seconds', 0) / 60:.1f} min "
              f"({res.get('tokens_per_second')} tokens/s); train loss {res.get('first_train_loss')} -> "
              f"{summary['final_train_loss']}{val}", highlight=False)
    leakage = info.record.get("data", {}).get("leakage")
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
    infos = api.list_adapters(_config())
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
    print(json.dumps(api.get_adapter(_config(), name).record, indent=2))


@adapters_app.command("merge")
def adapters_merge(
    name: Annotated[str, typer.Argument(help="Adapter name.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the merged full-precision model.")],
) -> None:
    """Merge an adapter into its full-precision base: a plain transformers folder (a new --base or for serving)."""
    path = api.merge_adapter(_config(), name, out_dir)
    out.print(f"merged {name} into {path}", highlight=False)


@adapters_app.command("delete")
def adapters_delete(name: Annotated[str, typer.Argument(help="Adapter name.")]) -> None:
    """Delete an adapter folder (and any interrupted run of it)."""
    path = api.delete_adapter(_config(), name)
    out.print(f"deleted {path}", highlight=False)


@config_app.command("show")
def config_show() -> None:
    """Print the resolved configuration (defaults + <home>/assistant.yaml)."""
    print(api.dump_config(_config()), end="")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (anything but 127.0.0.1 needs --auth or --auth-file).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    share: Annotated[bool, typer.Option("--share", help="A public gradio.live link (needs --auth or --auth-file).")] = False,
    auth: Annotated[str | None, typer.Option("--auth", help="Require this login, USER:PASSWORD.")] = None,
    auth_file: Annotated[Path | None, typer.Option("--auth-file", help="Logins, one USER:PASSWORD per line.")] = None,
    max_upload_mb: Annotated[float | None, typer.Option("--max-upload-mb", help="Largest file the Documents tab accepts.")] = None,
    build: Annotated[bool, typer.Option("--build", help="Prepare and index every domain's corpora in the background, smallest first; the app answers from what is ready.")] = False,
) -> None:
    """Start the Gradio app (app.py in the source checkout): chat, compare, arena, documents, results."""
    import runpy

    app_file = api.PROJECT_ROOT / "app.py"
    if not app_file.is_file():
        raise api.InputError(f"app.py not found at {app_file}: serve runs from a source checkout")
    sys.argv = [str(app_file), "--host", host, "--port", str(port)]
    sys.argv += ["--share"] if share else []
    sys.argv += ["--auth", auth] if auth else []
    sys.argv += ["--auth-file", str(auth_file)] if auth_file else []
    sys.argv += ["--max-upload-mb", str(max_upload_mb)] if max_upload_mb is not None else []
    sys.argv += ["--build"] if build else []
    runpy.run_path(str(app_file), run_name="__main__")


# The evaluation commands (eval, advise, report, runs) live in their own module and register on `app`.
from assistant import cli_eval, cli_router  # noqa: E402,F401


def main() -> None:
    app()


if __name__ == "__main__":
    main()
