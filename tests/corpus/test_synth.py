"""`data synth --method tables` end to end on a corpus of PDFs the test writes (tests/corpus/test_synth_pdf.py):
the questions, answers, scales and pages; the split by document; dedup, the filters and the leakage check;
bad input reported; an interrupted run resumed; the CLI's exit codes; and one real filing page (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.config import Config
from assistant.corpus import corpus_manifest, load_qa, prepare
from assistant.corpus import synth as synth_module
from assistant.corpus.leakage import find_leaks
from assistant.corpus.synth import synthesize
from assistant.corpus.synth_cells import Cell, Column, Row, Table
from assistant.corpus.synth_split import dedupe, split_by_document
from assistant.corpus.synth_tables import Problems, table_items, tables_task
from assistant.errors import InputError
from assistant.evaluation.tasks import score_item
from tests.corpus.conftest import write_recipe
from tests.corpus.test_synth_pdf import INCOME, TablePage, make_table_pdf

BALANCE = TablePage(
    above=["Consolidated Balance Sheets", "(In thousands)"],
    headers=["December 31, 2022", "December 31, 2021"],
    rows=[("Cash and cash equivalents", ["737,877", "431,560"]), ("Total assets", ["5,370,411", "4,764,379"])],
)
HEADERLESS = TablePage(above=["Properties"], headers=["Owned", "Leased"],
                       rows=[("Seattle", ["12", "3"]), ("Chicago", ["4", "5"]), ("Boston", ["6", "7"])])
PROSE = TablePage(prose=["The company makes anvils. Revenue grew in 2022 because of new contracts."])


def segment(company: str, revenue: str, label: str = "Total revenues") -> TablePage:
    return TablePage(above=["Segment Results", "(Dollars in millions)"], headers=["2022", "2021"],
                     rows=[(label, [revenue, "1,111"]), (f"{company} operating income", ["2,345", "2,222"])])


@pytest.fixture
def filings(config: Config, tmp_path: Path) -> Config:
    """A prepared finance corpus 'mine' of five PDFs: three with tables, one of prose, one scanned."""
    folder = tmp_path / "pdfs"
    folder.mkdir()
    pdfs = {
        "ACME_2022_10K.pdf": [INCOME, BALANCE, PROSE, INCOME],  # the statement twice: duplicates
        "GLOBEX_2022_10K.pdf": [segment("Globex", "7,777"), HEADERLESS],
        "INITECH_2022_10K.pdf": [segment("Initech", "8,888"), segment("Initech", "9,999")],  # ambiguous
        "HOOLI_2022_10K.pdf": [PROSE],
        "SCAN_2022_10K.pdf": [TablePage(), TablePage()],  # no text at all: prepare skips it
    }
    for name, pages in pdfs.items():
        (folder / name).write_bytes(make_table_pdf(pages))
    write_recipe(config, "mine", "files", [folder], domain="finance")
    prepare("mine", config, progress=False)
    return config


def test_questions_answers_scales_and_pages(filings: Config) -> None:
    report = synthesize("mine", filings, progress=False, workers=1)
    items = {q.question: q for q in load_qa("mine", filings)}
    q = items["What was Acme's total revenues in 2022 (in millions), per its Consolidated Statements of Operations?"]
    assert (q.answer, q.answer_type, q.doc_ids) == ("66,608 million", "span", ("mine:ACME_2022_10K:p1",))
    meta = q.metadata
    assert (meta["answer_raw"], meta["scale"], meta["page"], meta["table"], meta["row"], meta["column"]) == \
        ("66,608", "million", 1, 0, 0, 0)
    assert (meta["method"], meta["model"], meta["synthesised"], meta["document"]) == ("tables", None, "tables", "ACME_2022_10K")
    by_answer = {(i.metadata["row_label"], i.metadata["period"]): i for i in items.values() if i.metadata["page"] == 1}
    assert by_answer[("Cost of products", "2021")].answer == "-49,954 million"  # the accounting sign
    assert by_answer[("Operating margin", "2021")].answer == "-4.8%"
    assert by_answer[("Operating margin", "2022")].metadata["scale"] == "percent"
    assert by_answer[("Diluted loss per share", "2022")].answer == "-8.30"  # per share: no scale
    assert ("Research and development", "2022") not in by_answer  # a dash is no answer
    assert by_answer[("Research and development", "2021")].answer == "1,010 million"
    cash = next(i for i in items.values() if i.metadata["row_label"] == "Cash and cash equivalents"
                and i.metadata["period"] == "December 31, 2022")
    assert cash.question == ("What was Acme's cash and cash equivalents as of December 31, 2022 (in thousands), "
                             "per its Consolidated Balance Sheets?")
    assert cash.answer == "737,877 thousand" and cash.doc_ids == ("mine:ACME_2022_10K:p2",)
    # scored by the TAT-QA numeracy metric: the value with its scale is right however it is written
    for text in (q.answer, "$66,608 million", "66608 million", "Answer: 66,608 million"):
        assert score_item(q, text, None, filings.evaluation).correct, text
    assert not score_item(q, "66,608", None, filings.evaluation).correct  # a wrong scale is wrong
    assert report.n_train + report.n_test == len(items) and report.sample


def test_split_by_document_and_the_manifest(filings: Config) -> None:
    report = synthesize("mine", filings, progress=False, workers=1, test_share=0.3)
    train, test = load_qa("mine", filings, "train"), load_qa("mine", filings, "test")
    assert train and test
    assert not {q.metadata["document"] for q in train} & {q.metadata["document"] for q in test}
    manifest = corpus_manifest("mine", filings)
    assert manifest["counts"]["qa_train"] == len(train) and manifest["counts"]["qa_test"] == len(test)
    synthesised = manifest["synthesised"]
    assert synthesised["method"] == "tables" and synthesised["model"] is None
    assert set(synthesised["test_documents"]) == {q.metadata["document"] for q in test}
    assert report.train_documents == synthesised["train_documents"]
    # a second run (from the cache) writes the same split
    again = synthesize("mine", filings, progress=False, workers=1, test_share=0.3)
    assert again.resumed == 4 and load_qa("mine", filings, "test") == test
    # --limit: a seeded sample, train and test in proportion, still split by document
    small = synthesize("mine", filings, progress=False, workers=1, test_share=0.3, limit=10, seed=0)
    assert (small.n_train, small.n_test) == (7, 3) and small.dropped["limit"] == len(train) + len(test) - 10
    assert [q.id for q in load_qa("mine", filings, "test")] == [q.id for q in test if q in load_qa("mine", filings, "test")]


def test_dedup_filters_and_bad_input_are_reported(filings: Config) -> None:
    report = synthesize("mine", filings, progress=False, workers=1)
    assert report.dropped["duplicate"] >= 9  # Acme's statement is on pages 1 and 4
    assert report.dropped["ambiguous"] == 2  # Initech's two tables disagree on its 2022 revenues
    assert "9,999" not in json.dumps([q.answer for q in load_qa("mine", filings)])
    assert report.problems["pdf_without_tables"] == 1 and "HOOLI_2022_10K.pdf" in report.examples["pdf_without_tables"][0]
    assert report.problems["table_without_period_headers"] == 1
    assert "GLOBEX_2022_10K.pdf, page 2" in report.examples["table_without_period_headers"][0]
    assert report.problems["prepare_skipped_no_text"] == 1  # the scan
    assert "SCAN_2022_10K.pdf" in report.examples["prepare_skipped_no_text"][0]
    assert report.n_documents == 4 and "synthesised" in report.summary()


def test_the_per_question_filters() -> None:
    table = Table(1, 0, (0, 0, 1, 1), [Column("2022", 0, 1), Column("2021", 0, 1)], [
        Row("Total revenues", "", (Cell("66,608", 0, 1, "number", "66,608"), Cell("1,234", 0, 1, "number", "1,234"))),
        Row("Notes due 2,022", "", (Cell("2,022", 0, 1, "number", "2,022"), None)),
        Row("X" * 120, "", (Cell("5", 0, 1, "number", "5"), None)),
    ], "million", "Results", "")
    problems = Problems()
    items = table_items(table, "c:D:p1", {"company": "ACME", "file": "D.pdf"}, "Total revenues 66,608 2,022 5", problems)
    assert [i["answer"] for i in items] == ["66,608 million", "5 million"]
    assert problems.counts == {"answer_not_in_page_text": 1, "answer_in_question": 1}
    import assistant.corpus.synth_tables as tables

    short, tables.MAX_QUESTION = tables.MAX_QUESTION, 100
    try:
        problems = Problems()
        assert [i["answer"] for i in table_items(table, "c:D:p1", {"company": "ACME"}, "66,608 2,022 5", problems)] == \
            ["66,608 million"]
        assert problems.counts["question_length"] == 1
    finally:
        tables.MAX_QUESTION = short


def test_dedupe_and_split_units() -> None:
    rec = [{"question": "What was X?", "answer_raw": "1", "scale": "", "answer": "1"},
           {"question": "what was  X ?", "answer_raw": "1", "scale": "", "answer": "1"},
           {"question": "What was Y?", "answer_raw": "1", "scale": "", "answer": "1"},
           {"question": "What was Y?", "answer_raw": "2", "scale": "", "answer": "2"}]
    kept, dropped, examples = dedupe(rec)
    assert [r["question"] for r in kept] == ["What was X?"] and dropped == {"duplicate": 1, "ambiguous": 2}
    assert examples["ambiguous"] == ["What was Y? -> 1 / 2"]
    test = split_by_document({"a": 10, "b": 10, "c": 10, "d": 10}, test_share=0.3, seed=1, corpus="c")
    assert len(test) == 1
    assert split_by_document({"a": 10, "b": 10, "c": 10, "d": 10}, test_share=0.3, seed=1, corpus="c") == test
    with pytest.raises(InputError, match="at least 2"):
        split_by_document({"a": 10, "b": 0}, test_share=0.3, seed=0, corpus="c")


def test_train_questions_that_nearly_repeat_a_test_question_are_dropped(config: Config, tmp_path: Path) -> None:
    folder = tmp_path / "pdfs"
    folder.mkdir()
    for name, label in (("ACME_2022_10K", "Total revenues"), ("ACME_2022_10K-A", "Total revenues, net"),
                        ("ACME_2023_10K", "Net sales")):
        (folder / f"{name}.pdf").write_bytes(make_table_pdf([segment("Acme", "5,555", label)]))
    write_recipe(config, "amend", "files", [folder], domain="finance")
    prepare("amend", config, progress=False)
    report = synthesize("amend", config, progress=False, workers=1, test_share=0.5)
    train, test = load_qa("amend", config, "train"), load_qa("amend", config, "test")
    assert find_leaks(train, test, config.training.leakage_threshold) == []
    if {"ACME_2022_10K", "ACME_2022_10K-A"} & set(report.test_documents) and \
            {"ACME_2022_10K", "ACME_2022_10K-A"} & set(report.train_documents):
        assert report.dropped["leak"] >= 1


def test_an_interrupted_synth_resumes(filings: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    stop = [True]  # Ctrl-C while the second PDF is read, in the first run only

    def interrupted(path: str, pages: list, meta: dict) -> dict:
        calls.append(Path(path).name)
        if len(calls) == 2 and stop and stop.pop():
            raise KeyboardInterrupt
        return tables_task(path, pages, meta)

    monkeypatch.setattr(synth_module, "tables_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        synthesize("mine", filings, progress=False, workers=1)
    assert load_qa("mine", filings) == []  # nothing written yet
    cached = list((filings.corpora_dir / "mine" / ".synth" / "tables").glob("*.json"))
    assert any(f.name.startswith("ACME_2022_10K") for f in cached)
    calls.clear()
    report = synthesize("mine", filings, progress=False, workers=1)
    assert "ACME_2022_10K.pdf" not in calls and report.resumed >= 2  # Acme, and Hooli (nothing to read)
    assert report.n_train and report.n_test


def test_the_pool_gives_the_same_questions(filings: Config) -> None:
    alone = synthesize("mine", filings, progress=False, workers=1)
    questions = load_qa("mine", filings)
    for f in (filings.corpora_dir / "mine" / ".synth" / "tables").glob("*.json"):
        f.unlink()
    pooled = synthesize("mine", filings, progress=False, workers=2)
    assert load_qa("mine", filings) == questions and pooled.n_tables == alone.n_tables


runner = CliRunner()


def test_cli(filings: Config, tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "synth", "--domain", "finance", "--corpus", "mine", "-q"])
    assert result.exit_code == 0, result.output
    assert "mine (finance): synthesised" in result.stdout and "e.g. [" in result.stdout
    assert "pdf_without_tables: 1" in result.output
    for args, message in [
        (["--corpus", "mine", "--method", "llm", "--model", "nope"], "unknown model 'nope'"),
        (["--corpus", "mine", "--method", "magic"], "unknown method 'magic'"),
        (["--corpus", "mine", "--domain", "medical"], "belongs to domain 'finance'"),
        (["--corpus", "nope"], "unknown corpus 'nope'"),
        (["--corpus", "mine", "--test-share", "1.5"], "between 0 and 1"),
    ]:
        result = runner.invoke(app, ["data", "synth", "-q", *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    one = tmp_path / "one"
    one.mkdir()
    (one / "ACME_2022_10K.pdf").write_bytes(make_table_pdf([INCOME]))
    write_recipe(filings, "single", "files", [one], domain="finance")
    result = runner.invoke(app, ["data", "synth", "-q", "--corpus", "single"])
    assert result.exit_code == 2 and "not prepared" in result.output
    prepare("single", filings, progress=False)
    result = runner.invoke(app, ["data", "synth", "-q", "--corpus", "single"])
    assert result.exit_code == 2 and "needs at least 2" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_a_real_filing_page(shared_data: Path) -> None:
    """The income statement of Boeing's 2022 10-K (page 55), read as the corpus reads it."""
    import pypdf

    from assistant.corpus.loaders.files import clean_page, filing_metadata
    from assistant.corpus.loaders.pdf import page_text

    path = shared_data / "finance" / "filings" / "BOEING_2022_10K.pdf"
    text = clean_page(page_text(pypdf.PdfReader(path), 54, "layout") or "")
    meta = {**filing_metadata(path.stem), "file": path.name, "document": path.stem}
    out = tables_task(str(path), [(55, "filings:BOEING_2022_10K:p55", text)], meta)
    items = {i["question"]: i for i in out["items"]}
    q = items["What was Boeing's total revenues for the year ended December 31, 2022 (in millions), "
              "per its Consolidated Statements of Operations?"]
    assert (q["answer"], q["scale"], q["page"]) == ("66,608 million", "million", 55)
    net = next(i for i in items.values() if i["row_label"] == "Net loss" and i["period"] == "2020")
    assert net["answer"] == "-11,941 million"
    eps = next(i for i in items.values() if i["row_label"] == "Basic loss per share" and i["period"] == "2022")
    assert eps["answer"] == "-8.30"
    assert len(items) >= 50 and out["tables"] == 1
