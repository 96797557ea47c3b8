"""Table answers beyond one cell (issue 15, part 3): units a row or column states for itself, year ranges,
one-year percentage changes, "which year" among the years named, and answers over two rows (one as a
percentage or proportion of another, how far apart they are). Pure functions on hand-made tables, no model.

    .venv/bin/pytest tests/test_table_answers.py -q
"""

from __future__ import annotations

from assistant.config import Config
from assistant.evaluation.tasks import score_item
from assistant.strategies.derive import derive_cell
from assistant.strategies.derive_rows import derive_rows
from assistant.strategies.extract import extract_cell
from assistant.strategies.modes import extractive_answer
from assistant.types import QAItem, Source

# a TAT-QA-like context: markdown table, the scale in a paragraph, rows that state their own units
REPORT = (
    "|  | 2019 | 2018 | 2017 |\n|---|---|---|---|\n"
    "| Devices sold | 15,988 | 13,939 | 15,343 |\n"
    "| Net revenue | 4,000 | 3,200 | 2,500 |\n"
    "| Cost of net revenue | 1,880 | 1,472 | 1,200 |\n"
    "| Cost of net revenue as % of net revenue | 47 | 46 | 48 |\n"
    "| Warranty reserve | 529 | 480 | 410 |\n"
    "| Total accrued liabilities | 3,571 | 3,300 | 3,000 |\n"
    "| Basic earnings per share | $2.41 | $2.70 | $12.30 |\n"
    "| Expected term (years) | 4.5 | 5.0 | 4.8 |\n\n"
    "The following table summarises our results (in thousands, except per share data and percentages):"
)
PRICES = "|  | September 29, 2019 |\n|---|---|\n| High | $91.30 |\n| Low | $70.77 |\n"


def src(text: str) -> Source:
    return Source(doc_id="d1", title="Annual report excerpt", locator="", score=1.0, snippet=text)


def test_rows_and_columns_that_state_their_own_unit_take_no_page_scale() -> None:
    sources = [src(REPORT)]
    assert extract_cell("What was the net revenue in 2019?", sources).value == "4,000 thousand"  # type: ignore[union-attr]
    assert extract_cell("What was the basic earnings per share in 2018?", sources).value == "$2.70"  # type: ignore[union-attr]
    assert extract_cell("What was the expected term (years) in 2017?", sources).value == "4.8"  # type: ignore[union-attr]
    # a percentage row's bare cells are percentages
    pct = extract_cell("What was the cost of net revenue as % of net revenue in 2019?", sources)
    assert pct is not None and pct.value == "47%" and pct.scale == ""
    # "USD ‘000" (a left quote) is thousands too
    table = ("|  | Years Ended December 31, |  |\n|---|---|---|\n| All figures in USD ‘000, except TCE rate per day | 2019 | 2018 |\n"
             "| Voyage revenue | 317,220 | 289,016 |\n")
    assert extract_cell("What was the voyage revenue in 2019?", [src(table)]).value == "317,220 thousand"  # type: ignore[union-attr]


def test_year_ranges_one_year_changes_and_which_year_among_those_named() -> None:
    sources = [src(REPORT)]
    avg = derive_cell("What is the average number of devices sold from 2017-2019?", sources)
    assert avg is not None and avg.value == "15,090 thousand" and avg.calculation == "(15,343 + 13,939 + 15,988) / 3"
    each = derive_cell("What is the basic earnings per share for fiscal years 2019 to 2017 respectively?", sources)
    assert each is not None and each.value == "$2.41; $2.70; $12.30"
    total = derive_cell("What is the total net revenue between 2017 to 2019?", sources)
    assert total is not None and total.value == "9,700 thousand"
    pct = derive_cell("What is the percentage change in net revenue in 2019?", sources)  # over the year before
    assert pct is not None and pct.value == "25%" and pct.calculation == "(4,000 - 3,200) / 3,200 * 100"
    # a difference is how far apart the years are; a change keeps its sign
    assert derive_cell("What is the difference in net revenue between 2018 and 2019?", sources).value == "800 thousand"  # type: ignore[union-attr]
    assert derive_cell("What is the change in devices sold from 2017 to 2018?", sources).value == "-1,404 thousand"  # type: ignore[union-attr]
    which = derive_cell("Between 2017 and 2018, which year had higher devices sold?", sources)
    assert which is not None and which.value == "2017"
    # a change in a percentage row is in percentage points, not a percentage change
    points = derive_cell("What was the change in cost of net revenue as % of net revenue between 2018 and 2019?", sources)
    assert points is not None and points.value == "1%" and points.calculation == "47 - 46"


def test_no_year_named_means_every_year_and_thresholds_count_or_name_years() -> None:
    sources = [src(REPORT)]
    avg = derive_cell("What is the average net revenue?", sources)
    assert avg is not None and avg.value == "3,233.33 thousand" and avg.calculation == "(2,500 + 3,200 + 4,000) / 3"
    assert derive_cell("How many years did net revenue exceed $3,000 thousand?", sources).value == "2"  # type: ignore[union-attr]
    where = derive_cell("In which year was net revenue less than 3,000?", sources)
    assert where is not None and where.value == "2017" and where.scale == ""
    years = derive_cell("What are the years included in the table?", sources)
    assert years is not None and years.value == "2019; 2018; 2017"
    two = "|  | 2019 | 2018 |\n|---|---|---|\n| Total emissions | 4,785.7 | 5,087.6 |\n"
    change = derive_cell("What was the change in total emissions?", [src(two)])
    assert change is not None and change.value == "-301.9" and change.calculation == "4,785.7 - 5,087.6"
    # a table with three years has no one change to compute
    assert derive_cell("What was the change in net revenue?", sources) is None


def test_answers_over_two_rows() -> None:
    sources = [src(REPORT)]
    share = derive_rows("What is the warranty reserve as a percentage of the total accrued liabilities in 2019?", sources)
    assert share is not None and share.value == "14.81%" and share.calculation == "529 / 3,571 * 100"
    assert share.row == '"Warranty reserve" and "Total accrued liabilities"' and share.rows == 2
    constitution = derive_rows("In 2018, what is the percentage constitution of warranty reserve among the total "
                               "accrued liabilities?", sources)
    assert constitution is not None and constitution.value == "14.55%"
    ratio = derive_rows("What is the ratio of cost of net revenue to net revenue in 2017?", sources)
    assert ratio is not None and ratio.value == "0.48"
    apart = derive_rows("What is the difference between the high and low price in September 29, 2019?", [src(PRICES)])
    assert apart is not None and apart.value == "20.53" and apart.calculation == "91.3 - 70.77"
    # two years named is a change over time, not two rows
    assert derive_rows("What is the difference between net revenue and cost of net revenue in 2018 and 2019?",
                       sources) is None
    # through the extractive answer, its rows named, and scored by the TAT-QA metric
    text, evidence, _ = extractive_answer("What is the warranty reserve as a percentage of the total accrued "
                                             "liabilities in 2019?", sources)  # type: ignore[misc]
    assert text == ("Answer: 14.81% [1]\nCalculation: 529 / 3,571 * 100\nFrom the table of source [1]: rows "
                    '"Warranty reserve" and "Total accrued liabilities", column "2019".')
    assert evidence.quote.startswith("| Warranty reserve") and evidence.quote.endswith("| 3,000 |")
    item = QAItem("t:1", "tatqa", "q", "14.81", "test", answer_type="arithmetic",
                  metadata={"answer_raw": 14.81, "scale": "percent"})
    assert score_item(item, text, None, Config().evaluation).correct
