"""Shared fixtures: a temporary data home, the hash embedder config, and the shipped data (skipped if absent).

Fakes live here or in tests/fakes.py; tests never download weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.config import Config, EmbeddingConfig, data_root, load_config

USERS_HOME = os.environ.get("ASSISTANT_HOME")  # as the test run found it: never to be used by a test


@pytest.fixture(autouse=True)
def _never_the_users_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs against a temporary data home, never the user's (by default the checkout itself,
    with whatever corpora, indexes and adapters the user made there). `home` gives a test its own; a
    module-scoped fixture that already set a temporary one keeps it."""
    if os.environ.get("ASSISTANT_HOME") == USERS_HOME:
        monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path_factory.mktemp("data-home")))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data home: prepared corpora, indexes, adapters and caches go under it."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("ASSISTANT_HOME", str(root))
    return root


@pytest.fixture
def config(home: Path) -> Config:
    """Defaults in a temporary home, with the hash embedder (no model load)."""
    return load_config(home=home).replace(embedding=EmbeddingConfig(model="hash:384", quantize=False))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shipped real data (../shared/data or $ASSISTANT_DATA); end-to-end tests skip without it."""
    root = data_root()
    if not (root / "medical" / "pubmedqa" / "ori_pqal.json").is_file():
        pytest.skip(f"shipped data not found at {root} (set ASSISTANT_DATA)")
    return root


# ---- tiny generation model (tests/fakes.py): a random 2-layer Llama + byte tokenizer, built once ----
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local transformers folder with a tiny random chat model; use it as `generation.model`."""
    from tests.fakes import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny-llama")
