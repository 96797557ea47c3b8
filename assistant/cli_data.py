"""`assistant data ...`: QA sets and training data beyond the shipped ones: synthesise questions from a
corpus's documents, check a domain's data before training, export SFT examples for a hosted fine-tuning API.

    assistant data synth --domain finance --corpus filings --method tables
    assistant data check --domain medical --strict
    assistant data export --domain medical --format openai-chat --out sft.jsonl

Registered on the main app by `assistant.cli`; like the rest of the CLI it uses the public Python API only.
"""

from __future__ import annotations

from assistant.cli_common import typer_app

data_app = typer_app("Synthesise QA sets from documents, check data quality, export training data.")
