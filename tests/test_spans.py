"""The part of an evidence sentence that answers a question (assistant.strategies.spans)."""

from __future__ import annotations

import pytest

from assistant.strategies.spans import answer_span, asks_for_text, restated


@pytest.mark.parametrize(("question", "sentence", "span"), [
    # amounts: the one nearest the question's words, with currency, scale and a duration's unit
    ("What was the federal alternative minimum tax credit carryforwards?",
     "In addition, the Company has $0.3 million of federal alternative minimum tax credit carryforwards that "
     "will be refundable in future years.", "$0.3 million"),
    ("What was the company's equity ownership in Talespin, Inc?",
     "In December 2019, the Company made a minority investment in Talespin, Inc., for $8.0 million, "
     "representing approximately 13% equity ownership.", "13%"),
    ("In how many years is the unrecognized compensation cost to be recognized?",
     "Unrecognized compensation cost at December 31, 2019 was $1.2 billion and is expected to be recognized "
     "over a weighted-average period of approximately 2.5 years.", "2.5 years"),
    ("What is the total guarantee in respect of Section 106 obligations at 31 December 2019?",
     "Peel has provided a guarantee in respect of Section 106 obligations which at 31 December 2019 totalled "
     "£13.0 million (2018: £12.4 million).", "£13.0 million"),
    # a year the question names picks its place in a "respectively" list; two years give both
    ("What were the tax benefits realized by the company for year ended 31 December 2019?",
     "The tax benefits realized by the company for the years ended December 31, 2019, 2018 and 2017 were "
     "$131 million, $117 million and $180 million, respectively.", "$131 million"),
    ("What was the stock-based compensation expense related to the RSUs in 2019 and 2018?",
     "For the years ended December 31, 2019, 2018 and 2017, the Company recognized $0.3 million, $0.9 million "
     "and $0.6 million, respectively of stock-based compensation expense related to the RSUs.",
     "$0.3 million; $0.9 million"),
    # dates
    ("When did trading commence?", "Our stock is listed on Nasdaq. Trading commenced on March 29, 1988.",
     "March 29, 1988"),
    ("When did the Group complete an off-market share buy-back?",
     "On 27 May 2019, the Group completed an off-market share buy-back of 58,733,844 ordinary shares.", "27 May 2019"),
    # phrases: what follows the restated question, to where its words come back
    ("What does working capital consist of?", "(1) Working capital consists of current assets less current "
     "liabilities.", "current assets less current liabilities"),
    ("What does the company rely on to record its revenue?",
     "The Company relies on royalty reports received from third party licensees to record its revenue.",
     "royalty reports received from third party licensees"),
    ("What does Adjusted gross margin represent?", "Adjusted gross margin represents gross profit plus "
     "amortization of acquired intangibles.", "gross profit plus amortization of acquired intangibles"),
    ("Which countries does the group operate defined benefit schemes in?",
     "The Group operates defined benefit schemes in Germany, Ghana, India and the UK and the Group operates "
     "defined benefit indemnity plans in Greece.", "Germany, Ghana, India and the UK"),
    ("What are the impacts of significant revisions in contract estimates?",
     "The revisions in contract estimates, if significant, can materially affect our results of operations.",
     "materially affect our results of operations"),
    ("What did the company's Board of Directors approve in 2003?",
     "In May 2003, our Board of Directors approved a stock repurchase program. As of April 26, 2019, our Board "
     "has authorized the repurchase of up to $13.6 billion.", "a stock repurchase program"),
])
def test_answer_span(question: str, sentence: str, span: str) -> None:
    assert answer_span(question, sentence) == span


@pytest.mark.parametrize(("question", "sentence"), [
    ("What is the lace plant's natural habitat?", "Holes appear in the leaves by programmed cell death."),  # not restated
    ("What are Qdoba costs related to?", "(2) Qdoba costs are related to"),  # nothing left, a footnote mark is no answer
    ("", "Revenue grew."),
])
def test_no_span_when_the_sentence_cannot_tell_it(question: str, sentence: str) -> None:
    assert answer_span(question, sentence) is None


def test_questions_a_table_number_does_not_answer() -> None:
    for q in ("Why did revenue increase?", "How is EBITDA calculated?", "What was the reason for the decline?",
              "When did trading commence?", "Who is the auditor?", "What led to the increase in other income?"):
        assert asks_for_text(q), q
    for q in ("What was the revenue in 2019?", "How much was the dividend?", "How many shares were granted?",
              "What is the change in revenue between 2018 and 2019?"):
        assert not asks_for_text(q), q


def test_restated_is_the_share_of_the_question_words_said() -> None:
    assert restated("What was the amortization of deferred costs?", "Amortization of deferred costs was $2.7 billion") == 1.0
    assert restated("What was the amortization of deferred costs?", "Prepaid expenses and other") == 0.0
