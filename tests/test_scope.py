"""The scope a question names (assistant.scope) and retrieval in it (assistant.strategies.scoping)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from assistant.config import Config
from assistant.index import build_index
from assistant.retrieval import Retriever
from assistant.scope import companies_named, describe_scope, question_scope
from assistant.strategies import AskOptions, get_strategy
from assistant.strategies.scoping import retrieve_in_scope
from assistant.types import Document
from tests.test_strategies import FakeGenerator, answer_with, ctx

COMPANIES = ["3M", "AMERICANEXPRESS", "BESTBUY", "BOEING", "CVSHEALTH", "JOHNSON_JOHNSON", "PEPSICO", "PFIZER",
             "ULTABEAUTY"]
COLUMNS = {"company": COMPANIES, "year": [2021, 2022, 2023], "corpus": ["filings"]}


@pytest.mark.parametrize(("question", "named"), [
    ("What was Boeing's total revenue in 2022?", ["BOEING"]),
    ("What is the FY2018 capital expenditure amount (in USD millions) for 3M?", ["3M"]),
    ("Did Johnson & Johnson's sales grow?", ["JOHNSON_JOHNSON"]),
    ("How did Best Buy do in fiscal 2022?", ["BESTBUY"]),
    ("What was Ulta's net sales?", ["ULTABEAUTY"]),  # a capitalised word that begins one company's name
    ("Did American Express issue new debt?", ["AMERICANEXPRESS"]),
    ("Compare Pfizer and PepsiCo margins", ["PEPSICO", "PFIZER"]),
    ("What are statins?", []),
    ("what was pfizer's revenue", ["PFIZER"]),  # a whole name, in any case
    ("what did ulta report?", []),  # a beginning only when capitalised
    ("Which Pe company grew?", []),  # too short a prefix
])
def test_companies_named(question: str, named: list[str]) -> None:
    assert companies_named(question, COMPANIES) == named


def test_years_scope_only_with_a_company_and_reach_two_filings_ahead() -> None:
    assert question_scope("What was Boeing's revenue in 2022?", COLUMNS) == {"company": ["BOEING"], "year": [2022, 2023]}
    assert question_scope("What was Boeing's revenue in FY2021?", COLUMNS) == {"company": ["BOEING"]}  # all years
    assert question_scope("What was Boeing's revenue in 2018?", COLUMNS) == {"company": ["BOEING"]}  # none held
    assert question_scope("What was total revenue in 2022?", COLUMNS) == {}
    assert question_scope("What was Boeing's revenue?", {"corpus": ["x"]}) == {}  # no company column
    assert describe_scope({"company": ["BOEING"], "year": [2022, 2023]}) == \
        "scoped to company BOEING, year 2022 or 2023 (named in the question)"
    assert describe_scope({}) == ""


def _docs() -> list[Document]:
    text = "Total revenues were {} million, up from the year before, on higher commercial deliveries."
    return [Document(id=f"f:{c}:p1", corpus="filings", title=f"{c} 2022 10K — page 1", text=text.format(n),
                     metadata={"company": c, "year": 2022}) for c, n in (("BOEING", "66,608"), ("PFIZER", "81,288"))]


def test_retrieval_in_the_named_scope(config: Config) -> None:
    build_index("fin", config, documents=_docs(), progress=False)
    with Retriever.open("fin", config) as r:
        question = "What were Pfizer's total revenues?"
        sources, scope = retrieve_in_scope(r, question)
        assert scope == {"company": ["PFIZER"]} and [s.doc_id for s in sources] == ["f:PFIZER:p1"]
        # the user's filters win, and scope=False searches everything
        mine, scope = retrieve_in_scope(r, question, filters={"company": "BOEING"})
        assert scope == {} and [s.doc_id for s in mine] == ["f:BOEING:p1"]
        assert len(retrieve_in_scope(r, question, scope=False)[0]) == 2
    off = config.replace(retrieval=replace(config.retrieval, scope=False))
    with Retriever.open("fin", off) as r:
        assert r.scope_of(question) == {} and len(retrieve_in_scope(r, question)[0]) == 2


def test_a_year_scopes_only_where_the_company_has_filings_of_it(config: Config) -> None:
    docs = [Document(id=f"f:{c}{y}", corpus="filings", title="page 1", text="Total revenues rose.",
                     metadata={"company": c, "year": y}) for c, y in (("BOEING", 2021), ("BOEING", 2023), ("PFIZER", 2022))]
    build_index("fin", config, documents=docs, progress=False)
    with Retriever.open("fin", config) as r:
        scope = r.scope_of("Boeing's revenue in 2022?")
        assert scope == {"company": ["BOEING"], "year": [2022, 2023]}  # reported in the 2022 to 2024 filings
        assert [s.doc_id for s in retrieve_in_scope(r, "Boeing's revenue in 2022?")[0]] == ["f:BOEING2023"]
        assert r.scope_of("Pfizer's revenue in 2023?") == {"company": ["PFIZER"]}  # no Pfizer filing of 2023-25


def test_a_scope_that_finds_nothing_is_dropped(config: Config) -> None:
    docs = [Document(id="f:b", corpus="filings", title="page 1", text="Commercial deliveries rose.",
                     metadata={"company": "BOEING"}),
            Document(id="f:p", corpus="filings", title="page 1", text="Vaccine sales fell.",
                     metadata={"company": "PFIZER"})]
    build_index("fin", config, documents=docs, progress=False)
    with Retriever.open("fin", config) as r:  # Pfizer's page has no word of it: BM25 finds nothing there
        assert r.retrieve("Pfizer commercial deliveries", mode="bm25", filters={"company": "PFIZER"}) == []
        sources, scope = retrieve_in_scope(r, "Pfizer commercial deliveries", mode="bm25")
        assert scope == {} and [s.doc_id for s in sources] == ["f:b"]


def test_the_rag_answer_records_its_scope(config: Config) -> None:
    build_index("medical", config, documents=_docs(), progress=False)
    with Retriever.open("medical", config) as r:
        gen = FakeGenerator(reply="It was 81,288 million [1].")
        answer = answer_with(get_strategy("rag"), ctx(config, gen, r), "What were Pfizer's total revenues?",
                             AskOptions(answer_mode="generate"))
        assert answer.details["scope"] == {"company": ["PFIZER"]}
        assert [s.doc_id for s in answer.sources] == ["f:PFIZER:p1"]
        unscoped = answer_with(get_strategy("rag"), ctx(config, gen, r), "What were Pfizer's total revenues?",
                               AskOptions(answer_mode="generate", scope=False))
        assert "scope" not in unscoped.details and len(unscoped.sources) == 2
