"""The `assistant` command through typer's runner, on a tiny model, the hash embedder and a user corpus.

Everything a user does from the shell: add a folder, build, ask (text and --json), search, update with new
files, status, list, remove; and every user error exits 2 with one line naming the input.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app

runner = CliRunner()

DOCS = {
    "glaucoma.md": "# Glaucoma\n\nGlaucoma is a group of eye diseases that damage the optic nerve. "
    "Raised intraocular pressure is the main risk factor.",
    "asthma.txt": "Asthma is a chronic disease of the airways. Inhaled corticosteroids reduce attacks.",
    "ACME_2022_10K.html": "<html><head><title>ACME 2022 annual report</title></head><body><p>ACME total revenue "
    "was $12.4 billion in 2022, up 8% from 2021.</p><script>var x = 1;</script></body></html>",
}


@pytest.fixture
def cli_home(home: Path, tiny_model_dir: Path, tmp_path: Path) -> Path:
    (home / "assistant.yaml").write_text(
        "embedding: {model: 'hash:384', quantize: false}\n"
        f"generation: {{model: '{tiny_model_dir}', dtype: float32, max_new_tokens: 12, max_input_tokens: 1536}}\n"
        "retrieval: {top_k: 2}\n"
        "domains:\n  notes: {description: test notes, instruction: Answer briefly.}\n"
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    return docs


def run(*args: str) -> tuple[int, str]:
    """Exit code and stdout; on failure stdout and stderr, for the message."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def built(docs: Path) -> None:
    code, out = run("corpus", "add", "mynotes", "--from", str(docs), "--domain", "notes")
    assert code == 0, out
    assert "3 documents" in out
    code, out = run("index", "build", "notes")
    assert code == 0, out
    assert "3 documents" in out


def test_user_path_add_build_ask_search_update_remove(cli_home: Path, tmp_path: Path) -> None:
    built(cli_home)

    code, out = run("index", "status", "notes", "--json")
    status = json.loads(out)
    assert code == 0 and status["n_documents"] == 3 and status["corpora"] == ["mynotes"]

    code, out = run("ask", "What damages the optic nerve in glaucoma?", "--domain", "notes", "--strategy", "rag", "--json")
    assert code == 0, out
    answer = json.loads(out)
    assert answer["strategy"] == "rag" and answer["domain"] == "notes"
    assert answer["sources"][0]["doc_id"] == "mynotes:glaucoma"
    assert answer["sources"][0]["locator"] and answer["sources"][0]["snippet"]
    assert set(answer["timings"]) >= {"retrieve", "generate", "total"}
    assert answer["output_tokens"] <= 12  # Answer carries its token counts as fields (issue 12)
    assert all(1 <= c <= len(answer["sources"]) for c in answer["citations"])

    code, out = run("ask", "What damages the optic nerve?", "-d", "notes", "-s", "rag")
    assert code == 0 and "glaucoma" in out.lower()  # the sources table

    code, out = run("ask", "What is asthma?", "-d", "notes", "--strategy", "base", "--json")
    assert code == 0 and json.loads(out)["sources"] == []

    code, out = run("search", "ACME revenue 2022", "-d", "notes", "--json")
    hits = json.loads(out)
    assert code == 0 and hits[0]["doc_id"] == "mynotes:ACME_2022_10K"

    new = tmp_path / "new.md"
    new.write_text("# Migraine\n\nMigraine headaches are often preceded by an aura.")
    code, out = run("index", "update", "notes", "--add", str(new))
    assert code == 0, out
    code, out = run("search", "migraine aura", "-d", "notes", "--json")
    assert json.loads(out)[0]["doc_id"] == "notes-uploads:new"

    code, out = run("index", "build", "notes")
    assert code == 0 and "embedded 0 chunks" in out  # nothing changed: nothing re-embedded

    code, out = run("index", "list")
    assert code == 0 and "notes" in out
    code, out = run("index", "remove", "notes", "--yes")
    assert code == 0
    code, out = run("ask", "x?", "-d", "notes", "-s", "rag")
    assert code == 2 and "not built" in out
    code, out = run("ask", "x?", "-d", "notes", "--json")  # auto: the base model answers, and says why
    answer = json.loads(out)
    assert code == 0 and answer["strategy"] == "base" and "index is not built" in answer["reason"]


def test_ask_with_a_named_model_and_an_answer_mode(cli_home: Path, home: Path, tiny_model_dir: Path,
                                                   tmp_path: Path) -> None:
    """`--model NAME` answers with a named model of config `models:` (the domain's own without it);
    `--answer-mode extractive` answers a retrieval strategy with the sources' evidence, generating nothing."""
    other = tmp_path / "other-tiny"
    shutil.copytree(tiny_model_dir, other)
    with (home / "assistant.yaml").open("a") as f:
        f.write(f"models:\n  other: {{model: '{other}', dtype: float32}}\n")
    built(cli_home)

    code, out = run("ask", "What is asthma?", "-d", "notes", "-s", "base", "--model", "other", "--json")
    assert code == 0, out
    assert json.loads(out)["model"] == str(other)
    code, out = run("ask", "What is asthma?", "-d", "notes", "-s", "base", "--json")
    assert code == 0 and json.loads(out)["model"] == str(tiny_model_dir)
    code, out = run("ask", "What is asthma?", "-d", "notes", "-s", "base", "-m", "huge")
    assert code == 2 and out.strip() == "error: unknown model 'huge' (known: other)"

    code, out = run("ask", "What damages the optic nerve in glaucoma?", "-d", "notes", "-s", "rag",
                    "--answer-mode", "extractive", "--model", "other", "--json")
    assert code == 0, out
    answer = json.loads(out)
    assert answer["details"]["answer_mode"] == "extractive" and answer["output_tokens"] == 0
    assert answer["details"]["answered_with"] in ("table cell", "evidence sentence")
    assert "optic nerve" in answer["text"] and answer["sources"][0]["doc_id"] == "mynotes:glaucoma"
    code, out = run("ask", "What damages the optic nerve in glaucoma?", "-d", "notes", "-s", "rag",
                    "--answer-mode", "generate", "--json")
    assert code == 0 and json.loads(out)["details"]["answer_mode"] == "generate"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ask", "", "-d", "notes", "--strategy", "base"], "question is empty"),
        (["ask", "x?", "-d", "legal"], "unknown domain 'legal'"),
        (["ask", "x?", "-d", "notes", "--strategy", "magic"], "unknown strategy 'magic'"),
        (["ask", "x?", "-d", "notes", "--filter", "company"], "--filter expects KEY=VALUE"),
        (["ask", "x?", "-d", "notes", "--model", "huge"], "unknown model 'huge' (known: none yet)"),
        (["ask", "x?", "-d", "notes", "--answer-mode", "verbatim"],
         "--answer-mode must be one of generate, extractive, auto, got 'verbatim'"),
        (["corpus", "prepare", "nope"], "unknown"),
        (["corpus", "prepare"], "name a corpus"),
        (["index", "status", "nope"], "unknown index 'nope'"),
        (["index", "update", "notes"], "no 'notes' index"),
        (["corpus", "add", "x", "--from", "/no/such/dir", "--domain", "notes"], "/no/such/dir"),
        (["index", "update", "notes", "--add", "/no/such.pdf"], "no such file"),
    ],
)
def test_user_errors_exit_2_with_one_line(cli_home: Path, args: list[str], needle: str) -> None:
    code, out = run(*args)
    assert code == 2, out
    assert needle in out
    assert "Traceback" not in out
    assert len([line for line in out.splitlines() if line.strip()]) <= 2


def test_corrupt_upload_is_a_clear_error_and_loses_nothing(cli_home: Path, tmp_path: Path) -> None:
    built(cli_home)
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 this is not really a pdf")
    code, out = run("index", "update", "notes", "--add", str(bad))
    assert code == 2 and "broken.pdf" in out
    code, out = run("index", "status", "notes", "--json")
    assert json.loads(out)["n_documents"] == 3


def test_help_is_fast_and_lists_commands() -> None:
    code, out = run("--help")
    assert code == 0
    for command in ("corpus", "index", "ask", "search", "serve"):
        assert command in out


def test_serve_calls_the_apps_launch_function(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`assistant serve` imports app.py from the checkout and calls its launch() with the options given
    (--auth-file falling back to $ASSISTANT_AUTH_FILE, as for `python app.py`); a public host without a
    login is refused with one line."""
    from assistant import cli

    app_module = cli._load_app()
    real_launch = app_module.launch
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(app_module, "launch", lambda **kwargs: calls.append(kwargs))
    code, out = run("serve", "--port", "7999", "--build", "--max-upload-mb", "3", "--auth", "ann:secret")
    assert code == 0, out
    assert calls == [{"host": "127.0.0.1", "port": 7999, "share": False, "auth": [("ann", "secret")],
                      "max_upload_mb": 3.0, "build": True}]
    users = tmp_path / "users.txt"
    users.write_text("bob:pw\n")
    monkeypatch.setenv("ASSISTANT_AUTH_FILE", str(users))
    code, out = run("serve", "--host", "0.0.0.0")
    assert code == 0, out
    assert calls[-1]["auth"] == [("bob", "pw")] and calls[-1]["max_upload_mb"] is None
    monkeypatch.delenv("ASSISTANT_AUTH_FILE")
    monkeypatch.setattr(app_module, "launch", real_launch)  # it refuses before loading anything
    code, out = run("serve", "--share")
    assert code == 2 and "--share makes the app reachable" in out and len(calls) == 2


def test_index_update_add_refuses_files_over_the_configured_limit(cli_home: Path, home: Path, tmp_path: Path) -> None:
    with (home / "assistant.yaml").open("a") as f:
        f.write("ingest: {max_upload_mb: 0.001}\n")  # about 1 KB
    big = tmp_path / "big.txt"
    big.write_text("Glaucoma damages the optic nerve. " * 100)
    code, out = run("index", "update", "notes", "--add", str(big))
    assert code == 2 and "big.txt" in out and "over the" in out
    other = tmp_path / "notes.docx"
    other.write_text("x")
    code, out = run("index", "update", "notes", "--add", str(other))
    assert code == 2 and "unsupported file type" in out and ".pdf, .txt, .md, .markdown, .html, .htm" in out


def test_ask_prints_the_evidence_and_the_unsupported_numbers(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import assistant as api

    page = "(Dollars in millions)\nTotal revenues  66,608  62,286"
    src = api.Source("filings:BOEING_2022_10K:p55", "BOEING 10-K", "BOEING_2022_10K.pdf, page 55", 0.5, page)
    answer = api.Answer("What was Boeing's total revenue in 2022?", "It was $79,368 [1].", [src], "rag", "rag: requested",
                        warnings=["unsupported number '$79,368': no source shows it (the answer cites [1])"],
                        evidence=[api.Evidence(1, src.doc_id, src.locator, page[22:], 22, len(page), 0.6, "row")],
                        checks=[api.Check("$79,368", "number", 7, 14, False, note="no source shows it")], grounded=0.0)

    class Fake:
        def ask(self, question: str, **kwargs: object) -> api.Answer:
            return answer

    monkeypatch.setattr(api.Assistant, "load", classmethod(lambda cls, domain, **kwargs: Fake()))
    result = runner.invoke(app, ["ask", answer.question, "--domain", "finance"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "It was $79,368 [1]." and lines[2] == "Evidence"
    assert lines[3].strip() == "[1] BOEING_2022_10K.pdf, page 55"
    assert lines[4].strip() == "“Total revenues 66,608 62,286”"
    assert "warning: unsupported number '$79,368': no source shows it" in result.stderr
    assert "numbers supported 0/1" in result.stderr
    data = json.loads(runner.invoke(app, ["ask", answer.question, "--domain", "finance", "--json"]).stdout)
    assert data["evidence"][0]["quote"] == "Total revenues  66,608  62,286" and data["grounded"] == 0.0
    assert data["checks"][0] == {"claim": "$79,368", "kind": "number", "start": 7, "end": 14, "supported": False,
                                 "sources": [], "found": "", "note": "no source shows it"}
