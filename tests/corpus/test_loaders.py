"""The dataset loaders (PubMedQA, MedQuAD, TAT-QA) on tiny files in their published formats."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from assistant.config import Config
from assistant.corpus import LOADERS, LoadResult, Recipe, load_documents, load_qa, prepare, register_loader
from assistant.corpus.loaders.medquad import split_for
from assistant.corpus.loaders.tatqa import display_answer, markdown_table
from assistant.errors import ConfigError, InputError
from tests.corpus.conftest import write_recipe


def test_pubmedqa_documents_hold_the_abstract_but_not_question_or_conclusion(config: Config, pubmedqa_dir: Path) -> None:
    write_recipe(config, "pqa", "pubmedqa", [pubmedqa_dir / "ori_pqal.json", pubmedqa_dir / "test_ground_truth.json"])
    report = prepare("pqa", config, progress=False)
    assert (report.n_documents, report.n_train, report.n_test) == (3, 2, 1)
    docs = {d.id: d for d in load_documents("pqa", config)}
    doc = docs["pqa:101"]
    assert doc.text == "BACKGROUND: Strokes are common.\n\nMETHODS: We studied 500 patients."
    assert doc.title == "PubMed 101 (2012)" and docs["pqa:103"].title == "PubMed 103"
    assert doc.locator == "https://pubmed.ncbi.nlm.nih.gov/101/"
    assert doc.metadata == {"pmid": "101", "year": 2012, "mesh": "Aspirin; Stroke", "source": "pubmedqa"}
    for d in docs.values():
        assert "?" not in d.text and "Aspirin reduced" not in d.text  # no question, no conclusion
    test = load_qa("pqa", config, split="test")
    assert [q.id for q in test] == ["pqa:102"]
    item = test[0]
    assert (item.answer, item.answer_type, item.options) == ("no", "label", ("yes", "no", "maybe"))
    assert item.long_answer == "Coffee was not harmful." and item.doc_ids == ("pqa:102",)
    assert {q.answer for q in load_qa("pqa", config)} == {"yes", "no", "maybe"}


def test_pubmedqa_warns_when_ground_truth_disagrees(config: Config, pubmedqa_dir: Path) -> None:
    (pubmedqa_dir / "test_ground_truth.json").write_text(json.dumps({"101": "no", "102": "no", "999": "yes"}))
    write_recipe(config, "pqa", "pubmedqa", [pubmedqa_dir])  # a folder works as well as the two files
    report = prepare("pqa", config, progress=False)
    assert report.n_test == 2
    assert any("1 test labels" in w and "disagree" in w for w in report.warnings)
    assert any("1 test PMIDs" in w for w in report.warnings)


def test_pubmedqa_rejects_a_file_of_another_format(config: Config, tmp_path: Path) -> None:
    bad = tmp_path / "ori_pqal.json"
    bad.write_text("[1, 2, 3]")
    write_recipe(config, "pqa", "pubmedqa", [bad])
    with pytest.raises(InputError, match=r"ori_pqal\.json: expected a JSON object keyed by PMID"):
        prepare("pqa", config, progress=False)


def test_medquad_reads_the_zip_skips_empty_answers_and_malformed_files(config: Config, medquad_zip: Path) -> None:
    write_recipe(config, "mq", "medquad", [medquad_zip], test_fraction=0.5)
    report = prepare("mq", config, progress=False)
    assert report.n_documents == 3
    assert report.skipped == {"empty_answer": 3, "malformed_xml": 1}
    assert any("0000002.xml" in w and "malformed" in w for w in report.warnings)
    assert any("3 questions without an answer" in w for w in report.warnings)
    docs = {d.id: d for d in load_documents("mq", config)}
    assert set(docs) == {"mq:GARD_0000001-1", "mq:GARD_0000001-2", "mq:GHR_0000001-1"}
    doc = docs["mq:GARD_0000001-1"]
    assert doc.title == "What is X ?" and doc.text == "X is a\nrare disease."
    assert doc.locator == "https://example.org/GARD/0000001"
    assert doc.metadata["focus"] == "Focus 0000001" and doc.metadata["qtype"] == "information"
    assert doc.metadata["source"] == "GARD" and doc.metadata["document"] == "GARD_0000001"
    qa = load_qa("mq", config)
    assert len(qa) == 3 and all(q.answer_type == "free" and q.doc_ids == (q.id,) for q in qa)
    # sibling questions of one page land in the same split
    splits = {q.id: q.split for q in qa}
    assert splits["mq:GARD_0000001-1"] == splits["mq:GARD_0000001-2"] == split_for("GARD_0000001", 0.5)


def test_medquad_split_is_deterministic_and_near_the_fraction() -> None:
    splits = Counter(split_for(f"GARD_{i:07d}", 0.1) for i in range(5000))
    assert 400 < splits["test"] < 600
    assert split_for("GARD_0000001", 0.1) == split_for("GARD_0000001", 0.1)


def test_medquad_bad_options_and_bad_zip(config: Config, medquad_zip: Path, tmp_path: Path) -> None:
    write_recipe(config, "mq", "medquad", [medquad_zip], test_fraction=1.5)
    with pytest.raises(ConfigError, match="test_fraction must be between 0 and 1"):
        prepare("mq", config, progress=False)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    write_recipe(config, "mq2", "medquad", [bad])
    with pytest.raises(InputError, match=r"bad\.zip: not a readable zip"):
        prepare("mq2", config, progress=False)


def test_tatqa_contexts_questions_and_splits(config: Config, tatqa_dir: Path) -> None:
    write_recipe(config, "tq", "tatqa", [tatqa_dir], domain="finance")
    report = prepare("tq", config, progress=False)
    assert (report.n_documents, report.n_train, report.n_test) == (3, 3, 2)
    assert report.skipped == {"duplicate_context": 1}
    docs = {d.id: d for d in load_documents("tq", config)}
    doc = docs["tq:ctx-a"]
    assert doc.text.startswith("|  | 2019 | 2018 |\n|---|---|---|\n| Revenue | $1,000 | 900 |\n| Cost \\| net | (50) | 40 |")
    assert doc.text.endswith("Revenue grew strongly in 2019 because of new contracts signed.\n\nSecond paragraph.")
    assert doc.title.startswith("Annual report excerpt: Revenue grew strongly")
    assert doc.locator == "TAT-QA train context ctx-a" and doc.metadata == {"source": "tatqa", "split": "train"}
    qa = {q.id: q for q in load_qa("tq", config)}
    assert qa["tq:q1"].answer == "100.0" and qa["tq:q1"].answer_type == "arithmetic"
    assert qa["tq:q2"].answer == "Revenue; Cost" and qa["tq:q2"].metadata["answer_raw"] == ["Revenue", "Cost"]
    assert qa["tq:q3"].answer == "2" and qa["tq:q3"].answer_type == "count"
    assert qa["tq:q5"].split == "test" and qa["tq:q5"].doc_ids == ("tq:ctx-a",)
    meta = qa["tq:q1"].metadata
    assert meta["scale"] == "thousand" and meta["derivation"] == "1000-900" and meta["rel_paragraphs"] == ["1"]
    assert meta["answer_from"] == "table" and meta["req_comparison"] is False


def test_tatqa_helpers() -> None:
    assert display_answer([1, 2.5, "x"]) == "1; 2.5; x"
    assert display_answer(1e-05) == "0.00001"
    assert markdown_table([]) == ""
    assert markdown_table([["a", "b"], ["c"]]) == "| a | b |\n|---|---|\n| c |  |"


def test_an_extra_loader_registers_like_the_builtin_ones(config: Config, tmp_path: Path) -> None:
    from assistant.types import Document

    @register_loader("lines")
    def load_lines(sources: list[Path], recipe: Recipe, progress: bool) -> LoadResult:
        lines = sources[0].read_text().splitlines()
        return LoadResult(documents=(Document(f"{recipe.name}:{i}", recipe.name, line, line) for i, line in enumerate(lines)))

    try:
        source = tmp_path / "lines.txt"
        source.write_text("alpha\nbeta\n")
        write_recipe(config, "ln", "lines", [source])
        assert prepare("ln", config, progress=False).n_documents == 2
    finally:
        LOADERS.pop("lines")
