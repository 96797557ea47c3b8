"""The background build: a domain's corpora indexed one at a time, smallest first, each step askable at once,
resumable, and a failing corpus reported without stopping the rest (hash embedder, tiny files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import Assistant
from assistant.background import BackgroundBuild, build_order
from assistant.config import Config, DomainConfig, GenerationConfig
from assistant.index import build_index, index_status
from assistant.jobs.documents import ensure_prepared
from tests.corpus.conftest import write_recipe

DOMAIN = "notes"


@pytest.fixture
def notes(config: Config, tmp_path: Path) -> Config:
    """Domain 'notes' with two corpora: 'small' (one file) and 'large' (three bigger files)."""
    for name, files in {
        "small": {"aspirin.md": "# Aspirin\n\nAspirin lowers the risk of a second heart attack."},
        "large": {f"doc{i}.md": f"# Note {i}\n\n" + "Metformin is a first-line therapy for type 2 diabetes. " * 40
                  for i in range(3)},
    }.items():
        folder = tmp_path / "sources" / name
        folder.mkdir(parents=True)
        for file, text in files.items():
            (folder / file).write_text(text, encoding="utf-8")
        write_recipe(config, name, "files", [folder], domain=DOMAIN)
    return config.replace(domains={DOMAIN: DomainConfig(name=DOMAIN, description="test notes")})


def test_corpora_are_indexed_smallest_first_and_each_step_is_askable(notes: Config) -> None:
    assert build_order(DOMAIN, notes) == ["small", "large"]
    seen: list[list[str]] = []
    job = BackgroundBuild([DOMAIN], notes, on_step=lambda d: seen.append(index_status(d, notes).corpora))
    job.start()
    assert job.wait(120)
    assert seen == [["small"], ["large", "small"]]  # after step 1 the index answered from 'small' alone
    items = job.progress()
    assert [(i.corpus, i.state) for i in items] == [("small", "ready"), ("large", "ready")]
    assert items[1].done == items[1].total > 0  # the progress reached the end of the chunks it embedded
    assert index_status(DOMAIN, notes).n_documents == 4


def test_a_built_domain_is_a_quick_no_op_and_an_interrupted_one_resumes(notes: Config) -> None:
    ensure_prepared(DOMAIN, notes, progress=False)
    build_index(DOMAIN, notes, corpora=["small"], progress=False)  # a build stopped after its first step
    steps: list[str] = []
    job = BackgroundBuild([DOMAIN], notes, on_step=steps.append)
    job.run()
    assert job.progress()[0].message == "already indexed" and steps == [DOMAIN]
    assert index_status(DOMAIN, notes).corpora == ["large", "small"]
    again = BackgroundBuild([DOMAIN], notes, on_step=steps.append)
    again.run()
    assert {i.message for i in again.progress()} == {"already indexed"} and steps == [DOMAIN]


def test_a_step_never_drops_a_corpus_the_index_already_holds(notes: Config, tmp_path: Path) -> None:
    BackgroundBuild([DOMAIN], notes).run()
    (tmp_path / "sources" / "small" / "aspirin.md").write_text("# Aspirin\n\nAspirin is an NSAID.", encoding="utf-8")
    seen: list[list[str]] = []
    BackgroundBuild([DOMAIN], notes, on_step=lambda d: seen.append(index_status(d, notes).corpora)).run()
    assert seen and all(corpora == ["large", "small"] for corpora in seen)
    assert index_status(DOMAIN, notes).n_documents == 4


def test_a_failing_corpus_is_reported_and_the_others_still_build(notes: Config, tmp_path: Path) -> None:
    bad = tmp_path / "sources" / "broken"
    bad.mkdir()
    (bad / "scan.pdf").write_bytes(b"%PDF-1.4 this is not a real PDF")
    write_recipe(notes, "broken", "files", [bad], domain=DOMAIN)
    job = BackgroundBuild([DOMAIN], notes)
    job.run()  # never raises
    states = {i.corpus: (i.state, i.message) for i in job.progress()}
    assert states["broken"][0] == "failed" and "no usable documents" in states["broken"][1]
    assert states["small"][0] == states["large"][0] == "ready"
    assert index_status(DOMAIN, notes).corpora == ["large", "small"]


def test_an_answer_from_a_partial_index_says_what_is_missing(notes: Config, tiny_model_dir: Path) -> None:
    ensure_prepared(DOMAIN, notes, progress=False)
    build_index(DOMAIN, notes, corpora=["small"], progress=False)
    config = notes.replace(generation=GenerationConfig(model=str(tiny_model_dir), max_new_tokens=4, dtype="float32"))
    answer = Assistant(DOMAIN, config).ask("Does aspirin lower the risk?", strategy="rag", top_k=1)
    assert answer.sources
    assert any("does not hold large yet" in w and "searched small only" in w for w in answer.warnings)
    build_index(DOMAIN, notes, corpora=["small", "large"], progress=False)
    answer = Assistant(DOMAIN, config).ask("Does aspirin lower the risk?", strategy="rag", top_k=1)
    assert not any("does not hold" in w for w in answer.warnings)
