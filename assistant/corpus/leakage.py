"""The leakage check: train questions that duplicate or nearly duplicate a test question.

    from assistant.corpus.leakage import drop_leaks, find_leaks
    kept, leaks = drop_leaks(train_items, test_items, threshold=0.8)   # what `train sft` trains on

Pure Python over QA items. It lives with the corpus (not with training) because the data check
(`assistant data check`, corpus.check) and question synthesis use it too; `assistant.training.data`
re-exports it for the training entry points. Tests: tests/training/test_data.py.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.text import words as text_words
from assistant.types import QAItem


def question_words(question: str) -> frozenset[str]:
    return frozenset(text_words(question))


def normalized_question(question: str) -> str:
    return " ".join(text_words(question))


@dataclass(frozen=True)
class Leak:
    train_id: str
    test_id: str
    similarity: float  # IDF-weighted word Jaccard; 1.0 for identical questions after normalization
    train_question: str = ""
    test_question: str = ""


def find_leaks(train: Sequence[QAItem], test: Sequence[QAItem], threshold: float) -> list[Leak]:
    """Train items whose question duplicates or nearly duplicates a test question.

    Similarity is word-set Jaccard weighted by IDF over all questions: in templated questions ("What are
    the symptoms of X ?") the shared template weighs little and the entity a lot, so "Gardner syndrome"
    and "Gardner-Diamond syndrome" differ while case, punctuation and a small rewording do not.
    Candidates come from an inverted index over the test questions: a near duplicate shares at least one
    of a train question's rarest words (they carry most of its weight; as many are taken as guarantee
    it), so a 15k x 2k comparison stays a few seconds.
    """
    exact: dict[str, int] = {}
    words: list[frozenset[str]] = []
    postings: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(test):
        exact.setdefault(normalized_question(item.question), i)
        w = question_words(item.question)
        words.append(w)
        for word in w:
            postings[word].append(i)
    train_words = [question_words(item.question) for item in train]
    df: Counter[str] = Counter()
    for w in (*words, *train_words):
        df.update(w)
    n_docs = len(words) + len(train_words)
    idf = {word: math.log((n_docs + 1) / (count + 1)) + 1.0 for word, count in df.items()}

    def weight(ws: frozenset[str]) -> float:
        return sum(idf[x] for x in ws)

    test_weights = [weight(w) for w in words]
    leaks: list[Leak] = []
    for item, w in zip(train, train_words, strict=True):
        hit = exact.get(normalized_question(item.question))
        if hit is not None:
            leaks.append(Leak(item.id, test[hit].id, 1.0, item.question, test[hit].question))
            continue
        # Prefix filter: the heaviest (rarest) words, until they outweigh what a question at similarity
        # >= threshold may lack ((1 - threshold) of this one's weight, words no test question has
        # included); every such test question shares one of them, so none is missed.
        w_weight = weight(w)
        budget = (1.0 - threshold) * w_weight - sum(idf[x] for x in w if x not in postings)
        rare: list[str] = []
        for x in sorted((x for x in w if x in postings), key=lambda x: (-idf[x], x)):
            if budget < 0:
                break
            rare.append(x)
            budget -= idf[x]
        candidates = {i for x in rare for i in postings[x]}
        best, best_i = 0.0, -1
        for i in candidates:
            inter = weight(w & words[i])
            sim = inter / (w_weight + test_weights[i] - inter) if inter else 0.0
            if sim > best:
                best, best_i = sim, i
        if best_i >= 0 and best >= threshold:
            leaks.append(Leak(item.id, test[best_i].id, round(best, 4), item.question, test[best_i].question))
    return leaks


def drop_leaks(train: Sequence[QAItem], test: Sequence[QAItem], threshold: float) -> tuple[list[QAItem], list[Leak]]:
    leaks = find_leaks(train, test, threshold)
    leaked = {leak.train_id for leak in leaks}
    return [item for item in train if item.id not in leaked], leaks


__all__ = ["Leak", "drop_leaks", "find_leaks", "normalized_question", "question_words"]
