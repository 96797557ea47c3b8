"""Grounded answers (issue 15): numbers parsed and matched, claims checked and re-cited, evidence quoted, and
all of it through the RAG strategy's finish step (hash embedder, fake generator; no model).

    .venv/bin/pytest tests/test_grounding.py -q
"""

from __future__ import annotations

import json

import pytest

from assistant.config import Config, EmbeddingConfig
from assistant.embeddings import load_embedder
from assistant.strategies import AskOptions, check_claims, find_evidence, get_strategy
from assistant.strategies.evidence import split_units
from assistant.strategies.numbers import claims, page_scales, quantities, same_quantity
from assistant.types import Answer, Check, Evidence, Source
from tests.test_strategies import FakeGenerator, FakeRetriever, answer_with, ctx

BOEING_P55 = (
    "The Boeing Company and Subsidiaries\nConsolidated Statements of Operations\n\n"
    "(Dollars in millions, except per share data)\nYears ended December 31,  2022  2021  2020\n"
    "Sales of products  $55,893  $51,386  $47,142\nSales of services  10,715  10,900  11,016\n"
    "Total revenues  66,608  62,286  58,158\n\nCost of products  (53,969)  (49,954)  (54,568)\n"
    "Loss from operations  ($3,547)  ($2,902)  ($12,767)\nOperating margins  (5.3)  %  (4.7)  %  (22.0)  %\n"
)
BACKLOG = ("Our total backlog was $404 billion at the end of the year. Commercial Airplanes delivered 480 "
           "airplanes. The company employed about 156,000 people.")


def one(text: str):
    [q] = quantities(text)
    return q


def same(answer: str, source: str, page: str = "") -> bool:
    return same_quantity(one(answer), one(source), page_scales(page))


def src(i: int, text: str) -> Source:
    return Source(doc_id=f"d{i}", title=f"Doc {i}", locator=f"REPORT.pdf, page {i}", score=1 / i, snippet=text,
                  similarity=0.8)


# ---- numbers --------------------------------------------------------------------------------------
def test_numbers_are_parsed_with_sign_currency_scale_percent_and_years() -> None:
    got = {q.text: (q.value, q.percent, q.year, q.signed)
           for q in quantities("($3,547) and -4.5, $66.6 billion, 12% or (5.3) %, US$ 5 bn, 2022, $5M")}
    assert got == {"($3,547)": (-3547.0, False, False, True), "-4.5": (-4.5, False, False, True),
                   "$66.6 billion": (pytest.approx(66.6e9), False, False, False), "12%": (12.0, True, False, False),
                   "(5.3) %": (-5.3, True, False, True), "US$ 5 bn": (5e9, False, False, False),
                   "2022": (2022.0, False, True, False), "$5M": (5e6, False, False, False)}
    # digits inside words, versions and units glued to them are not numbers
    assert quantities("COVID-19 in the 10-K for Q4, v3.5.1, 5mg") == []
    assert [q.text for q in quantities("Revenue was $12 [1], [2, 3].")] == ["$12"]


def test_page_scale_headers() -> None:
    assert page_scales("(Dollars in millions, except per share data)") == (1e6,)
    assert page_scales("($ in thousands)\n... in billions of dollars") == (1e3, 1e9)
    assert page_scales("tens of millions of people") == ()


def test_matching_tolerates_scale_rounding_sign_and_sensible_percents() -> None:
    page = "(Dollars in millions)\nTotal revenues  66,608"
    assert same("$66.6 billion", "66,608", page)  # the page's scale, rounded to the shown precision
    assert same("$66,608 million", "66,608", page) and same("66,608", "66,608", page)
    assert same("$67 billion", "66,608", page) and not same("$66 billion", "66,608", page)
    assert not same("$79,368", "66,608", page)
    assert not same("$66.6 billion", "66,608")  # no "in millions" on the page: not the same number
    assert same("a loss of 3,547", "(3,547)") and same("-3,547", "(3,547)") and not same("+3,547", "(3,547)")
    assert same("12%", "0.12") and same("0.12", "12%") and same("-5.3%", "(5.3) %")
    assert not same("12%", "12") and not same("12%", "$0.12") and not same("12.6%", "12%")
    assert same("12%", "12.4%")  # the source is more precise than the answer: it rounds to it
    assert same("2022", "2022") and not same("2022", "2,022") and not same("2022", "2021")


def test_claims_leave_out_small_counts_and_what_the_question_states() -> None:
    got = [q.text for q in claims("In 2022 its 3 segments made $66.6 billion, 12% more.", "revenue in 2022?")]
    assert got == ["$66.6 billion", "12%"]


# ---- checks ---------------------------------------------------------------------------------------
def test_unsupported_numbers_are_flagged_by_name() -> None:
    report = check_claims("Total revenue in 2022 was $79,368 [1].", [src(1, BOEING_P55)], "What was revenue?")
    year, check = report.checks
    assert (year.claim, year.kind, year.supported) == ("2022", "year", True)
    assert (check.claim, check.supported, check.sources) == ("$79,368", False, ())
    assert report.warnings == ["unsupported number '$79,368': no source shows it (the answer cites [1])"]
    assert report.grounded == 0.5  # the year 2022 stands on the page, the amount does not
    assert report.text[check.start:check.end] == "$79,368"


def test_a_number_shown_about_something_else_does_not_count() -> None:
    page = BOEING_P55 + "Research and development  $1,510  $1,140  $1,385\n"
    report = check_claims("Boeing's total revenue in 2022 was $1,385 [1].", [src(1, page)],
                          "What was Boeing's total revenue in 2022?")
    [check] = report.checks
    assert not check.supported and check.note.startswith("[1] shows it about something else: 'Research and")
    assert report.warnings == ["unsupported number '$1,385': source [1] shows it only about something else "
                               "('Research and development $1,510 $1,140 $1,385')"]
    # a row of bare numbers is read with its label on the line above
    labelled = check_claims("Total revenues were 66,608 [1].", [src(1, "Total revenues\n66,608  62,286")])
    assert labelled.grounded == 1.0


def test_a_number_cited_to_the_wrong_source_is_re_cited() -> None:
    sources = [src(1, BACKLOG), src(2, BOEING_P55)]
    report = check_claims("Revenue was $66.6 billion [1] and backlog $404 billion [1].", sources)
    assert report.text == "Revenue was $66.6 billion [2] and backlog $404 billion [1]."
    assert report.citations == [1, 2] and report.grounded == 1.0
    assert report.warnings == ["re-cited '$66.6 billion' from [1] to [2]: the cited source does not show it, "
                               "source [2] does"]
    revenue, backlog = report.checks
    assert revenue.found == "66,608 (in millions)" and revenue.note == "re-cited from [1] to [2]"
    assert backlog.sources == (1,) and backlog.note == ""
    # a sentence that cites nothing gets the source that shows its number
    uncited = check_claims("Boeing employed about 156,000 people.", sources)
    assert uncited.text == "Boeing employed about 156,000 people [1]." and uncited.citations == [1]
    # nothing to check: no grounded share
    assert check_claims("Revenue grew.", sources).grounded is None


# ---- evidence -------------------------------------------------------------------------------------
def test_units_are_sentences_and_table_rows_with_exact_spans() -> None:
    units = split_units(BOEING_P55 + "\nRevenue rose. It was driven by deliveries of the 737 and 787.")
    kinds = [(u.kind, (BOEING_P55 + "\nRevenue rose. It was driven by deliveries of the 737 and 787.")[u.start:u.end])
             for u in units]
    assert ("row", "Total revenues  66,608  62,286  58,158") in kinds
    assert ("row", "Years ended December 31,  2022  2021  2020") in kinds
    assert ("sentence", "Revenue rose.") in kinds and ("sentence", "It was driven by deliveries of the 737 and 787.") in kinds


def test_evidence_picks_the_supporting_sentence_or_row_of_each_cited_source() -> None:
    embedder = load_embedder(EmbeddingConfig(model="hash:384", quantize=False))
    sources = [src(1, BACKLOG), src(2, BOEING_P55)]
    question = "What was Boeing's total revenue in 2022?"
    [e] = find_evidence(question, "Total revenue was $66.6 billion [2].", sources, [2], embedder)
    assert (e.source, e.kind, e.quote, e.cited) == (2, "row", "Total revenues  66,608  62,286  58,158", True)
    assert sources[1].snippet[e.start:e.end] == e.quote and e.doc_id == "d2" and e.locator == "REPORT.pdf, page 2"
    [e] = find_evidence("How many people did Boeing employ?", "About 156,000 people [1].", sources, [1], embedder)
    assert e.quote == "The company employed about 156,000 people." and e.kind == "sentence"
    # citing nothing: the best source, marked as not cited; no embedder: overlap and numbers alone
    [e] = find_evidence(question, "Total revenues were $66,608 million.", sources, [], None)
    assert (e.source, e.cited, e.quote) == (2, False, "Total revenues  66,608  62,286  58,158")
    assert find_evidence(question, "", sources, [1]) == []


# ---- the finish step and the Answer record ---------------------------------------------------------
def test_rag_finish_checks_re_cites_and_quotes(config: Config) -> None:
    sources = [src(1, BACKLOG), src(2, BOEING_P55)]
    ret = FakeRetriever(sources)
    ret.embedder = load_embedder(config.embedding)  # type: ignore[attr-defined]  # as the real retriever has
    gen = FakeGenerator(reply="Boeing's total revenue in 2022 was $66.6 billion [1], not $79,368.")
    ans = answer_with(get_strategy("rag"), ctx(config, gen, ret), "What was Boeing's total revenue in 2022?",
                      AskOptions(answer_mode="generate"))  # the reply kept as generated (auto: tests/test_answer_modes.py)
    assert ans.text == "Boeing's total revenue in 2022 was $66.6 billion [2], not $79,368."
    assert ans.citations == [2] and ans.grounded == 0.5
    assert [(c.claim, c.supported) for c in ans.checks] == [("$66.6 billion", True), ("$79,368", False)]
    assert any("unsupported number '$79,368'" in w for w in ans.warnings)
    assert any("re-cited '$66.6 billion' from [1] to [2]" in w for w in ans.warnings)
    assert [e.quote for e in ans.evidence] == ["Total revenues  66,608  62,286  58,158"]
    assert "check" in ans.timings
    # the base strategy retrieves nothing, so it has nothing to check or quote
    base = answer_with(get_strategy("base"), ctx(config, gen, ret), "q?", AskOptions())
    assert base.evidence == [] and base.checks == [] and base.grounded is None


def test_answers_round_trip_with_evidence_and_old_ones_still_load() -> None:
    ans = Answer("q", "It was $5 [1].", [src(1, "It was $5.")], "rag", grounded=1.0,
                 evidence=[Evidence(1, "d1", "p", "It was $5.", 0, 10, 0.9)],
                 checks=[Check("$5", "number", 7, 9, True, (1,), "$5")])
    data = json.loads(json.dumps(ans.to_dict()))
    assert data["checks"][0]["sources"] == [1] and data["evidence"][0]["quote"] == "It was $5."
    assert Answer.from_dict(data) == ans
    old = {k: v for k, v in data.items() if k not in ("evidence", "checks", "grounded")}
    loaded = Answer.from_dict(old)
    assert loaded.evidence == [] and loaded.checks == [] and loaded.grounded is None
