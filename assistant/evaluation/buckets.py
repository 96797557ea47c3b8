"""Error analysis: put every wrong answer of an evaluation run into one bucket that says why it is wrong.

    from assistant.evaluation.buckets import BUCKETS, classify, count_buckets
    classify(record)          # -> "" for a correct record, else a key of BUCKETS
    count_buckets(records)    # -> {"refusal": 3, "wrong": 12, ...} in BUCKETS order, zero counts left out

The buckets are tried in the order of `BUCKETS` and the first that matches wins: a strategy that raised
is an "error" whatever its text, a refusal that also rambles is a "refusal", and the retrieval buckets
only describe answers that were otherwise well formed. Everything here is a pure function of a `Record`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from assistant.evaluation.store import Record
from assistant.text import words

BUCKETS: dict[str, str] = {
    "error": "the strategy raised an exception on this question",
    "refusal": "the answer declines to answer (I cannot / I don't know / not enough information)",
    "repetitive": "the text repeats itself (many duplicated 4-grams, or one sentence 3+ times)",
    "too_long": "generation stopped at the token limit (finish_reason 'length')",
    "format": "the answer could not be parsed and no option was scored",
    "retrieval_miss": "RAG: none of the gold documents was retrieved",
    "wrong_with_gold": "RAG: a gold document was retrieved, the answer is still wrong",
    "wrong": "a well-formed answer that is wrong",
}

# Phrases a small instruct model uses to decline; matched case-insensitively anywhere in the answer.
_REFUSALS = [
    r"\bI (?:cannot|can ?not|can'?t|am unable to|'m unable to|am not able to)\b",
    r"\bI(?: am|'m) (?:sorry|afraid)\b",
    r"\bI do(?: not|n'?t) (?:know|have (?:enough|sufficient|access))\b",
    r"\bnot enough (?:information|context|data|evidence)\b",
    r"\b(?:insufficient|no) (?:information|context|evidence) (?:is |was )?(?:provided|given|available)\b",
    r"\bthe (?:sources?|context|documents?|passages?|text) (?:provided )?(?:does|do) not (?:contain|mention|"
    r"provide|include|say)\b",
    r"\bcan ?not be (?:determined|answered)\b",
    r"\bunable to (?:determine|answer)\b",
    r"\bas an AI\b",
]
_REFUSAL = re.compile("|".join(f"(?:{p})" for p in _REFUSALS), re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?\n]+")

# Repetition thresholds: short answers ("yes yes yes") are judged by repeated sentences only, because
# 4-gram statistics over a handful of words say nothing.
MIN_WORDS = 12
MAX_DUPLICATE_SHARE = 0.3
MAX_SENTENCE_REPEATS = 3


def is_refusal(text: str) -> bool:
    """True when the answer declines to answer rather than answering."""
    return bool(_REFUSAL.search(text))


def duplicate_ngram_share(text: str, n: int = 4) -> float:
    """Share of the word n-grams of `text` that repeat an earlier one (0.0 for fewer than n words)."""
    found = words(text)
    grams = [tuple(found[i:i + n]) for i in range(len(found) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def is_repetitive(text: str) -> bool:
    """True when the text loops: > 30% duplicated word 4-grams (with >= 12 words), or one sentence 3+ times."""
    if len(words(text)) >= MIN_WORDS and duplicate_ngram_share(text) > MAX_DUPLICATE_SHARE:
        return True
    sentences = [" ".join(words(s)) for s in _SENTENCE_END.split(text)]
    counts = Counter(s for s in sentences if s)
    return bool(counts) and max(counts.values()) >= MAX_SENTENCE_REPEATS


def uses_retrieval(record: Record) -> bool:
    """Whether the record comes from a retrieval strategy (it retrieved, or says it would have)."""
    return bool(record.retrieved_ids) or bool(record.extra.get("uses_retrieval"))


def gold_retrieved(record: Record) -> bool | None:
    """Whether any gold document is among the retrieved ones; None when there is nothing to judge."""
    if not record.gold_ids or not uses_retrieval(record):
        return None
    return bool(set(record.gold_ids) & set(record.retrieved_ids))


def classify(record: Record) -> str:
    """The bucket (a key of BUCKETS) of a wrong record; "" for a correct one."""
    if record.error:
        return "error"
    if record.correct:
        return ""
    # A label scored by option likelihood was judged on the options, not on the generated text: how the
    # text was cut or worded is not why it is wrong.
    judged_on_text = record.scored is None
    if judged_on_text and is_refusal(record.answer):
        return "refusal"
    if judged_on_text and is_repetitive(record.answer):
        return "repetitive"
    if judged_on_text and record.finish_reason == "length":
        return "too_long"
    if judged_on_text and record.parsed is None:
        return "format"
    hit = gold_retrieved(record)
    if hit is False:
        return "retrieval_miss"
    if hit is True:
        return "wrong_with_gold"
    return "wrong"


def count_buckets(records: Iterable[Record]) -> dict[str, int]:
    """Wrong records per bucket, in BUCKETS order; buckets with no record are left out."""
    counts = Counter(classify(r) for r in records)
    return {name: counts[name] for name in BUCKETS if counts[name]}


__all__ = [
    "BUCKETS",
    "classify",
    "count_buckets",
    "duplicate_ngram_share",
    "gold_retrieved",
    "is_refusal",
    "is_repetitive",
    "uses_retrieval",
]
