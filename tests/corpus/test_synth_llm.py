"""`data synth --method llm`: a model's question/answer pairs per passage, filtered, split by document,
cached and resumed (assistant.corpus.synth_llm); the real embedded model on real abstracts (slow)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.config import Config
from assistant.corpus import corpus_manifest, load_qa, prepare
from assistant.corpus.synth import synthesize
from assistant.corpus.synth_llm import parse, passages, problem
from assistant.corpus.synth_split import dedupe
from assistant.errors import InputError
from assistant.evaluation.runner import synthesised
from tests.corpus.conftest import write_recipe

FACTS = {  # town -> (anvils made, year)
    "Ashford": ("1,234", 2021), "Brill": ("2,468", 2020), "Corwen": ("3,702", 2019), "Dunmore": ("4,936", 2018),
    "Elstow": ("6,170", 2017), "Fenwick": ("7,404", 2016),
}


def page(town: str) -> str:
    made, year = FACTS[town]
    return (f"# The {town} works\n\nThe anvil works in {town} made {made} anvils in {year}, most of them for "
            f"farriers in the county. Its furnace was rebuilt that spring after a flood damaged the lower yard, "
            f"and the owners hired twelve new smiths to keep up with orders from the railway.\n")


def fake_model(calls: list[str]):
    """Answers like a model that mostly follows the format: one town gets no pair, one a made-up number."""

    def ask(messages: list[dict[str, str]]) -> str:
        passage = messages[-1]["content"]
        town = re.search(r"anvil works in (\w+)", passage)[1]  # type: ignore[index]
        calls.append(town)
        made, year = FACTS[town]
        if town == "Corwen":
            return "I am not sure what to ask."
        if town == "Dunmore":
            made = "9,999"
        return f"Question: How many anvils did the works in {town} make in {year}?\nAnswer: {made} anvils"

    return ask


@pytest.fixture
def notes(config: Config, tmp_path: Path) -> Config:
    folder = tmp_path / "notes"
    folder.mkdir()
    for town in FACTS:
        (folder / f"{town.lower()}.md").write_text(page(town), encoding="utf-8")
    write_recipe(config, "notes", "files", [folder], domain="finance")
    prepare("notes", config, progress=False)
    return config


def test_parse_filter_and_passages() -> None:
    assert parse("Sure!\nQuestion: What was made?\nAnswer: **Anvils.**") == ("What was made?", "Anvils.")
    assert parse("question - Who?\n\nanswer - Bob") == ("Who?", "Bob") and parse("No pair here.") is None
    text = "The works made 1,234 anvils in 2021 for the farriers of the county."
    assert problem("How many anvils did the works make in 2021?", "1,234 anvils", text) is None
    assert problem("How many anvils did the works make in 2021?", "9,999 anvils", text) == "answer_not_in_passage"
    assert problem("How many were made in 2021 for farriers?", "anvils for farriers", text) is None
    assert problem("Did it make 1,234 anvils?", "1,234 anvils", text) == "answer_in_question"
    assert problem("Anvils made in 2021", "1,234", text) == "not_a_question"
    assert problem("How many?", "1,234", text) == "question_length"
    assert problem("What is the passage about?", "anvils for the farriers", text) == "not_self_contained"
    assert problem("What did this study find about anvils?", "1,234 anvils", text) == "not_self_contained"
    assert problem("How many anvils did the works make in 2021?", "", text) == "answer_length"
    long = "\n\n".join(["Word " * 60] * 5)
    spans = passages(long)
    assert spans and all(200 <= e - s <= 1200 for s, e in spans)
    assert passages("Too short.") == []


def test_synthesised_questions_are_filtered_split_and_named(notes: Config) -> None:
    calls: list[str] = []
    report = synthesize("notes", notes, method="llm", ask=fake_model(calls), model="fake-1", sample=10,
                        progress=False)
    assert sorted(calls) == sorted(FACTS)  # one passage of each document asked
    assert report.problems == {"answer_not_in_passage": 1, "no_question_in_reply": 1}
    items = load_qa("notes", notes, "train") + load_qa("notes", notes, "test")
    assert len(items) == 4 == report.n_train + report.n_test and report.n_test >= 1
    for item in items:
        town = re.search(r"works in (\w+)", item.question)[1]  # type: ignore[index]
        assert item.answer == f"{FACTS[town][0]} anvils" and item.doc_ids == (f"notes:{town.lower()}",)
        assert item.metadata["method"] == "llm" and item.metadata["model"] == "fake-1"
        assert item.metadata["synthesised"] == "llm" and item.metadata["answer_from"] == "passage"
    assert not {i.doc_ids[0] for i in items if i.split == "train"} & {i.doc_ids[0] for i in items if i.split == "test"}
    made = corpus_manifest("notes", notes)["synthesised"]
    assert made["method"] == "llm" and made["model"] == "fake-1"
    # what an evaluation run of the corpus keeps, for its report to say the questions were synthesised
    assert synthesised(["notes"], notes) == {"notes": {"method": "llm", "model": "fake-1", "seed": 0, "at": made["at"]}}
    assert "with method 'llm' from a passage each (6 asked now)" in report.summary()

    again: list[str] = []  # a re-run asks nothing: every passage is cached
    report = synthesize("notes", notes, method="llm", ask=fake_model(again), model="fake-1", sample=10, progress=False)
    assert again == [] and report.n_train + report.n_test == 4
    with pytest.raises(InputError, match="needs a model"):
        synthesize("notes", notes, method="llm", progress=False)


def test_an_interrupted_llm_synth_resumes(notes: Config) -> None:
    calls: list[str] = []
    ask = fake_model(calls)

    def dies(messages: list[dict[str, str]]) -> str:
        if len(calls) == 3:
            raise KeyboardInterrupt
        return ask(messages)

    with pytest.raises(KeyboardInterrupt):
        synthesize("notes", notes, method="llm", ask=dies, model="fake-1", sample=10, progress=False)
    cache = notes.corpora_dir / "notes" / ".synth" / "llm.jsonl"
    with cache.open("a", encoding="utf-8") as f:
        f.write('{"key": "cut sho')  # a line cut short by the interruption
    rest: list[str] = []
    synthesize("notes", notes, method="llm", ask=fake_model(rest), model="fake-1", sample=10, progress=False)
    assert len(rest) == len(FACTS) - 3 and not set(rest) & set(calls)
    assert len([line for line in cache.read_text().splitlines() if line.endswith("}")]) == len(FACTS)


runner = CliRunner()


def test_cli_unknown_model(notes: Config) -> None:
    result = runner.invoke(app, ["data", "synth", "-q", "--corpus", "notes", "--method", "llm", "--model", "nope"])
    assert result.exit_code == 2 and "unknown model 'nope'" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_the_embedded_model_writes_questions_about_real_abstracts(config: Config, tmp_path: Path,
                                                                  shared_data: Path) -> None:
    """Twelve PubMedQA abstracts as a user's own notes; the embedded SmolLM2-135M (llama.cpp) asks about them."""
    abstracts = json.loads((shared_data / "medical" / "pubmedqa" / "ori_pqal.json").read_text())
    folder = tmp_path / "abstracts"
    folder.mkdir()
    for pmid, entry in list(abstracts.items())[:12]:
        (folder / f"{pmid}.txt").write_text("\n\n".join(entry["CONTEXTS"]), encoding="utf-8")
    write_recipe(config, "abstracts", "files", [folder], domain="medical")
    prepare("abstracts", config, progress=False)
    result = runner.invoke(app, ["data", "synth", "-q", "--corpus", "abstracts", "--method", "llm", "--sample", "12"])
    cache = config.corpora_dir / "abstracts" / ".synth" / "llm.jsonl"
    entries = [json.loads(line) for line in cache.read_text().splitlines()]
    assert len(entries) == 12 and all(e["reply"] for e in entries)  # every passage asked once, the reply kept
    kept = [e for e in entries if not e["problem"]]
    docs = {d.id: d.text for d in __import__("assistant").load_documents("abstracts", config)}
    for e in kept:  # what the filter keeps is supported by its passage
        assert problem(e["question"], e["answer"], docs[e["doc_id"]][e["span"][0]:e["span"][1]]) is None
    records = [{"question": e["question"], "answer": e["answer"], "answer_raw": e["answer"], "scale": "",
                "doc_id": e["doc_id"]} for e in kept]
    if len({r["doc_id"] for r in dedupe(records)[0]}) >= 2:  # one question with two answers is dropped
        assert result.exit_code == 0 and "synthesised" in result.stdout, result.output
        items = load_qa("abstracts", config, "train") + load_qa("abstracts", config, "test")
        assert len(items) >= 2 and all(i.metadata["model"].endswith("(llamacpp)") for i in items)
    else:  # too few kept for a split by document: said in one line
        assert result.exit_code == 2 and "needs at least 2" in result.output, result.output
