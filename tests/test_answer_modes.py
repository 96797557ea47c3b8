"""Answer modes (issue 15, part 3): tables read from hand-made pages, the cell a question names with its scale and
period, derived answers, and generate / extractive / auto through the RAG strategy (fake generator, no model).

    .venv/bin/pytest tests/test_answer_modes.py -q
"""

from __future__ import annotations

import pytest

from assistant.config import Config, GenerationConfig
from assistant.errors import ConfigError
from assistant.evaluation.tasks import score_item
from assistant.strategies import AskOptions, StrategyContext, get_strategy
from assistant.strategies.derive import derive_cell
from assistant.strategies.extract import display_value, extract_cell, negative
from assistant.strategies.modes import extractive_answer
from assistant.strategies.tables import read_tables
from assistant.types import Answer, QAItem, Source
from tests.test_strategies import FakeGenerator, FakeRetriever, answer_with

# a statement laid out in columns, as a PDF page reads: a scale line, a header row of years, negatives in parentheses
STATEMENT = (
    "Consolidated Statements of Operations\n(Dollars in millions)\n"
    "Years ended December 31,      2022      2021      2020\n"
    "Total revenues              66,608    62,286    58,158\n"
    "Cost of products           (53,969)  (49,954)  (54,568)\n"
    "Net loss                  $ (5,053)   (4,290)  (12,062)\n"
    "Operating margin              (5.3)%    (4.7)%   (22.0)%\n"
)
# a TAT-QA context as the loader writes it: a markdown table, then its paragraphs (the scale is in one of them)
TATQA = (
    "|  |  | Years Ended |  |  |\n|---|---|---|---|---|\n"
    "|  | July 27, 2019 | July 28, 2018 | July 29, 2017 | Variance in Percent |\n"
    "| Research and development | $ 6,577 | $ 6,332 | $6,059 | 4% |\n"
    "| Percentage of revenue | 12.7% | 12.8% | 12.6% |  |\n"
    "| Sales and marketing | 9,571 | 9,242 | 9,184 | 4% |\n"
    "| General and administrative | 1,827 | 2,144 | 1,993 | (15)% |\n"
    "| Total | $17,975 | $17,718 | $17,236 | 1% |\n\n"
    "R&D, sales and marketing, and G&A expenses are summarized in the following table (in millions, except "
    "percentages):\n\nR&D expenses increased due to higher headcount-related expenses."
)
# column headers that carry the scale themselves, and a section row without values
THOUSANDS = (
    "|  | 2019 | 2018 |\n|---|---|---|\n|  | $'000 | $'000 |\n| Current |  |  |\n"
    "| Trade payables | 3,486 | 4,184 |\n| Accrued expenses | 6,706 | 2,717 |\n"
)


def src(i: int, text: str, title: str = "") -> Source:
    return Source(doc_id=f"d{i}", title=title or f"Doc {i}", locator=f"REPORT.pdf, page {i}", score=1 / i,
                  snippet=text, similarity=0.8)


def finance(config: Config, gen: FakeGenerator, ret: FakeRetriever) -> StrategyContext:
    return StrategyContext(config=config, domain=config.domain("finance"), get_generator=lambda: gen,
                           get_retriever=lambda: ret)


# ---- tables ---------------------------------------------------------------------------------------
def test_tables_in_columns_and_markdown_are_read_with_headers_rows_and_spans() -> None:
    [table] = read_tables(STATEMENT)
    assert table.headers == ("2022", "2021", "2020")
    assert [r.label for r in table.rows] == ["Total revenues", "Cost of products", "Net loss", "Operating margin"]
    net = table.rows[2]
    assert [c.text for c in net.cells] == ["$ (5,053)", "(4,290)", "(12,062)"]
    assert all(STATEMENT[c.start:c.end] == c.text for c in net.cells)
    assert STATEMENT[net.start:net.end].startswith("Net loss")

    [md] = read_tables(TATQA)
    assert md.headers[:3] == ("July 27, 2019", "Years Ended July 28, 2018", "July 29, 2017")  # a merged cell
    assert md.rows[0].label == "Research and development" and md.rows[0].cells[0].text == "$ 6,577"
    [k] = read_tables(THOUSANDS)
    assert k.headers == ("2019 $'000", "2018 $'000") and k.rows[0].section == "Current"


def test_cells_are_answered_as_the_table_writes_them() -> None:
    # a negative keeps the parentheses a filing writes it with (and the TAT-QA gold spans keep)
    assert display_value("(3.1)") == ("(3.1)", False)
    assert display_value("$(77,328)") == ("$(77,328)", False) and display_value("$ (77,328)") == ("$(77,328)", False)
    assert display_value("-3.1") == ("-3.1", False)
    assert display_value("$ 6,577") == ("$6,577", False)
    assert display_value("(15)%") == ("(15)%", True)
    assert negative("(3.1)") and negative("$(77,328)") and negative("-3.1") and not negative("$6,577")
    assert display_value("—") is None and display_value("") is None


# ---- the cell a question names ------------------------------------------------------------------------
def test_the_cell_at_the_named_row_and_year_with_the_page_scale() -> None:
    sources = [src(1, "Unrelated text about a pension plan."), src(2, STATEMENT)]
    cell = extract_cell("What was the net loss in 2021?", sources)
    assert cell is not None and (cell.source, cell.row, cell.column) == (2, "Net loss", "2021")
    assert cell.value == "(4,290) million" and cell.scale == "million"
    assert extract_cell("What were total revenues in 2020?", sources).value == "58,158 million"  # type: ignore[union-attr]
    # a percentage keeps no scale; a year the table lacks, or a row it lacks, gives no cell
    assert extract_cell("What was the operating margin in 2022?", sources).value == "(5.3)%"  # type: ignore[union-attr]
    assert extract_cell("What was the net loss in 2015?", sources) is None
    assert extract_cell("How many employees were there in 2021?", sources) is None
    # the page: Boeing's 2022 revenue is the filing's "66,608" in millions, not the model's "$79,368"
    from tests.test_grounding import BOEING_P55

    boeing = extract_cell("What was Boeing's total revenue in 2022?", [src(1, BOEING_P55)])
    assert boeing is not None and (boeing.value, boeing.row) == ("66,608 million", "Total revenues")


def test_tatqa_context_cell_its_scale_from_the_paragraph_and_the_metric() -> None:
    sources = [src(1, TATQA)]
    cell = extract_cell("What was the research and development expense in 2019?", sources)
    assert cell is not None and cell.value == "$6,577 million" and cell.column == "July 27, 2019"
    text, evidence, found = extractive_answer("What was the sales and marketing expense in 2017?", sources)  # type: ignore[misc]
    assert text.startswith("Answer: 9,184 million [1]\nFrom the table of source [1]: row \"Sales and marketing\"")
    assert evidence.kind == "row" and evidence.quote == "| Sales and marketing | 9,571 | 9,242 | 9,184 | 4% |"
    assert sources[0].snippet[evidence.start:evidence.end] == evidence.quote and found is not None
    item = QAItem("t:1", "tatqa", "What was the sales and marketing expense in 2017?", "9,184", "test",
                  answer_type="span", metadata={"answer_raw": ["9,184"], "scale": "million"})
    verdict = score_item(item, text, None, Config().evaluation)
    assert verdict.em == 1.0 and verdict.correct
    # column headers that state the scale win over the page
    assert extract_cell("What were trade payables in 2018?", [src(1, THOUSANDS)]).value == "4,184 thousand"  # type: ignore[union-attr]


def test_derived_answers_state_their_calculation() -> None:
    sources = [src(1, TATQA)]
    change = derive_cell("What was the change in the research and development expense between 2017 and 2018?", sources)
    assert change is not None and change.value == "273 million" and change.calculation == "6,332 - 6,059"
    pct = derive_cell("What was the percentage change in the total expenses between 2017 and 2018?", sources)
    assert pct is not None and pct.value == "2.8%" and pct.calculation == "(17,718 - 17,236) / 17,236 * 100"
    avg = derive_cell("What was the average sales and marketing expense in 2018 and 2019?", sources)
    assert avg is not None and avg.value == "9,406.5 million"
    which = derive_cell("In which year was the general and administrative expense the largest?", sources)
    assert which is not None and which.value == "2018"
    both = derive_cell("What was the research and development expense in 2019 and 2018, respectively?", sources)
    assert both is not None and both.value == "$6,577 million; $6,332 million"
    loss = derive_cell("What was the change in net loss from 2021 to 2022?", [src(1, STATEMENT)])
    assert loss is not None and loss.value == "-763 million" and loss.calculation == "(-5,053) - (-4,290)"
    # the project's TAT-QA scorer reads the answer line and re-does the labelled calculation
    text, _, _ = extractive_answer("What was the percentage change in the total expenses between 2017 and 2018?",
                                   sources)  # type: ignore[misc]
    item = QAItem("t:2", "tatqa", "q", "2.8", "test", answer_type="arithmetic",
                  metadata={"answer_raw": 2.8, "scale": "percent"})
    verdict = score_item(item, text, None, Config().evaluation)
    assert verdict.correct and verdict.derivation == "(17,718 - 17,236) / 17,236 * 100"


def test_no_table_cell_means_the_best_evidence_sentence() -> None:
    sources = [src(1, "The plant grows in water. Its leaves form holes by programmed cell death in the spring.")]
    text, evidence, cell = extractive_answer("How do the leaves form holes?", sources)  # type: ignore[misc]
    assert cell is None and text == ('Answer: by programmed cell death in the spring [1]\n'
                                     'From source [1]: "Its leaves form holes by programmed cell death in the spring."')
    assert evidence.cited and evidence.kind == "sentence"
    assert evidence.quote == "Its leaves form holes by programmed cell death in the spring."


def test_a_sentence_that_does_not_restate_the_question_is_answered_whole() -> None:
    sources = [src(1, "The plant grows in water. Holes appear in the leaves by programmed cell death.")]
    text, _, cell = extractive_answer("What is the lace plant's natural habitat?", sources)  # type: ignore[misc]
    assert cell is None and not text.startswith("Answer:") and text.endswith("[1]")


def test_a_why_question_reads_no_table() -> None:
    page = ("Revenue increased due to higher volumes in the offshore business.\n\n"
            "| | 2019 | 2018 |\n|---|---|---|\n| Revenue | 1,200 | 1,000 |\n")
    text, _, cell = extractive_answer("Why did revenue increase in 2019?", [src(1, page)])  # type: ignore[misc]
    assert cell is None and text.startswith("Answer: due to higher volumes in the offshore business [1]")
    text, _, cell = extractive_answer("What was the revenue in 2019?", [src(1, page)])  # type: ignore[misc]
    assert cell is not None and cell.value == "1,200"


def test_a_sentence_stating_the_amount_beats_a_cell_whose_row_says_little_of_the_question() -> None:
    page = ("Amortization of deferred costs was $2.7 billion in 2019.\n\n"
            "| | 2019 | 2018 |\n|---|---|---|\n| Prepaid expenses and other costs | 2,578 | 2,083 |\n")
    text, _, cell = extractive_answer("What was the amortization of deferred costs in 2019?", [src(1, page)])  # type: ignore[misc]
    assert cell is None and text.startswith("Answer: $2.7 billion [1]")


# ---- modes through the RAG strategy -------------------------------------------------------------------
def with_mode(config: Config, mode: str) -> Config:
    from dataclasses import replace

    return config.replace(generation=replace(config.generation, answer_mode=mode))


def test_answer_mode_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"generation\.answer_mode must be one of generate, extractive, auto"):
        GenerationConfig(answer_mode="guess")
    assert GenerationConfig().answer_mode == "auto"  # the default, by measurement


def test_auto_keeps_a_supported_reply(config: Config) -> None:
    gen = FakeGenerator(reply="Sales and marketing expense was $9,184 million in 2017 [1].")
    ans = answer_with(get_strategy("rag"), finance(with_mode(config, "auto"), gen, FakeRetriever([src(1, TATQA)])),
                      "What was the sales and marketing expense in 2017?", AskOptions())
    assert ans.text == "Sales and marketing expense was $9,184 million in 2017 [1]." and ans.grounded == 1.0
    assert ans.details["answer_mode"] == "auto" and ans.details["answered_with"] == "generated"
    assert "generated_answer" not in ans.details


def test_auto_replaces_a_reply_whose_number_no_source_shows(config: Config) -> None:
    gen = FakeGenerator(reply="The sales and marketing expense in 2017 was $79,368 [1].")
    ans = answer_with(get_strategy("rag"), finance(with_mode(config, "auto"), gen, FakeRetriever([src(1, TATQA)])),
                      "What was the sales and marketing expense in 2017?", AskOptions())
    assert ans.text.startswith("Answer: 9,184 million [1]") and ans.citations == [1]
    assert ans.warnings[0] == ("the generated number '$79,368' is not in the sources; answering with the cell of "
                               "source [1]'s table (row 'Sales and marketing', column 'July 29, 2017')")
    assert not any("unsupported" in w for w in ans.warnings)  # the replaced reply's own warnings went with it
    assert ans.grounded == 1.0 and ans.evidence[0].kind == "row" and ans.details["answered_with"] == "table cell"
    assert ans.details["generated_answer"] == "The sales and marketing expense in 2017 was $79,368 [1]."
    assert ans.details["generated_unsupported"] == ["$79,368"]
    # generate keeps the reply and says what is wrong with it
    plain = answer_with(get_strategy("rag"), finance(with_mode(config, "generate"), gen, FakeRetriever([src(1, TATQA)])),
                        "What was the sales and marketing expense in 2017?", AskOptions())
    assert plain.text.startswith("The sales and marketing expense in 2017 was $79,368") and plain.grounded == 0.0
    assert any("unsupported number '$79,368'" in w for w in plain.warnings)


def test_auto_replaces_a_reply_the_table_contradicts(config: Config) -> None:
    # every number of the reply is on the page, but not the one at the row and year the question names
    gen = FakeGenerator(reply="The sales and marketing expense in 2017 was $9,571 million [1].")
    ans = answer_with(get_strategy("rag"), finance(with_mode(config, "auto"), gen, FakeRetriever([src(1, TATQA)])),
                      "What was the sales and marketing expense in 2017?", AskOptions())
    assert ans.text.startswith("Answer: 9,184 million [1]") and ans.details["answered_with"] == "table cell"
    assert ans.warnings[0] == ("the generated answer does not state 9,184 million, the value the table gives; answering "
                               "with the cell of source [1]'s table (row 'Sales and marketing', column 'July 29, 2017')")
    assert ans.details["generated_unsupported"] == []
    # a reply without numbers to a question the table answers is replaced too; one stating the cell bare is kept
    vague = FakeGenerator(reply="Sales and marketing costs went up [1].")
    assert answer_with(get_strategy("rag"), finance(with_mode(config, "auto"), vague, FakeRetriever([src(1, TATQA)])),
                       "What was the sales and marketing expense in 2017?", AskOptions()).text.startswith("Answer: 9,184")
    bare = FakeGenerator(reply="It was 9,184 [1].")
    assert answer_with(get_strategy("rag"), finance(with_mode(config, "auto"), bare, FakeRetriever([src(1, TATQA)])),
                       "What was the sales and marketing expense in 2017?", AskOptions()).text == "It was 9,184 [1]."


def ask_auto(config: Config, page: str, question: str, reply: str) -> Answer:
    """`question` answered in auto mode from one source, `page`, with the model replying `reply`."""
    ctx = finance(with_mode(config, "auto"), FakeGenerator(reply=reply), FakeRetriever([src(1, page)]))
    return answer_with(get_strategy("rag"), ctx, question, AskOptions())


def test_auto_replaces_a_reply_without_numbers_whose_words_the_sources_do_not_hold(config: Config) -> None:
    page = "The plant grows in water. Its leaves form holes by programmed cell death in the spring."
    question = "How do the leaves form holes?"

    def ask(reply: str) -> Answer:
        return ask_auto(config, page, question, reply)

    replaced = ask("The answer to the question is: <source 1>")
    assert replaced.text.startswith("Answer: by programmed cell death in the spring [1]\nFrom source [1]: ")
    assert replaced.details["answered_with"] == "evidence sentence"
    assert replaced.warnings[0].startswith("only 0% of the generated answer's words are in the sources; answering "
                                           "with the best evidence sentence of source [1]")
    # a reply in the sources' words stands, and so does one that says the sources do not answer
    kept = ask("The leaves form holes through programmed cell death [1].")
    assert kept.text == "The leaves form holes through programmed cell death [1]." and "generated_answer" not in kept.details
    assert ask("The sources do not contain the answer.").details["answered_with"] == "generated"


def test_auto_replaces_a_reply_that_misses_the_amount_a_sentence_states(config: Config) -> None:
    page = "The Company has $0.3 million of federal tax credit carryforwards and $2.1 million of state credits."
    question = "What was the federal tax credit carryforwards?"

    def ask(reply: str) -> Answer:
        return ask_auto(config, page, question, reply)

    replaced = ask("The federal tax credit carryforwards were $2.1 million [1].")  # in the source, not the answer
    assert replaced.text.startswith("Answer: $0.3 million [1]")
    assert replaced.warnings[0].startswith("the generated answer does not state $0.3 million, the amount the source states")
    kept = ask("They were $0.3 million [1].")
    assert kept.text == "They were $0.3 million [1]." and kept.details["answered_with"] == "generated"


def test_extractive_generates_nothing_and_a_question_may_ask_its_own_mode(config: Config) -> None:
    gen = FakeGenerator(reply="never used")
    ans = answer_with(get_strategy("rag"), finance(config, gen, FakeRetriever([src(1, STATEMENT)])),
                      "What was the net loss in 2021?", AskOptions(answer_mode="extractive"))
    assert gen.seen == [] and ans.text.startswith("Answer: (4,290) million [1]") and ans.model == ""
    assert ans.details == {"answer_mode": "extractive", "answered_with": "table cell",
                           "extracted": {"source": 1, "row": "Net loss", "column": "2021", "value": "(4,290) million",
                                         "scale": "million"}}
    assert ans.checks and all(c.supported for c in ans.checks)


def test_closed_label_questions_are_generated_in_every_mode(config: Config) -> None:
    gen = FakeGenerator(reply="Yes [1].")
    sources = [src(1, "Statins reduced mortality by 12% in the trial.")]
    for mode in ("extractive", "auto"):
        ans = answer_with(get_strategy("rag"), finance(with_mode(config, mode), gen, FakeRetriever(sources)),
                          "Do statins reduce mortality?", AskOptions(choices=("yes", "no", "maybe")))
        assert ans.text == "Yes [1]." and ans.details["answered_with"] == "generated (closed labels)"
        assert ans.details["answer_mode"] == mode
    assert len(gen.seen) == 2


def test_extractive_answers_never_quote_planted_instructions() -> None:
    from tests.injections import PLANTED

    other = src(2, "An unrelated page about tea and rain.")
    answered = 0
    for planted in PLANTED:
        page = Source(doc_id=planted.key, title=planted.title, locator="", score=1.0, snippet=planted.text)
        text, evidence, _ = extractive_answer(planted.question, [page, other])  # type: ignore[misc]
        assert planted.bait.lower() not in text.lower(), planted.key
        assert evidence.quote in (page.snippet, other.snippet)[evidence.source - 1]
        answered += text.endswith("[1]") or text.startswith("Answer:")
    assert answered >= len(PLANTED) // 2  # the fact before the planted text is still quoted
