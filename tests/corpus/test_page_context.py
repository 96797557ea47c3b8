"""What a PDF page is about, from its text alone (assistant.corpus.loaders.page_context)."""

from __future__ import annotations

from assistant.corpus.loaders.page_context import describe, heading, items, page_contexts, registrant, units

META = {"company": "ACME", "year": 2022, "form": "10K"}
COVER = """UNITED STATES SECURITIES AND EXCHANGE COMMISSION
FORM 10-K
ACME WIDGETS CORPORATION
(Exact name of registrant as specified in its charter)
Delaware  12-3456789"""
CONTENTS = """Table of Contents
Item 1.  Business  3
Item 7.  Management's Discussion and Analysis  20
Item 8.  Financial Statements and Supplementary Data  40"""
MDA = """Table of Contents
Item 7. Management's Discussion and Analysis
Results of Operations
Revenue rose in every segment as deliveries recovered from the year before."""
MDA_CONTINUED = """Segment Results
(Dollars in millions)  2022  2021
Widgets  1,200  1,100
We expect demand to keep growing, as it did in the second half of the year."""
STATEMENTS = """ITEM 8. FINANCIAL STATEMENTS AND SUPPLEMENTARY DATA
Consolidated Statements of Operations
(In millions, except per share data)  2022  2021
Total revenues  5,000  4,400"""


def test_the_parts_of_a_page() -> None:
    assert registrant([COVER]) == "ACME WIDGETS CORPORATION"
    assert registrant(["Table of Contents\n\nTHE ACME COMPANY\nIndex to the Form 10-K"], "ACME") == "THE ACME COMPANY"
    assert registrant(["Acme Beauty Announces Fourth Quarter Results"], "ACMEBEAUTY") == "Acme Beauty"  # cut there
    assert registrant(["No name here at all."], "ACME") == ""
    assert describe(META) == "ACME, Form 10-K annual report, fiscal 2022"
    assert describe({"company": "ULTA_BEAUTY", "year": 2023, "quarter": "Q4", "form": "EARNINGS"}, "Ulta Beauty") == \
        "Ulta Beauty, earnings release, Q4 2023"
    assert describe({}) == ""
    assert heading(MDA) == "Results of Operations"  # the running head skipped, and the Item (the part)
    assert heading(MDA_CONTINUED) == "Segment Results"
    assert heading("We expect demand to keep growing, as it did in the second half.") == ""
    assert items(MDA) == ["Item 7. Management's Discussion and Analysis"]
    assert items("As discussed in Item 7, revenue grew.") == []  # a cross reference, not a heading
    assert units(STATEMENTS) == "(in millions)" and units(MDA) == ""


def test_contexts_carry_the_part_over_pages_and_skip_the_contents() -> None:
    got = page_contexts([COVER, CONTENTS, MDA, MDA_CONTINUED, None, STATEMENTS], META)
    head = "ACME WIDGETS CORPORATION, Form 10-K annual report, fiscal 2022"
    assert got[0].startswith(head) and got[1].startswith(head)
    assert "Item" not in got[1].removeprefix(head)  # a table of contents names every Item: no part yet
    assert got[3] == f"{head}. Item 7. Management's Discussion and Analysis. Segment Results. (in millions)"
    assert got[4] == f"{head}. Item 7. Management's Discussion and Analysis"  # an unreadable page: the part only
    assert got[5].startswith(f"{head}. ITEM 8. FINANCIAL STATEMENTS AND SUPPLEMENTARY DATA")
    assert got[5].endswith("(in millions)")
