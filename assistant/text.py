"""Splitting text into words: the one tokenizer the package's word-level checks share.

    from assistant.text import words, terms
    words("Non-small-cell: 3.5% of cases")   # ['non', 'small', 'cell', '3', '5', 'of', 'cases']
    terms("Non-small-cell: 3.5% of cases")   # ['non-small-cell', '3.5%', 'of', 'cases']

`words` (lower-cased runs of letters and digits) serves duplicate and repetition checks, question
leakage, hashing embeddings and question shapes. `terms` keeps a word's inner hyphens, decimal points
and a trailing percent sign, so that "3.5%" in an answer matches "3.5%" in a source and not any "3" and
"5": citation attribution compares answer and source this way. Models' own tokenizers and BM25's
stemming tokenizer are different things and live with them.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")
_TERM = re.compile(r"[a-z0-9][a-z0-9\-\.%]*[a-z0-9%]|[a-z0-9]")


def words(text: str) -> list[str]:
    """The lower-cased words of `text` (runs of letters, digits and underscores, any script)."""
    return _WORD.findall(text.lower())


def squash(text: str) -> str:
    """`text` as lower-case ASCII letters and digits only: how names are compared ("Johnson & Johnson's"
    against the file name's JOHNSON_JOHNSON, "THE BOEING COMPANY" against BOEING)."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def terms(text: str) -> list[str]:
    """The lower-cased terms of `text`: ASCII words that keep inner '-', '.' and a final '%'."""
    return _TERM.findall(text.lower())


__all__ = ["squash", "terms", "words"]
