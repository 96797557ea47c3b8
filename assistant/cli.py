"""The `assistant` command: a thin typer app over the public Python API.

    assistant corpus prepare --all
    assistant index build medical
    assistant ask "Do statins reduce mortality?" --domain medical
    assistant ask "What was Boeing's total revenue in 2022?" --domain finance --company BOEING --json
    assistant ask "What was total revenue in 2022?" --domain finance --model big --answer-mode extractive

Errors a user can cause print one line and exit with code 2; Ctrl-C exits 130 and the same command resumes.
This module holds the question commands (ask, search, strategies), `config show` and `serve`, and
assembles the command tree from the command modules (cli_corpus, cli_data, cli_train, cli_eval, cli_router), which
import only `assistant.cli_common`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

import assistant as api
from assistant import cli_corpus, cli_data, cli_eval, cli_router, cli_train
from assistant.cli_common import Domain, err, load_config, out, typer_app
from assistant.generation_config import check_answer_mode

app = typer_app("Answers 'RAG or finetune?' for medical and financial documents, with measurements.")
config_app = typer_app("Show the resolved configuration.")


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(api.__version__)
        raise typer.Exit()


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
Scope = Annotated[bool, typer.Option("--scope/--no-scope", help="Without filters, search only the companies the question names (e.g. 'Boeing'); --no-scope searches the whole index.")]


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
    model: Annotated[str | None, typer.Option("--model", "-m", help="Answer with a named model of config `models:` (default: the domain's own).")] = None,
    answer_mode: Annotated[str | None, typer.Option("--answer-mode", help="Retrieval strategies answer with: generate (the model's reply), extractive (the sources' evidence, no generation) or auto (the reply while its numbers are in the sources); default generation.answer_mode.")] = None,
    scope: Scope = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole Answer as JSON.")] = False,
) -> None:
    """Answer a question from a domain, with the sources it cites."""
    if answer_mode is not None:
        check_answer_mode(answer_mode, "--answer-mode")  # before the model loads
    assistant = api.Assistant.load(domain, model=model)
    answer = assistant.ask(question, strategy=strategy, top_k=top_k, mode=mode, max_new_tokens=max_new_tokens,
                           filters=_filters(company, document, corpus, filter_) or None, adapter=adapter,
                           answer_mode=answer_mode, scope=scope)
    if as_json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return
    out.print(escape(answer.text) if answer.text else "[dim](empty answer)[/]", highlight=False)
    out.print()
    if answer.evidence:
        _print_evidence(answer)
    if answer.sources:
        _print_sources(answer.sources)
    for warning in answer.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    t = answer.timings
    grounded = "" if answer.grounded is None else (
        f"numbers supported {sum(c.supported for c in answer.checks)}/{len(answer.checks)} | ")
    err.print(f"[dim]{escape(answer.reason)} | model {escape(answer.model)} | {grounded}"
              + " ".join(f"{k} {v:.2f}s" for k, v in t.items()) + "[/]", highlight=False)


def _print_evidence(answer: api.Answer) -> None:
    """The quote of each cited source that supports the answer: its number, document and page, the quote."""
    out.print("[bold]Evidence[/]")
    for e in answer.evidence:
        quote = " ".join(e.quote.split())
        quote = quote if len(quote) <= 300 else quote[:299] + "…"
        best = "" if e.cited else " [dim](best match: the answer cites no source)[/]"
        out.print(f" [bold][{e.source}][/] {escape(e.locator or e.doc_id)}{best}", highlight=False)
        out.print(f"     [green]“{escape(quote)}”[/]", highlight=False)
    out.print()


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
    scope: Scope = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Retrieve passages only (no generation): check what the index returns for a question."""
    sources = api.Assistant.load(domain).retrieve(question, top_k=top_k, mode=mode, scope=scope,
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


# --- config and serve -----------------------------------------------------------------------------


@config_app.command("show")
def config_show() -> None:
    """Print the resolved configuration (defaults + <home>/assistant.yaml) and the engine it runs on."""
    from assistant.models import describe_backend

    config = load_config()
    print(api.dump_config(config), end="")
    print(f"# {describe_backend(config)}")


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
    app_module = _load_app()
    # --auth-file falls back to $ASSISTANT_AUTH_FILE, as when app.py is run itself
    logins = app_module.read_logins(auth, auth_file or os.environ.get(app_module.AUTH_FILE_ENV))
    app_module.launch(host=host, port=port, share=share, auth=logins, max_upload_mb=max_upload_mb, build=build)


def _load_app() -> ModuleType:
    """app.py from the source checkout, imported as the module `app` (it is no package module: the README
    runs it as a script, and it imports `app_views` beside it)."""
    app_file = api.PROJECT_ROOT / "app.py"
    if not app_file.is_file():
        raise api.InputError(f"app.py not found at {app_file}: serve runs from a source checkout")
    if "app" in sys.modules and getattr(sys.modules["app"], "__file__", None) == str(app_file):
        return sys.modules["app"]
    spec = importlib.util.spec_from_file_location("app", app_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module  # registered before it runs, as an import would (pickling, dataclasses)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["app"]
        raise
    return module


# The command tree, in the order `assistant --help` lists it: commands first, then the groups.
app.command("eval")(cli_eval.eval_)
app.command()(cli_eval.advise)
app.command()(cli_eval.report)
app.add_typer(cli_corpus.corpus_app, name="corpus")
app.add_typer(cli_corpus.index_app, name="index")
app.add_typer(cli_train.train_app, name="train")
app.add_typer(cli_train.adapters_app, name="adapters")
app.add_typer(cli_data.data_app, name="data")
app.add_typer(config_app, name="config")
app.add_typer(cli_eval.runs_app, name="runs")
app.add_typer(cli_router.router_app, name="router")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
