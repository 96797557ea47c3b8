"""End to end on the shipped data with the shipped recipes (skipped when ../shared/data is absent)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from assistant.config import Config
from assistant.corpus import corpus_manifest, is_stale, load_documents, load_qa, prepare


def test_pubmedqa(config: Config, shared_data: Path) -> None:
    report = prepare("pubmedqa", config, progress=False)
    assert (report.n_documents, report.n_train, report.n_test) == (1000, 500, 500)
    assert report.skipped == {} and report.warnings == []
    qa = load_qa("pubmedqa", config)
    assert Counter(q.answer for q in qa) == {"yes": 552, "no": 338, "maybe": 110}
    docs = {d.id: d for d in load_documents("pubmedqa", config)}
    doc = docs["pubmedqa:21645374"]
    assert doc.text.startswith("BACKGROUND: Programmed cell death")
    assert doc.locator == "https://pubmed.ncbi.nlm.nih.gov/21645374/" and doc.metadata["year"] == 2011
    # the conclusion (long answer) is not in the documents (two abstracts repeat a results sentence in it)
    assert sum(q.long_answer[:60] in docs[q.doc_ids[0]].text for q in qa) <= 2
    assert all(q.long_answer not in docs[q.doc_ids[0]].text for q in qa)
    assert not is_stale("pubmedqa", config)


def test_medquad(config: Config, shared_data: Path) -> None:
    report = prepare("medquad", config, progress=False)
    assert 16_000 <= report.n_documents <= 16_800
    assert 30_000 <= report.skipped["empty_answer"] <= 31_500
    assert report.n_train + report.n_test == report.n_documents
    assert 0.07 < report.n_test / report.n_documents < 0.13
    assert "duplicate_id" not in report.skipped
    qa = load_qa("medquad", config)
    pages = {}
    for q in qa:  # no page straddles the split
        assert pages.setdefault(q.metadata["document"], q.split) == q.split
    sources = Counter(d.metadata["source"] for d in load_documents("medquad", config))
    assert {"GARD", "GHR", "CancerGov", "NIDDK", "NINDS", "CDC"} <= set(sources)
    assert not {"ADAM", "MPlusDrugs", "MPlusHerbsSupplements"} & set(sources)  # answers removed by the publisher


def test_tatqa(config: Config, shared_data: Path) -> None:
    report = prepare("tatqa", config, progress=False)
    assert report.n_documents == 278 + 277 - report.skipped.get("duplicate_context", 0)
    assert (report.n_train, report.n_test) == (1668, 1663)
    qa = load_qa("tatqa", config, split="test")
    assert {q.answer_type for q in qa} == {"span", "multi-span", "arithmetic", "count"}
    doc_ids = {d.id for d in load_documents("tatqa", config)}
    assert all(q.doc_ids[0] in doc_ids for q in qa)


def test_filings_one_small_pdf(config: Config, shared_data: Path, tmp_path: Path) -> None:
    source = tmp_path / "filings"
    source.mkdir()
    shutil.copy(shared_data / "finance" / "filings" / "ULTABEAUTY_2023Q4_EARNINGS.pdf", source)
    report = prepare("filings", config, source=source, progress=False)
    assert report.n_documents == 9 and report.skipped == {}
    docs = list(load_documents("filings", config))
    assert [d.metadata["page"] for d in docs] == list(range(1, 10))
    first = docs[0]
    assert first.id == "filings:ULTABEAUTY_2023Q4_EARNINGS:p1"
    assert first.locator == "ULTABEAUTY_2023Q4_EARNINGS.pdf, page 1"
    assert {k: first.metadata[k] for k in ("company", "year", "form", "quarter")} == {
        "company": "ULTABEAUTY",
        "year": 2023,
        "form": "EARNINGS",
        "quarter": "Q4",
    }
    # layout extraction keeps a balance-sheet row on one line
    assert any("Cash and cash equivalents  $737,877  $431,560" in d.text for d in docs)
    assert corpus_manifest("filings", config)["override"] == str(source)
    assert not is_stale("filings", config)


@pytest.mark.slow
def test_filings_encrypted_edgar_pdf(config: Config, shared_data: Path) -> None:
    # EDGAR PDFs are RC4-encrypted with an empty user password: they must open without one
    report = prepare("filings", config, source=shared_data / "finance" / "filings" / "BESTBUY_2023_10K.pdf", progress=False)
    assert report.n_documents >= 70
    docs = list(load_documents("filings", config))
    assert docs[0].metadata["company"] == "BESTBUY" and docs[0].metadata["form"] == "10K"
