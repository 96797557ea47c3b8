"""End-to-end user paths on slices of the shipped data, with the real embedded models (CPU, offline).

    .venv/bin/pytest tests/test_e2e.py          # ~2-3 min: converts SmolLM2 once, embeds ~800 chunks

Medical: PubMedQA prepared, 100 abstracts indexed, the issue's lace-plant question asked through the CLI.
Finance: two real filings prepared from PDF, indexed, Boeing's 2022 revenue asked, and a company scope.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant import Assistant, load_config, load_documents, prepare_corpus
from assistant.cli import app
from assistant.index import build_index

pytestmark = pytest.mark.slow
runner = CliRunner()
LACE = "Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?"
LACE_DOC = "pubmedqa:21645374"


def cli(*args: str) -> dict | list:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # stderr carries notices (e.g. the one-time model conversion)


@pytest.fixture(scope="module")
def real_home(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[Path]:
    """One data home for the module, so the embedded GGUF is converted once (~25 s)."""
    home = tmp_path_factory.mktemp("e2e-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(home))
        yield home


def test_medical_question_is_answered_from_its_own_abstract(real_home: Path) -> None:
    config = load_config()
    report = prepare_corpus("pubmedqa", config, progress=False)
    assert (report.n_documents, report.n_train, report.n_test) == (1000, 500, 500)
    docs = list(load_documents("pubmedqa", config))
    slice_ = [d for d in docs if d.id != LACE_DOC][:99] + [d for d in docs if d.id == LACE_DOC]
    build_index("medical", config, documents=slice_, corpora=["pubmedqa"], progress=False)

    answer = cli("ask", LACE, "--domain", "medical", "--json")
    assert answer["sources"][0]["doc_id"] == LACE_DOC
    assert answer["sources"][0]["locator"] == "https://pubmed.ncbi.nlm.nih.gov/21645374/"
    assert "lace plant" in answer["sources"][0]["snippet"].lower()
    assert answer["model"] == "embedded:SmolLM2-135M-Instruct" and answer["text"].strip()
    assert answer["strategy"] == "rag" and "auto -> rag: top retrieval score" in answer["reason"]  # the router chose
    assert all(1 <= c <= len(answer["sources"]) for c in answer["citations"])
    assert answer["prompt_tokens"] > 200

    # the Python API gives the same retrieval; the base strategy answers without sources
    a = Assistant.load("medical")
    assert [s.doc_id for s in a.ask(LACE).sources] == [s["doc_id"] for s in answer["sources"]]
    base = a.ask(LACE, strategy="base", max_new_tokens=24)
    assert base.sources == [] and base.text.strip() and base.output_tokens <= 24


def test_finance_question_finds_the_revenue_page_and_scopes_by_company(real_home: Path, shared_data: Path) -> None:
    folder = real_home / "two-filings"
    folder.mkdir()
    for name in ("BOEING_2022_10K.pdf", "ULTABEAUTY_2023Q4_EARNINGS.pdf"):
        os.symlink(shared_data / "finance" / "filings" / name, folder / name)
    result = runner.invoke(app, ["corpus", "prepare", "filings", "--from", str(folder)])
    assert result.exit_code == 0 and "filings (finance)" in result.output, result.output
    config = load_config()
    build_index("finance", config, documents=load_documents("filings", config), corpora=["filings"], progress=False)

    question = "What was Boeing's total revenue in 2022?"
    answer = cli("ask", question, "--domain", "finance", "--json")
    sources = answer["sources"]
    assert sources and all(s["metadata"]["company"] == "BOEING" for s in sources)
    # the question names Boeing: retrieval was scoped to it, and the reason says so (assistant.scope)
    assert answer["details"]["scope"] == {"company": ["BOEING"]}
    assert "scoped to company BOEING (named in the question)" in answer["reason"]
    assert all(s["locator"].startswith("BOEING_2022_10K.pdf, page ") for s in sources)
    assert answer["text"].strip()
    # "Total revenues 66,608" ($ millions) stands on pages 24, 55, 62 and 114; with every chunk searched by its
    # page's context ("THE BOEING COMPANY, Form 10-K annual report, fiscal 2022 ...") all of Boeing's pages
    # are near the question, and the MD&A's revenue tables rank beside them: within the top 10 in each mode
    for mode in ("hybrid", "dense"):
        hits = cli("search", question, "--domain", "finance", "--mode", mode, "-k", "10", "--json")
        assert any("66,608" in s["snippet"] for s in hits), mode

    scoped = cli("search", "total revenue", "--domain", "finance", "--company", "ULTABEAUTY", "--json")
    assert scoped and {s["metadata"]["company"] for s in scoped} == {"ULTABEAUTY"}
    named = cli("search", "Ulta Beauty's total revenue", "--domain", "finance", "-k", "10", "--json")
    assert named and {s["metadata"]["company"] for s in named} == {"ULTABEAUTY"}  # scoped by the name
    everywhere = cli("ask", question, "--domain", "finance", "--no-scope", "--max-new-tokens", "8", "--json")
    assert "scope" not in everywhere["details"] and "scoped to" not in everywhere["reason"]
    # every page's chunks are searched with its context (corpus.loaders.page_context), e.g. the income statement's
    pages = {d.metadata["page"]: d.metadata["context"] for d in load_documents("filings", config)
             if d.metadata["company"] == "BOEING"}
    assert all(c.startswith("THE BOEING COMPANY, Form 10-K annual report, fiscal 2022") for c in pages.values())
    assert "Item 8. Financial Statements and Supplementary Data" in pages[62]
    status = cli("index", "status", "finance", "--json")
    assert status["facets"]["company"] == ["BOEING", "ULTABEAUTY"]
