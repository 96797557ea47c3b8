from pathlib import Path

import pytest

from assistant.config import (
    DEFAULT_DOMAINS,
    EMBEDDED_GENERATOR,
    ChunkingConfig,
    Config,
    RetrievalConfig,
    dump_config,
    load_config,
)
from assistant.errors import ConfigError, InputError, NotFoundError


def test_defaults_live_under_the_home(home: Path) -> None:
    config = load_config()
    assert config.home == home
    assert config.indexes_dir == home / "indexes"
    assert config.corpora_dir == home / "corpora"
    assert set(config.domains) == {"medical", "finance"}
    assert config.embedding.model == "embedded:all-MiniLM-L6-v2"


def test_yaml_overrides_merge_with_defaults(home: Path) -> None:
    (home / "assistant.yaml").write_text(
        "retrieval: {top_k: 8, mode: dense}\nstore: {host: 127.0.0.1, port: 9000}\n"
        "domains:\n  legal: {description: contracts, instruction: Be exact.}\n"
    )
    config = load_config()
    assert config.retrieval.top_k == 8 and config.retrieval.mode == "dense"
    assert config.retrieval.rrf_k == RetrievalConfig().rrf_k
    assert config.store.is_server and config.store.port == 9000
    assert {"medical", "finance", "legal"} <= set(config.domains)
    assert config.domain("legal").instruction == "Be exact."
    assert "top_k: 8" in dump_config(config)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("retrieval: {topk: 3}", "unknown key 'topk'"),
        ("retrieval: {top_k: three}", "retrieval.top_k: expected int"),
        ("retrieval: {mode: fuzzy}", "mode must be dense, bm25 or hybrid"),
        ("chunking: {chunk_size: 100, chunk_overlap: 100}", "chunk_overlap"),
        ("store: {port: 70000}", "store.port"),
        ("retrieval: [1, 2", "not valid YAML"),
    ],
)
def test_bad_config_names_the_key(home: Path, text: str, needle: str) -> None:
    (home / "assistant.yaml").write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_config()


def test_missing_explicit_config_file(home: Path) -> None:
    with pytest.raises(InputError, match="config file not found"):
        load_config(home / "nope.yaml")


def test_unknown_domain_lists_known(home: Path) -> None:
    with pytest.raises(NotFoundError, match=r"unknown domain 'legal' \(known: finance, medical\)"):
        load_config().domain("legal")


def test_dataclasses_validate_on_construction() -> None:
    with pytest.raises(ConfigError):
        ChunkingConfig(chunk_size=0)
    assert Config(home=Path("/x")).replace(default_strategy="base").default_strategy == "base"


def test_one_upload_limit_for_the_app_and_the_document_jobs(home: Path) -> None:
    """ingest.max_upload_mb: 50 MB unless assistant.yaml says otherwise; it must be positive."""
    assert load_config().ingest.max_upload_mb == 50.0
    (home / "assistant.yaml").write_text("ingest: {max_upload_mb: 5}\n")
    assert load_config().ingest.max_upload_mb == 5.0 and "max_upload_mb: 5.0" in dump_config(load_config())
    (home / "assistant.yaml").write_text("ingest: {max_upload_mb: 0}\n")
    with pytest.raises(ConfigError, match=r"ingest\.max_upload_mb must be positive"):
        load_config()


def test_a_domain_may_name_its_own_generation_model(tmp_path: Path) -> None:
    (tmp_path / "assistant.yaml").write_text("domains:\n  medical: {model: /models/bio-gguf/bio.gguf}\n")
    config = load_config(home=tmp_path)
    assert config.domain("medical").model == "/models/bio-gguf/bio.gguf"
    assert config.for_domain("medical").generation.model == "/models/bio-gguf/bio.gguf"
    assert config.for_domain("pubmedqa") is config and config.for_domain("finance").generation == config.generation
    assert config.generation.model == EMBEDDED_GENERATOR
    # what the file does not change of a shipped domain stays: its instruction
    assert config.domain("medical").instruction == DEFAULT_DOMAINS["medical"].instruction


def test_a_domain_may_set_its_own_retrieval_and_settings_for_every_domain_win_over_shipped_defaults(
        tmp_path: Path) -> None:
    # shipped: finance counts BM25 twice in the fusion; medical takes retrieval's own settings
    config = Config(home=tmp_path)
    assert config.for_domain("finance").retrieval.bm25_weight == 2.0 and config.for_domain("finance").retrieval.top_k == 5
    assert config.for_domain("medical").retrieval == config.retrieval
    # a setting for every domain wins over the shipped default; one for the domain wins over both
    (tmp_path / "assistant.yaml").write_text("retrieval: {bm25_weight: 1.5}\ndomains:\n  medical: {top_k: 8}\n")
    config = load_config(home=tmp_path)
    assert config.for_domain("finance").retrieval.bm25_weight == 1.5
    assert (config.for_domain("medical").retrieval.top_k, config.for_domain("medical").retrieval.bm25_weight) == (8, 1.5)
    (tmp_path / "assistant.yaml").write_text("retrieval: {bm25_weight: 1.5}\ndomains:\n  finance: {bm25_weight: 3}\n")
    assert load_config(home=tmp_path).for_domain("finance").retrieval.bm25_weight == 3.0
    # a bad value names where it is
    (tmp_path / "assistant.yaml").write_text("domains:\n  finance: {top_k: 0}\n")
    with pytest.raises(ConfigError, match="top_k"):
        load_config(home=tmp_path).for_domain("finance")


def test_an_assistant_answers_with_its_domains_model(tmp_path: Path) -> None:
    from assistant import Assistant

    (tmp_path / "assistant.yaml").write_text("domains:\n  medical: {model: /models/bio}\n")
    config = load_config(home=tmp_path)
    assert Assistant("medical", config).config.generation.model == "/models/bio"
    assert Assistant("finance", config).config.generation.model == EMBEDDED_GENERATOR
