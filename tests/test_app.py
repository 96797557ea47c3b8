"""The Gradio app on loopback, driven through gradio_client (tiny model, hash embedder, a small index)."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest
from gradio_client import Client

import assistant
from assistant import load_config

DOCS = {
    "ACME_2022_10K.md": "# ACME 2022\n\nACME total revenue was $12.4 billion in 2022.",
    "BETA_2022_10K.md": "# BETA 2022\n\nBETA total revenue was $3.1 billion in 2022.",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(home: Path, tiny_model_dir: Path, tmp_path: Path):
    (home / "assistant.yaml").write_text(
        "embedding: {model: 'hash:384', quantize: false}\n"
        f"generation: {{model: '{tiny_model_dir}', max_new_tokens: 8}}\n"
        # its own domain: "finance" would also prepare and index the shipped filings (minutes)
        "domains:\n  reports: {description: test reports}\n"
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    assistant.add_documents("reports", [docs], load_config(), progress=False)
    spec = importlib.util.spec_from_file_location("app_under_test", assistant.PROJECT_ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    port = free_port()
    demo = module.build_ui()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_ask_with_a_company_scope_returns_sources(app_url: str) -> None:
    client = Client(app_url, verbose=False)
    text, sources, notes = client.predict("total revenue", "reports", "rag", "company: BETA", api_name="/ask")
    rows = sources["data"]
    assert rows and {row[2] for row in rows} == {"reports-uploads:BETA_2022_10K"}
    assert "rag: requested" in notes and "generate" in notes
    assert isinstance(text, str)


def test_errors_are_messages_not_tracebacks(app_url: str) -> None:
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match="the question is empty"):
        client.predict("  ", "reports", "rag", "(whole domain)", api_name="/ask")
