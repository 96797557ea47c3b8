"""A safe evaluator for the arithmetic derivations models write ("(1496.5 - 1202.9) / 1202.9"), and a
finder for such a derivation inside a model's answer. Never eval/exec/compile: a tokenizer and a
recursive-descent parser over a grammar that has nothing but numbers and + - * / ( ).

    from assistant.evaluation.arithmetic import evaluate, extract_derivation
    evaluate("(1496.5 - 1202.9) / 1202.9")                                    # -> 0.24408...
    extract_derivation("Answer: 24.41%\\nDerivation: (1496.5 - 1202.9) / 1202.9")  # -> "(1496.5 - 1202.9) / 1202.9"

Grammar:
    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := "-" unary | atom
    atom   := NUMBER | "(" expr ")"
    NUMBER := ["$"] digits [("," three digits)*] ["." digits] ["%"]   |   ["$"] "." digits ["%"]
A trailing "%" divides that number by 100 ("12%" is 0.12, so "50% * 200" is 100), which is how a
derivation like "1,000 * 5%" reads. Thousands separators must be well formed ("1,234", not "1,23").
"−", "×" and "÷" are read as "-", "*" and "/". Anything else (names, calls, "**", attributes, other
characters) is an ArithmeticParseError, as are division by zero, a non-finite value, input over 500
characters and nesting deeper than 50.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable

MAX_LENGTH = 500
MAX_DEPTH = 50

_ALIASES = str.maketrans({"−": "-", "×": "*", "÷": "/"})
_TOKEN = re.compile(
    r"\s*(?:(?P<num>\$?\s*(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)%?)|(?P<op>[-+*/()]))"
)


class ArithmeticParseError(ValueError):
    """The text is not a plain arithmetic expression this module evaluates, or it has no finite value."""


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _describe(token: str | float) -> str:
    return f"number {token:g}" if isinstance(token, float) else repr(token)


def _tokenize(expression: str) -> list[str | float]:
    """Numbers as floats, operators and parentheses as one-character strings."""
    tokens: list[str | float] = []
    pos, text = 0, expression.translate(_ALIASES).rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ArithmeticParseError(f"unexpected {text[pos:].lstrip()[:20]!r} in {_short(expression)}")
        if m.group("num") is not None:
            literal = m.group("num")
            value = float(literal.strip("$% ").replace(",", ""))
            tokens.append(value / 100 if literal.endswith("%") else value)
        else:
            tokens.append(m.group("op"))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str | float], expression: str) -> None:
        self.tokens, self.pos, self.depth, self.expression = tokens, 0, 0, expression

    def _peek(self) -> str | float | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _fail(self, why: str) -> ArithmeticParseError:
        return ArithmeticParseError(f"{why} in {_short(self.expression)}")

    def _checked(self, value: float) -> float:
        if not math.isfinite(value):
            raise self._fail("a non-finite value")
        return value

    def parse(self) -> float:
        value = self.expr()
        if self.pos != len(self.tokens):
            raise self._fail(f"unexpected {_describe(self.tokens[self.pos])}")
        return value

    def expr(self) -> float:
        value = self.term()
        while (op := self._peek()) in ("+", "-"):
            self.pos += 1
            rhs = self.term()
            value = self._checked(value + rhs if op == "+" else value - rhs)
        return value

    def term(self) -> float:
        value = self.unary()
        while (op := self._peek()) in ("*", "/"):
            self.pos += 1
            rhs = self.unary()
            if op == "/" and rhs == 0:
                raise self._fail("division by zero")
            value = self._checked(value * rhs if op == "*" else value / rhs)
        return value

    def unary(self) -> float:
        if self._peek() == "-":
            self.pos += 1
            return -self._nested(self.unary)
        return self.atom()

    def atom(self) -> float:
        token = self._peek()
        self.pos += 1
        if isinstance(token, float):
            return self._checked(token)
        if token == "(":
            value = self._nested(self.expr)
            if self._peek() != ")":
                raise self._fail("an unclosed '('")
            self.pos += 1
            return value
        raise self._fail("a missing number" if token is None else f"unexpected {_describe(token)}")

    def _nested(self, rule: Callable[[], float]) -> float:
        # parentheses and unary minus are the only ways to recurse: bound them, not the call stack
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._fail(f"nesting deeper than {MAX_DEPTH}")
        value = rule()
        self.depth -= 1
        return value


def evaluate(expression: str) -> float:
    """The value of a plain arithmetic expression (see the module docstring for what is accepted);
    ArithmeticParseError for anything else."""
    if not isinstance(expression, str) or not expression.strip():
        raise ArithmeticParseError("an empty expression")
    if len(expression) > MAX_LENGTH:
        raise ArithmeticParseError(f"expression of {len(expression)} characters (at most {MAX_LENGTH})")
    return _Parser(_tokenize(expression), expression).parse()


def _is_derivation(candidate: str) -> bool:
    """Evaluates, and has at least one binary operator (a bare number such as a year is no derivation)."""
    try:
        tokens = _tokenize(candidate)
        evaluate(candidate)
    except ArithmeticParseError:
        return False
    return any(
        t in ("+", "-", "*", "/") and (isinstance(prev, float) or prev == ")")
        for prev, t in itertools.pairwise(tokens)
    )


_RUN = re.compile(r"[\d$.,%()+\-*/\s−×÷]+")
_LABEL = re.compile(r"^\W*(?:derivation|calculation|formula|computation)s?\b", re.I)


def _trim(run: str) -> str:
    """A run of arithmetic characters cut out of prose, without sentence punctuation or unbalanced
    parentheses at its ends: " (10 - 8) / 16)." -> "(10 - 8) / 16"."""
    run = run.strip().rstrip(".,").strip()
    while run.endswith(")") and run.count(")") > run.count("("):
        run = run[:-1].rstrip()
    while run.startswith("(") and run.count("(") > run.count(")"):
        run = run[1:].lstrip()
    return run.lstrip(",").strip()


def _last_derivation(line: str) -> str | None:
    found = None
    for m in _RUN.finditer(line):
        candidate = _trim(m.group(0))
        if len(candidate) <= MAX_LENGTH and _is_derivation(candidate):
            found = candidate
    return found


def extract_derivation(text: str, *, labelled_only: bool = False) -> str | None:
    """The arithmetic a model answer shows, as a string `evaluate` accepts; None if it shows none.

    The last line labelled "Derivation:" (or "Calculation:", "Formula:") wins; otherwise the last
    arithmetic segment anywhere, scanning lines from the end. Within a line, segments are maximal runs
    of numbers, operators and parentheses, so prose and labels fall away ("2019: 1,234 + 56" gives
    "1,234 + 56") and "expr = result" gives "expr" (the bare result has no operator).
    With `labelled_only`, only labelled lines count: prose such as "from 2017-2019" is no calculation.
    """
    lines = text.splitlines()
    labelled = [line for line in lines if _LABEL.match(line)]
    if labelled_only and not labelled:
        return None
    for line in reversed(labelled or lines):
        if (found := _last_derivation(_LABEL.sub("", line, count=1))) is not None:
            return found
    if labelled and not labelled_only:
        for line in reversed(lines):
            if (found := _last_derivation(line)) is not None:
                return found
    return None
