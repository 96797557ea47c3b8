"""Numbers and years in text, parsed and normalised, and whether an answer's number is the one a source shows.

    from assistant.strategies.numbers import quantities, page_scales, same_quantity
    [q] = quantities("Revenue was $66.6 billion")        # Quantity(value=66.6e9, decimals=1, scale=1e9, ...)
    page = "(Dollars in millions)\\nTotal revenues  66,608  62,286"
    scales = page_scales(page)                            # (1e6,)
    any(same_quantity(q, s, scales) for s in quantities(page))     # True: 66,608 million = 66.6 billion

Pure functions, no model. What a number is: digits with optional thousands commas and decimals, an optional
sign (-5, or (5) as tables write negatives, also around a currency: ($3,547)), an optional currency sign
($, US$, €, £, ¥), an optional scale word (thousand, million, billion, trillion; k, m, mn, bn, b attached
to the digits: $5M) and an optional percent (%, percent, per cent). A year is a bare integer from 1900 to
2100 written without commas, sign, currency, scale or percent. Digits inside words (COVID-19, 10-K, Q4) are
not numbers.

What `same_quantity` tolerates (and nothing else):
- rounding to the shown precision: the two values may differ by half a unit of the last digit shown by
  the less precise of the two ("$66.6 billion" = 66,608 million; "67 billion" = 66,608 million too, but
  "66 billion" is not);
- the scale a page states once for its table ("Dollars in millions", "($ in thousands)", "in billions"):
  a bare source number is read both as written and in each scale its page states; a bare answer number
  (the model dropped the unit) is read both as written and in each scale the source page states;
- a sign: when both write one they must agree; a number written without one also matches its negative,
  since prose says "a loss of 3,547" for "(3,547)";
- percent vs fraction, only where it reads that way: "12%" matches "12%", "12 percent" or a fraction
  written with decimals below one ("0.12"); a bare "12" never matches "12%";
- currency signs are not compared ("$5" = "€5"); per-share figures, ratios and sums the model computed
  are not recomputed (a computed number is unsupported unless a source shows it);
- a year matches the same year only, never an amount of 2,022.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

YEARS = (1900, 2100)
SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12,
          "k": 1e3, "m": 1e6, "mn": 1e6, "mm": 1e6, "b": 1e9, "bn": 1e9}
_CURRENCY = r"US\$|\$|€|£|¥"
_NUMBER = re.compile(
    r"(?<![\w.,])(?<![A-Za-z]-)"  # not inside a word or a number, not "COVID-19"
    r"(?P<open>\()?"
    rf"(?P<sign>[-−–+])?(?:(?P<cur>{_CURRENCY})[ ]?)?(?P<sign2>[-−–])?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<close>\))?"
    r"(?:[ ]?(?P<word>thousand|million|billion|trillion|bn|mn)s?\b|(?P<abbr>mm|k|m|b)(?![A-Za-z]))?"
    r"(?:[ \t]*(?P<pct>%|percent\b|per cent\b))?"
    r"(?P<close2>\))?"
    r"(?!\.?\d|,\d|[A-Za-z]|-[A-Za-z])",  # not "3.5.1", "10-K", "5mg"
    re.IGNORECASE,
)
# "(Dollars in millions, except per share data)", "($ in thousands)", "$ millions", "in billions of dollars"
_PAGE_SCALE = re.compile(r"(?:\bin|\$|\()\s*(?:u\.s\.\s*)?(?:dollars\s+)?(?:\$\s*)?(thousands|millions|billions)\b",
                         re.IGNORECASE)
_CITATION = re.compile(r"\[\d+(?:\s*[,;]\s*\d+)*\]")


@dataclass(frozen=True)
class Quantity:
    """A number as written in a text: where it stands, its value with sign, scale word and percent applied
    (12% -> 12.0 with percent=True) and the precision it was written with."""

    text: str
    start: int
    end: int
    value: float
    decimals: int = 0  # digits after the decimal point, as written
    scale: float = 1.0  # the scale word's multiplier (1: none)
    percent: bool = False
    currency: str = ""
    signed: bool = False  # a sign or parentheses was written
    year: bool = False

    @property
    def tolerance(self) -> float:
        """Half a unit of the last digit shown, in the value's units."""
        return 0.5 * 10.0 ** -self.decimals * self.scale

    @property
    def bare(self) -> bool:
        """Written without a scale word or percent: the page's stated scale may apply."""
        return self.scale == 1.0 and not self.percent and not self.year

    @property
    def kind(self) -> str:
        return "year" if self.year else "number"


def quantities(text: str) -> list[Quantity]:
    """Every number and year in `text`, in order; citation markers ([1], [2, 3]) are not numbers."""
    blanked = _CITATION.sub(lambda m: " " * len(m.group(0)), text)  # keeps the offsets
    out = []
    for m in _NUMBER.finditer(blanked):
        q = _parse(m)
        if q is not None:
            out.append(q)
    return out


def _parse(m: re.Match[str]) -> Quantity | None:
    num, start, end = m.group("num"), m.start(), m.end()
    word = (m.group("word") or m.group("abbr") or "").lower()
    pct = bool(m.group("pct"))
    paren = bool(m.group("open") and (m.group("close") or m.group("close2")))
    if m.group("open") and not paren:  # an ordinary parenthesis opens before the number
        start += 1
    elif m.group("close") and not paren:  # "(see note 5)": the parenthesis closes after the number
        end, word, pct = m.start("close"), "", False
    elif m.group("close2") and not paren:
        end = m.start("close2")
    sign = m.group("sign") or m.group("sign2") or ""
    plain = num.replace(",", "")
    decimals = len(plain.partition(".")[2])
    scale = SCALES.get(word, 1.0)
    currency = m.group("cur") or ""
    value = float(plain)
    if (not decimals and "," not in num and not currency and scale == 1.0 and not pct and not sign
            and len(plain) == 4 and YEARS[0] <= value <= YEARS[1]):  # a year, also "(2022)"
        return Quantity(num, m.start("num"), m.end("num"), value, year=True)
    negative = paren or sign in ("-", "−", "–")
    text = m.string[start:end]
    return Quantity(text, start, end, (-value if negative else value) * scale, decimals, scale, pct, currency,
                    signed=negative or sign == "+")


def claims(text: str, question: str = "") -> list[Quantity]:
    """The numbers and years of an answer worth checking: not a bare integer below 10 (list items, counts
    such as "3 segments"), and not one the question itself states ("in 2022" restated from it)."""
    asked = quantities(question)
    out = []
    for q in quantities(text):
        if q.bare and not q.decimals and not q.currency and abs(q.value) < 10:
            continue
        if any(q.year == a.year and same_quantity(q, a) for a in asked):
            continue
        out.append(q)
    return out


def page_scales(text: str) -> tuple[float, ...]:
    """The scales a page states for its bare numbers ("Dollars in millions" -> 1e6), in order, once each."""
    found = [SCALES[m.group(1).lower().rstrip("s")] for m in _PAGE_SCALE.finditer(text)]
    return tuple(dict.fromkeys(found))


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance + 1e-9 * max(abs(a), abs(b))


def _signs_agree(a: Quantity, s: Quantity, a_value: float, s_value: float) -> tuple[float, float]:
    """The values to compare: signed when both wrote a sign, magnitudes otherwise."""
    if a.signed and s.signed:
        return a_value, s_value
    return abs(a_value), abs(s_value)


def same_quantity(a: Quantity, s: Quantity, scales: Sequence[float] = ()) -> bool:
    """Whether answer quantity `a` is source quantity `s`, `scales` being what the source's page states
    for its bare numbers (see page_scales). The tolerances are the module docstring's."""
    if a.year or s.year:
        return a.year and s.year and a.value == s.value
    tolerance = max(a.tolerance, s.tolerance)
    if a.percent or s.percent:
        if a.percent and s.percent:
            x, y = _signs_agree(a, s, a.value, s.value)
            return _close(x, y, tolerance)
        pct, frac = (a, s) if a.percent else (s, a)
        if frac.decimals == 0 or abs(frac.value) >= 1 or frac.currency or frac.scale != 1.0:
            return False  # only a fraction written with decimals reads as a share
        x, y = _signs_agree(a, s, pct.value, frac.value * 100)
        return _close(x, y, max(pct.tolerance, frac.tolerance * 100))
    pairs = [(a.value, s.value, tolerance)]
    for m in scales:
        if s.bare:
            pairs.append((a.value, s.value * m, max(a.tolerance, s.tolerance * m)))
        if a.bare:
            pairs.append((a.value * m, s.value, max(a.tolerance * m, s.tolerance)))
    for x, y, tol in pairs:
        x, y = _signs_agree(a, s, x, y)
        if _close(x, y, tol):
            return True
    return False


def describe(q: Quantity, scales: Sequence[float] = ()) -> str:
    """How a source writes a quantity, with its page's scale: "66,608 (in millions)"."""
    if q.bare and scales:
        names = {v: k for k, v in SCALES.items() if len(k) > 2}
        return f"{q.text} (in {names.get(scales[0], 'units')}s)"
    return q.text


def magnitude(value: float) -> str:
    """A compact reading of a value for messages: 66608000000.0 -> '66.6 billion'."""
    for name, mult in (("trillion", 1e12), ("billion", 1e9), ("million", 1e6)):
        if abs(value) >= mult:
            return f"{value / mult:.4g} {name}"
    return f"{value:,.4g}" if not math.isclose(value, round(value)) else f"{round(value):,}"


__all__ = ["SCALES", "Quantity", "claims", "describe", "magnitude", "page_scales", "quantities", "same_quantity"]
