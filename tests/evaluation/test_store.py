"""The run store's typed reads of a run's stored config and fingerprint, and the JSON they stand for."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from assistant.evaluation.store import EvalSettings, Fingerprint, IndexStamp, RunStore

INDEX = {"name": "medical", "collection": "medical-abc", "counts": {"documents": 3, "chunks": 9},
         "embedding": "bge-small", "updated_at": "2026-01-01T00:00:00"}


def test_settings_and_fingerprint_round_trip_through_the_store(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    config = {"generation": {"model": "smollm2"}, EvalSettings.KEY: EvalSettings(("pubmedqa",), 20).section()}
    made_with = Fingerprint("smollm2", "Linux x86_64, 2 CPUs, no GPU", IndexStamp.from_dict(INDEX))
    run = store.create_run("medical", ["base", "rag"], config, made_with, limit=20, seed=0)
    again = store.get_run(run.run_id)
    assert again.settings == EvalSettings(("pubmedqa",), 20, "smollm2")
    assert again.made_with == made_with and again.made_with.index is not None
    assert again.made_with.index.collection == "medical-abc"
    # the stored JSON keeps the keys it always had
    (raw_config, raw_print), = sqlite3.connect(tmp_path / "runs.sqlite").execute("SELECT config, fingerprint FROM runs")
    assert json.loads(raw_config)["_eval"] == {"corpora": ["pubmedqa"], "items": 20}
    assert json.loads(raw_print) == {"model": "smollm2", "machine": "Linux x86_64, 2 CPUs, no GPU", "index": INDEX}


def test_runs_without_eval_settings_or_index_read_as_empty(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    run = store.create_run("medical", ["base"], {}, {"model": "m", "machine": "x"}, limit=None, seed=0)
    assert run.settings == EvalSettings() and run.made_with == Fingerprint("m", "x", None)
    assert Fingerprint("m", "x").to_dict() == {"model": "m", "machine": "x"}  # no "index" without RAG
