"""The issue's Boeing example on the real filing: an answer's revenue checked against the pages retrieved
for it (the real embedder, the real index; a fixed answer text through the RAG finish step, so the test
does not depend on what the 135M model writes).

    .venv/bin/pytest tests/test_grounding_e2e.py      # ~1 min: reads the 10-K, embeds its revenue pages
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from assistant import load_config, load_documents, prepare_corpus
from assistant.index import build_index
from assistant.retrieval import Retriever
from assistant.strategies import AskOptions, Prepared, StrategyContext, get_strategy
from assistant.types import Answer
from tests.test_strategies import FakeGenerator

pytestmark = pytest.mark.slow
QUESTION = "What was Boeing's total revenue in 2022?"


@dataclass
class Reply:
    text: str
    prompt_tokens: int = 100
    output_tokens: int = 12
    seconds: float = 0.1
    finish_reason: str = "stop"


@pytest.fixture(scope="module")
def boeing(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[tuple[StrategyContext, Prepared]]:
    """Boeing's 2022 10-K prepared, its pages that speak of revenue indexed, and the question prepared by the
    RAG strategy with real retrieval (hybrid, top 10: the "Total revenues 66,608" pages are among them; with
    each page's context in its chunks, the MD&A's revenue pages rank beside them)."""
    home = tmp_path_factory.mktemp("grounding-e2e")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(home))
        folder = home / "filing"
        folder.mkdir()
        os.symlink(shared_data / "finance" / "filings" / "BOEING_2022_10K.pdf", folder / "BOEING_2022_10K.pdf")
        config = load_config()
        prepare_corpus("filings", config, source=folder, progress=False)
        pages = [d for d in load_documents("filings", config) if "revenue" in d.text.lower()]
        build_index("finance", config, documents=pages, corpora=["filings"], progress=False)
        retriever = Retriever.open("finance", config)
        ctx = StrategyContext(config, config.domain("finance"), lambda: FakeGenerator(), lambda: retriever)
        prepared = get_strategy("rag").prepare(ctx, QUESTION, AskOptions(top_k=10, answer_mode="generate"))
        yield ctx, prepared


def finish(boeing: tuple[StrategyContext, Prepared], text: str) -> Answer:
    ctx, prepared = boeing
    fresh = Prepared(Answer(QUESTION, "", list(prepared.answer.sources), "rag"), prepared.messages,
                     prepared.strategy, prepared.prompt)
    return prepared.strategy.finish(ctx, fresh, Reply(text))  # type: ignore[arg-type]


def test_the_wrong_revenue_is_flagged_and_the_right_one_is_quoted(boeing: tuple[StrategyContext, Prepared]) -> None:
    sources = boeing[1].answer.sources
    assert all(s.locator.startswith("BOEING_2022_10K.pdf, page ") for s in sources)
    showing = [i for i, s in enumerate(sources, 1) if "66,608" in s.snippet]
    other = next(i for i in range(1, len(sources) + 1) if i not in showing)
    assert showing  # the premise: a retrieved page states total revenues of 66,608 (dollars in millions)

    wrong = finish(boeing, f"Boeing's total revenue in 2022 was $79,368 [{other}].")
    [check] = wrong.checks
    assert (check.claim, check.supported) == ("$79,368", False) and wrong.grounded == 0.0
    assert any(w.startswith("unsupported number '$79,368'") for w in wrong.warnings)
    assert wrong.citations == [other] and [e.source for e in wrong.evidence] == [other]

    right = finish(boeing, f"Boeing's total revenue in 2022 was $66.6 billion [{other}].")
    [check] = right.checks
    assert check.supported and check.found.startswith("66,608") and right.grounded == 1.0
    assert right.citations and set(right.citations) <= set(showing)  # re-cited to a page that shows it
    assert any(w.startswith("re-cited '$66.6 billion'") for w in right.warnings)
    [evidence] = right.evidence
    assert "66,608" in evidence.quote and "revenues" in evidence.quote.lower()
    assert sources[evidence.source - 1].snippet[evidence.start:evidence.end] == evidence.quote
