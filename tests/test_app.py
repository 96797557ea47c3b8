"""The Gradio app on loopback, driven through gradio_client (tiny model, hash embedder, a small index).

Each test starts the app (app.py's build_ui) on a free port in a temporary data home and uses it as a
client would: ask, compare, arena + vote, upload, results; then checks what the app stored.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from gradio_client import Client, handle_file

import assistant
from assistant import load_config

DOCS = {
    "ACME_2022_10K.md": "# ACME 2022\n\nACME total revenue was $12.4 billion in 2022.",
    "BETA_2022_10K.md": "# BETA 2022\n\nBETA total revenue was $3.1 billion in 2022.",
}
MAX_UPLOAD_MB = 0.01  # 10 KiB: the oversize test needs no big file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("app_under_test", assistant.PROJECT_ROOT / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_app(home: Path, tiny_model_dir: Path, tmp_path: Path) -> Iterator[str]:
    """A 'reports' domain with two documents indexed, and the app serving it (warming up in the
    background, as `assistant serve` does); yields its URL."""
    reports_domain(home, tiny_model_dir, tmp_path)
    port = free_port()
    demo = load_app().build_ui(max_upload_mb=MAX_UPLOAD_MB, warm_up=True)
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def reports_domain(home: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    """The 'reports' domain with its two documents indexed."""
    (home / "assistant.yaml").write_text(
        "embedding: {model: 'hash:384', quantize: false}\n"
        f"generation: {{model: '{tiny_model_dir}', dtype: float32, max_new_tokens: 8}}\n"
        # its own domain: "finance" would also prepare and index the shipped filings (minutes)
        "domains:\n  reports: {description: test reports}\n"
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    assistant.add_documents("reports", [docs], load_config(), progress=False)


@pytest.fixture
def app_url(home: Path, tiny_model_dir: Path, tmp_path: Path) -> Iterator[str]:
    yield from start_app(home, tiny_model_dir, tmp_path)


@pytest.fixture
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


def status() -> Any:
    return assistant.index_status("reports", load_config())


def test_ask_streams_an_answer_with_sources(client: Client) -> None:
    job = client.submit("total revenue", [], "reports", "rag", "company: BETA", api_name="/ask")
    question, history, sources, notes, evidence = job.result()
    assert len(job.outputs()) >= 2  # "Answering…" first, the answer with its sources last
    assert question == ""  # the box is cleared for the next question
    assert [m["role"] for m in history] == ["user", "assistant"]
    rows = sources["data"]
    assert rows and {row[2] for row in rows} == {"reports-uploads:BETA_2022_10K"}
    assert rows[0][0] == 1 and "**revenue**" in rows[0][6]  # numbered like the [n] markers; the match in bold
    assert "rag: requested" in notes and "generate" in notes and "Latency" in notes
    # the evidence panel quotes the source's best sentence, also marked in its snippet
    assert "<mark>BETA total revenue was $3.1 billion in 2022.</mark>" in evidence
    assert "<mark>BETA **total** **revenue** was $3.1 billion in 2022.</mark>" in rows[0][6]


def test_auto_strategy_says_what_the_router_chose(client: Client) -> None:
    _, history, _, notes, _ = client.predict("What was ACME's total revenue?", [], "reports", "auto", "(whole domain)",
                                          api_name="/ask")
    assert "auto ->" in notes and history[-1]["role"] == "assistant"


def test_errors_are_messages_not_tracebacks(client: Client) -> None:
    with pytest.raises(Exception, match="the question is empty"):
        client.predict("  ", [], "reports", "rag", "(whole domain)", api_name="/ask")
    with pytest.raises(Exception, match="unknown strategy 'nope'"):
        client.predict("total revenue", [], "reports", "nope", "(whole domain)", api_name="/ask")
    with pytest.raises(Exception, match="two to four strategies"):
        client.predict("total revenue", ["rag"], "reports", "(whole domain)", api_name="/compare")


def test_compare_shows_strategies_side_by_side(client: Client) -> None:
    out = client.predict("total revenue", ["base", "rag"], "reports", "(whole domain)", api_name="/compare")
    texts, tables = out[:4], out[4:]
    assert texts[0].startswith("### base") and texts[1].startswith("### rag") and texts[2:] == ("", "")
    assert "`base`" in texts[0] and "`rag`" in texts[1] and "Latency" in texts[1]
    assert not tables[0]["data"]  # base retrieves nothing
    assert {row[2] for row in tables[1]["data"]} >= {"reports-uploads:ACME_2022_10K"}


def test_arena_vote_is_stored_revealed_and_rated(client: Client) -> None:
    answer_a, answer_b, reveal = client.predict("total revenue", "reports", "(whole domain)", api_name="/arena")
    assert answer_a and answer_b and reveal == ""  # anonymous until the vote
    reveal, board = client.predict(api_name="/vote_a")
    votes = assistant.RunStore.open(load_config()).votes("reports")
    assert len(votes) == 1 and votes[0].vote == "A" and votes[0].question == "total revenue"
    a, b = votes[0].strategy_a, votes[0].strategy_b
    assert a != b and f"A was **`{a}`**" in reveal and f"B was **`{b}`**" in reveal
    rows = {row[0]: row for row in board["data"]}
    assert rows[a][2] == rows[b][2] == 1 and rows[a][1] > rows[b][1]  # one game each; the winner rates higher
    with pytest.raises(Exception, match="one vote"):
        client.predict(api_name="/vote_b")  # the same pair cannot be voted twice


def test_upload_adds_documents_and_refuses_bad_files(client: Client, tmp_path: Path) -> None:
    before = status()
    new = tmp_path / "GAMMA 2023 report.md"
    new.write_text("# GAMMA 2023\n\nGAMMA total revenue was $7.7 billion in 2023, up from $6.1 billion.")
    message, index_md, _, _ = client.predict([handle_file(str(new))], "reports", api_name="/upload")
    after = status()
    assert "Added" in message and "+1 documents" in message
    assert after.n_documents == before.n_documents + 1 and after.n_chunks > before.n_chunks
    assert f"**{after.n_documents}** documents" in index_md
    stored = load_config().corpora_dir / "reports-uploads" / "files"
    assert (stored / "GAMMA_2023_report.md").is_file()  # a safe name
    # the app answers from the new document at once (the index is reopened, the model is not reloaded)
    _, _, sources, _, _ = client.predict("GAMMA revenue 2023", [], "reports", "rag", "(whole domain)", api_name="/ask")
    assert "reports-uploads:GAMMA_2023_report" in {row[2] for row in sources["data"]}

    bad = tmp_path / "tool.exe"
    bad.write_bytes(b"MZ\x00\x00")
    big = tmp_path / "big.txt"
    big.write_text("revenue " * 4000)  # 32 KB > 10 KiB
    fake = tmp_path / "fake.pdf"
    fake.write_text("not a pdf")
    for path, expected in ((bad, "is not accepted"), (big, "over the"), (fake, "not a PDF")):
        message, _, _, _ = client.predict([handle_file(str(path))], "reports", api_name="/upload")
        assert "Nothing was added" in message and expected in message
    assert status().n_documents == after.n_documents


def test_results_show_the_latest_report(client: Client) -> None:
    text, gallery = client.predict("reports", api_name="/results")
    assert "No evaluation run" in text and gallery["visible"] is False and not gallery["value"]
    config = load_config()
    store = assistant.RunStore.open(config)
    run = store.create_run("reports", ["base", "rag"], {"generation": {"model": "tiny"}}, {}, limit=None, seed=0)
    for i, (base_ok, rag_ok) in enumerate([(False, True), (True, True), (False, True)]):
        for strategy, ok in (("base", base_ok), ("rag", rag_ok)):
            store.add(assistant.Record(run.run_id, f"q{i}", strategy, "reports-uploads", "free", f"question {i}",
                                       "gold", answer="x", correct=ok, latency=0.1 + i / 10))
    store.finish_run(run.run_id)
    text, gallery = client.predict("reports", api_name="/results")
    assert gallery["visible"] is True
    gallery = gallery["value"]
    assert run.run_id in text and "## Results" in text and "| rag |" in text and "Error analysis" not in text
    assert (config.runs_dir / run.run_id / "report.md").is_file()  # the app wrote the report
    assert len(gallery) >= 2 and all(Path(item["image"]).stat().st_size > 1000 for item in gallery)
    board = {row[0]: row for row in client.predict("reports", api_name="/leaderboard")["data"]}
    assert board["rag"][2] == board["base"][2] == 3 and board["rag"][1] > board["base"][1]  # the run's games


def test_warm_up_loads_what_the_first_question_needs(
    home: Path, tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reports_domain(home, tiny_model_dir, tmp_path)
    svc = load_app().Service()
    with caplog.at_level(logging.INFO, logger="assistant.app"):
        svc.warm_up("reports")
        svc.warm_up("nope")
    loaded = svc.assistant("reports").__dict__
    assert "generator" in loaded and "retriever" in loaded  # the default strategy (auto) probes the index
    assert "'reports' is warm" in caplog.text and "warm-up of 'nope' failed" in caplog.text


def test_build_runs_behind_the_app_shows_progress_and_answers_when_ready(
    home: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """`assistant serve --build`: the app is up before any index exists; /index_progress reports each
    corpus; once the first is ready, RAG answers from it."""
    import time

    from tests.corpus.conftest import write_recipe

    (home / "assistant.yaml").write_text(
        "embedding: {model: 'hash:384', quantize: false}\n"
        f"generation: {{model: '{tiny_model_dir}', dtype: float32, max_new_tokens: 8}}\n"
        "domains:\n  reports: {description: test reports}\n"
    )
    config = load_config()
    config = config.replace(domains={"reports": config.domains["reports"]})  # not the shipped domains
    for i, (name, text) in enumerate(DOCS.items()):
        folder = tmp_path / f"src{i}"
        folder.mkdir()
        (folder / name).write_text(text * (i + 1))
        write_recipe(config, f"part{i}", "files", [folder], domain="reports")
    port = free_port()
    demo = load_app().build_ui(config, build=True)
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        deadline = time.monotonic() + 120
        while True:
            items = client.predict(api_name="/index_progress")
            if all(item["state"] in ("ready", "failed") for item in items) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert [(item["corpus"], item["state"]) for item in items] == [("part0", "ready"), ("part1", "ready")]
        _, history, sources, notes, _ = client.predict("total revenue", [], "reports", "rag", "(whole domain)",
                                                    api_name="/ask")
        assert sources["data"] and history[-1]["role"] == "assistant"
        assert "does not hold" not in notes  # complete now: no missing-corpus warning
    finally:
        demo.close()


def test_the_build_banner_grows_the_menus_with_the_index(home: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    """While a build runs the timer also refreshes the strategy and scope menus: "rag" (and the documents
    to scope by) appear once the domain has an index, and a choice still valid is kept."""
    from tests.corpus.conftest import write_recipe

    (home / "assistant.yaml").write_text(
        "embedding: {model: 'hash:384', quantize: false}\n"
        f"generation: {{model: '{tiny_model_dir}', dtype: float32, max_new_tokens: 8}}\n"
        "domains:\n  reports: {description: test reports}\n"
    )
    config = load_config()
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.txt").write_text(next(iter(DOCS.values())))
    write_recipe(config, "part0", "files", [folder], domain="reports")
    svc = load_app().Service(config)

    def menus() -> tuple[list[str], list[str], str]:
        *_, scope, strategy, _compared = svc.build_view("reports", "cot", None, None)
        return [c[0] for c in strategy.choices], [c[0] for c in scope.choices], strategy.value

    strategies, scopes, chosen = menus()
    assert "rag" not in strategies and chosen == "cot"
    assistant.build("reports", config, progress=False)
    strategies, scopes, chosen = menus()
    assert "rag" in strategies and chosen == "cot" and len(scopes) > 1


def test_ask_stream_yields_pieces_then_the_same_answer_as_ask(home: Path, tiny_model_dir: Path) -> None:
    (home / "assistant.yaml").write_text(
        "embedding: {model: 'hash:384', quantize: false}\n"
        f"generation: {{model: '{tiny_model_dir}', dtype: float32, max_new_tokens: 12}}\n"
    )
    a = assistant.Assistant.load("medical")
    items = list(a.ask_stream("What is glaucoma?", strategy="base"))
    *pieces, final = items
    assert pieces and all(isinstance(p, str) for p in pieces) and isinstance(final, assistant.Answer)
    assert "".join(pieces) == final.text == a.ask("What is glaucoma?", strategy="base").text
    assert final.strategy == "base" and final.reason == "base: requested" and "generate" in final.timings
    assert final.prompt_tokens > 0
    with pytest.raises(assistant.InputError, match="empty"):
        next(a.ask_stream("   "))


def test_public_bind_requires_a_login(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = load_app()
    for argv in (["--host", "0.0.0.0"], ["--share"]):
        with pytest.raises(SystemExit) as exit_info:
            app.main(argv)
        assert exit_info.value.code == 2
        assert "--auth USER:PASSWORD" in capsys.readouterr().err
    with pytest.raises(assistant.InputError, match="--auth USER:PASSWORD"):  # launch() itself refuses too
        app.launch(host="0.0.0.0")
    users = tmp_path / "users.txt"
    users.write_text("# who may log in\nann:secret\n\nbob:pass:word\n")
    assert app.read_logins("cy:x", users) == [("cy", "x"), ("ann", "secret"), ("bob", "pass:word")]
    assert app.read_logins() is None
    users.write_text("nopassword\n")
    with pytest.raises(assistant.InputError, match="user:password"):
        app.read_logins(None, users)
    with pytest.raises(SystemExit):
        app.main(["--auth-file", str(users)])
    assert "user:password" in capsys.readouterr().err
    assert app._loopback("127.0.0.1") and app._loopback("localhost") and not app._loopback("0.0.0.0")


def test_the_upload_limit_and_file_types_come_from_one_place(home: Path) -> None:
    """The Documents tab's limit is the config's ingest.max_upload_mb unless the app is given one; its
    file types are the files loader's."""
    app = load_app()
    assert app.Service().max_upload_mb == assistant.load_config().ingest.max_upload_mb == 50.0
    (home / "assistant.yaml").write_text("ingest: {max_upload_mb: 2}\n")
    assert app.Service().max_upload_bytes == 2 * 1024 * 1024
    assert app.Service(max_upload_mb=0.5).max_upload_bytes == 512 * 1024
    import app_views as views

    for suffix in assistant.SUPPORTED_FILES:
        text = home / f"note{suffix}"
        text.write_bytes(b"%PDF-1.4\n" if suffix == ".pdf" else b"a note")
        assert views.check_upload(text, 1024) is None
    other = home / "note.docx"
    other.write_bytes(b"x")
    assert f"({assistant.SUPPORTED_LABEL} only)" in (views.check_upload(other, 1024) or "")


def test_concurrent_sessions_vote_and_upload(app_url: str, tmp_path: Path) -> None:
    """Two sessions at once: both votes are stored, both uploads land in the index (uploads take a lock)."""
    clients = [Client(app_url, verbose=False) for _ in range(2)]
    for job in [c.submit("total revenue", "reports", "(whole domain)", api_name="/arena") for c in clients]:
        job.result()
    for job in [c.submit(api_name=f"/vote_{v}") for c, v in zip(clients, ("a", "tie"), strict=True)]:
        job.result()
    assert sorted(v.vote for v in assistant.RunStore.open(load_config()).votes("reports")) == ["A", "tie"]
    before = status().n_documents
    uploads = []
    for i, c in enumerate(clients):
        path = tmp_path / f"DELTA{i}_2023_10K.txt"
        path.write_text(f"DELTA{i} net income was ${i + 1}.5 billion in 2023.")
        uploads.append(c.submit([handle_file(str(path))], "reports", api_name="/upload"))
    assert all("Added" in job.result()[0] for job in uploads)
    assert status().n_documents == before + 2


def test_views_link_urls_bold_matches_and_show_warnings(tmp_path: Path) -> None:
    import app_views as views

    src = assistant.Source("medquad:1", "Glaucoma", "https://medlineplus.gov/glaucoma.html", 0.71234,
                           "Glaucoma is a group of eye diseases that damage the optic nerve. " * 3, similarity=0.412)
    pdf = assistant.Source("filings:BOEING_2022_10K:p115", "BOEING 2022 10-K", "BOEING_2022_10K.pdf, page 115", 0.5,
                           "Total revenues were *66,608* [million]", similarity=None)
    ans = assistant.Answer("What is glaucoma?", "Glaucoma damages the optic nerve [1].", [src, pdf], "rag",
                           "auto -> rag: top retrieval score 0.71 is above 0.55",
                           {"retrieve": 0.01, "generate": 1.5, "total": 1.52},
                           ["low relevance: the best source's similarity is 0.41 (below 0.45)"], "SmolLM2")
    rows = views.source_rows(ans, ans.question)
    assert rows[0][:3] == [1, "Glaucoma", "medquad:1"] and rows[0][4] == 0.7123 and rows[0][5] == 0.412
    assert rows[0][3] == "[https://medlineplus.gov/glaucoma.html](https://medlineplus.gov/glaucoma.html)"
    assert "**Glaucoma**" in rows[0][6]
    assert rows[1][3] == "BOEING\\_2022\\_10K.pdf, page 115" and "\\*66,608\\*" in rows[1][6]  # markdown escaped
    text = views.notes(ans)
    assert "`rag`" in text and "auto -> rag: top retrieval score" in text and "1.52 s" in text
    assert "⚠️ low relevance" in text
    assert views.scope_filters("company: BOEING") == {"company": "BOEING"}
    assert views.scope_filters(views.WHOLE) is None and views.auto_scope(views.WHOLE)  # names still scope
    assert views.scope_filters(views.EVERYTHING) is None and not views.auto_scope(views.EVERYTHING)
    assert views.scopes(None) == [views.WHOLE, views.EVERYTHING]
    ok, empty = tmp_path / "a.txt", tmp_path / "b.md"
    ok.write_text("hello")
    empty.write_text("")
    assert views.check_upload(ok, 100) is None and "empty" in views.check_upload(empty, 100)


def test_views_show_evidence_and_mark_unsupported_numbers_escaped() -> None:
    import app_views as views

    page = "(Dollars in millions)\nTotal revenues  66,608  62,286\nA <b>bold</b> claim."
    src = assistant.Source("filings:BOEING_2022_10K:p55", "BOEING 10-K", "BOEING_2022_10K.pdf, page 55", 0.5, page)
    start, end = page.index("Total"), page.index("\nA <b>")
    ans = assistant.Answer("What was Boeing's revenue?", "<script>x</script> It was $79,368 [1].", [src], "rag")
    ans.evidence = [assistant.Evidence(1, src.doc_id, src.locator, page[start:end], start, end, 0.7, "row")]
    ans.checks = [assistant.Check("$79,368", "number", 26, 33, False, note="no source shows it")]
    html = views.answer_html(ans)
    assert html.startswith("&lt;script&gt;x&lt;/script&gt; It was ")  # the model's text is never HTML
    assert '<mark class="unsupported" title="$79,368: no source shows it">$79,368</mark> [1].' in html
    panel = views.evidence_markdown(ans)
    assert "BOEING\\_2022\\_10K.pdf, page 55" in panel and "> <mark>Total revenues 66,608 62,286</mark>" in panel
    assert "0 of 1 shown by the sources" in panel and '<mark class="unsupported">$79,368</mark>' in panel
    snippet = views.source_rows(ans, ans.question)[0][6]
    assert "<mark>Total **revenue**s 66,608 62,286</mark>" in snippet and "\\<b\\>bold" in snippet
    assert views.evidence_markdown(assistant.Answer("q", "")) == ""
