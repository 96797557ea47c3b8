"""`assistant corpus ...` and `assistant index ...`: prepare corpora, add your own, build and inspect indexes.

    assistant corpus prepare --all
    assistant corpus add mynotes --from ~/notes --domain medical
    assistant index build medical
    assistant index update finance --add report.pdf

Registered on the main app by `assistant.cli`; like the rest of the CLI they use the public Python API only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

import assistant as api
from assistant.cli_common import Domain, load_config, out, print_prepare, typer_app

corpus_app = typer_app("Prepare corpora: documents and QA splits from the shipped data or your own files.")
index_app = typer_app("Build and inspect vector + BM25 indexes (Chroma on disk or a Chroma server).")


@corpus_app.command("list")
def corpus_list() -> None:
    """List the corpus recipes and whether each is prepared."""
    config = load_config()
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
    config = load_config()
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
        print_prepare(report)


@corpus_app.command("show")
def corpus_show(name: Annotated[str, typer.Argument(help="Corpus name.")]) -> None:
    """Show a corpus recipe and, when prepared, its manifest and a sample question."""
    config = load_config()
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
    config = load_config()
    recipe = api.add_recipe(name, config, source=source, domain=domain, loader=loader, license=license_)
    out.print(f"added corpus '{recipe.name}' to the {recipe.domain} domain ({recipe.path})")
    if do_prepare:
        print_prepare(api.prepare_corpus(name, config))
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
    config = load_config()
    for name in names:
        _print_build(api.build(name, config, rebuild=rebuild, on_prepared=print_prepare))


@index_app.command("update")
def index_update(
    name: Annotated[str, typer.Argument(help="Index (domain) name.")],
    add: Annotated[list[Path] | None, typer.Option("--add", help="Files or folders (PDF, txt, md, html) to add to the domain.")] = None,
) -> None:
    """Sync an existing index with its corpora, optionally adding your own files first."""
    config = load_config()
    if add:
        result = api.add_documents(name, add, config, on_prepared=print_prepare)
    else:
        result = api.update_index(name, config, on_prepared=print_prepare)
    _print_build(result)


@index_app.command("remove")
def index_remove(
    name: Annotated[str, typer.Argument(help="Index name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an index (its Chroma collection, BM25 index and manifest). Prepared corpora are kept."""
    config = load_config()
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
    status = api.index_status(name, load_config())
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
    for s in api.list_indexes(load_config()):
        table.add_row(s.name, ", ".join(s.corpora), str(s.n_documents), str(s.n_chunks), s.embedding_model,
                      s.store, s.updated_at)
    out.print(table)
