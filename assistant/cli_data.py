"""`assistant data ...`: QA sets and training data beyond the shipped ones: synthesise questions from a
corpus's documents, check a domain's data before training, export SFT examples for a hosted fine-tuning API.

    assistant data synth --domain finance --corpus filings --method tables
    assistant data check --domain medical --strict
    assistant data export --domain medical --format openai-chat --out sft.jsonl

Registered on the main app by `assistant.cli`; like the rest of the CLI it uses the public Python API only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import assistant as api
from assistant.cli_common import Domain, err, load_config, out, typer_app

data_app = typer_app("Synthesise QA sets from documents, check data quality, export training data.")

DataCorpus = Annotated[str | None, typer.Option("--corpus", "-c", help="Only this corpus of the domain (e.g. pubmedqa).")]


# --- synth ----------------------------------------------------------------------------------------


@data_app.command("synth")
def synth(
    corpus: Annotated[str, typer.Option("--corpus", "-c", help="The prepared corpus to write questions for (e.g. filings).")],
    domain: Annotated[str | None, typer.Option("--domain", "-d", help="The corpus's domain (checked; default: its recipe's).")] = None,
    method: Annotated[str, typer.Option("--method", "-m", help="tables: questions from the PDF pages' tables, no model; llm: the configured model writes a question per passage, kept when the passage supports its answer.")] = "tables",
    model: Annotated[str | None, typer.Option("--model", help="llm: a named model of config `models:` (default: the domain's own).")] = None,
    sample: Annotated[int, typer.Option("--sample", help="llm: documents to ask about (one passage each).")] = 200,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="At most this many questions (train and test in proportion).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the document split and of --limit's sample.")] = 0,
    test_share: Annotated[float, typer.Option("--test-share", help="Share of the questions (whole documents) held out for test.")] = 0.3,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Write a QA set (train/test split by document) for a corpus that has none; re-run to resume."""
    report = api.synthesize(corpus, load_config(), domain=domain, method=method, limit=limit, seed=seed,
                            test_share=test_share, progress=not quiet, model=model, sample=sample)
    out.print(report.summary(), highlight=False, markup=False)
    for reason, n in report.problems.items():
        some = report.examples.get(reason, [])
        err.print(f"  {reason}: {n}" + (f", e.g. {some[0]}" if some else ""), highlight=False, markup=False)
    for item in report.sample:
        where = item.metadata.get("locator") or f"{item.metadata['file']}, page {item.metadata['page']}"
        out.print(f"  e.g. [{item.split}] {item.question} -> {item.answer} ({where})", highlight=False, markup=False)


# --- check ----------------------------------------------------------------------------------------


@data_app.command("check")
def check(
    domain: Domain = "medical",
    corpus: DataCorpus = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when a check crosses its threshold.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON.")] = False,
    estimate_tokens: Annotated[bool, typer.Option("--estimate-tokens", help="Estimate token counts instead of loading the model's tokenizer.")] = False,
) -> None:
    """Duplicates, leakage, too-long, repetitive, garbled and misspelt data, before training on it."""
    report = api.check_data(domain, load_config(), corpus=corpus, exact_tokens=not estimate_tokens)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        out.print(report.summary(), highlight=False, markup=False)
    if strict and report.failed:
        crossed = ", ".join(f"{c.name} ({c.rate:.2%} > {c.threshold:.2%})" for c in report.failed)
        err.print(f"data check failed (--strict): thresholds crossed: {crossed}", highlight=False, markup=False)
        raise typer.Exit(1)


# --- export ---------------------------------------------------------------------------------------


@data_app.command("export")
def export(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The train JSONL file; validation goes beside it (NAME.validation.jsonl).")],
    domain: Domain = "medical",
    format_: Annotated[str, typer.Option("--format", help="Output format: openai-chat (OpenAI's chat fine-tuning JSONL).")] = "openai-chat",
    corpus: DataCorpus = None,
    validation: Annotated[float, typer.Option("--validation", help="Share of the questions held out for validation (0 for none).")] = 0.1,
    with_context: Annotated[bool, typer.Option("--with-context", help="Add the retrieved passages, as `train sft --with-context` (needs the index).")] = False,
) -> None:
    """The SFT examples `train sft` uses, as chat JSONL for a hosted fine-tuning API."""
    result = api.export_data(domain, load_config(), out=out_file, format=format_, corpus=corpus,
                             validation=validation, with_context=with_context)
    out.print(f"exported {result.summary()}", highlight=False, markup=False)
