"""The safe arithmetic evaluator accepts derivations and nothing else; derivations are found in answers."""

from __future__ import annotations

import pytest

from assistant.evaluation.arithmetic import ArithmeticParseError, evaluate, extract_derivation


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("(1496.5 - 1202.9) / 1202.9", (1496.5 - 1202.9) / 1202.9),
        ("1,234 + 56", 1290.0),
        ("$1,234.5 - $34.5", 1200.0),
        ("1,000 * 5%", 50.0),  # a trailing % is /100
        ("-3 * -(2 + 1)", 9.0),
        ("2 + 3 * 4 - 6 / 2", 11.0),  # precedence
        ("8 / 4 / 2", 1.0),  # left associative
        (".5 + 1", 1.5),
        ("(12 − 2) × 3 ÷ 5", 6.0),  # typographic minus, times and divide
        ("  42  ", 42.0),
    ],
)
def test_evaluate_accepts_derivations(expression: str, value: float) -> None:
    assert evaluate(expression) == pytest.approx(value)


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os')",
        "2**10",
        "abs(3)",
        "a+b",
        "(1).real",
        "1/0",
        "1 / (2 - 2)",
        "",
        "   ",
        "1,23",  # malformed thousands separator
        "1 2",
        "(1 + 2",
        "1 + 2)",
        "5 % 3",  # no modulo
        "+5",  # no unary plus
        "1e3",
        "9" * 400,  # overflows to infinity
        "(" * 60 + "1" + ")" * 60,  # nesting deeper than 50
        "-" * 60 + "1",
        "1+" * 300 + "1",  # over 500 characters
    ],
)
def test_evaluate_rejects_everything_else(expression: str) -> None:
    with pytest.raises(ArithmeticParseError):
        evaluate(expression)


def test_nesting_up_to_the_limit_is_fine() -> None:
    assert evaluate("(" * 50 + "1" + ")" * 50) == 1.0


def test_parse_error_is_a_value_error() -> None:
    assert issubclass(ArithmeticParseError, ValueError)


@pytest.mark.parametrize(
    ("text", "derivation"),
    [
        ("Answer: 24.41%\nDerivation: (1496.5 - 1202.9) / 1202.9", "(1496.5 - 1202.9) / 1202.9"),
        ("The change is (1496.5 - 1202.9) / 1202.9 = 0.244.", "(1496.5 - 1202.9) / 1202.9"),
        ("2019: 1,234 + 56", "1,234 + 56"),
        ("The answer is 12.5% (calculated as (10 - 8) / 16).", "(10 - 8) / 16"),
        ("Derivation: 3 + 4\nSo the total is 7, i.e. 5 + 2 = 7", "3 + 4"),  # the labelled line wins
        ("First 1 + 1.\nThen 2 * 3.", "2 * 3"),  # else the last one
        ("Revenue in 2019 was 5.", None),  # bare numbers are no derivation
        ("The answer is yes.", None),
        ("", None),
    ],
)
def test_extract_derivation(text: str, derivation: str | None) -> None:
    found = extract_derivation(text)
    assert found == derivation
    if found is not None:
        evaluate(found)


def test_labelled_only_ignores_prose_ranges() -> None:
    assert extract_derivation("Revenue grew from 2017-2019.", labelled_only=True) is None
    assert extract_derivation("Revenue grew.\nCalculation: (120 - 100) / 100", labelled_only=True) == "(120 - 100) / 100"


def test_labelled_only_never_falls_back_to_prose() -> None:
    assert extract_derivation("Calculation: see the table\nIt rose from 2017-2019.", labelled_only=True) is None
