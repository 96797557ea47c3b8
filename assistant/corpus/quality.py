"""Text-quality measures that the data check (`assistant.corpus.check`) puts together: near duplicates,
repeated n-grams, garbled text and misspellings against a corpus's own vocabulary.

    from assistant.corpus.quality import garble_reasons, misspellings, repeated_share, similar_pairs
    repeated_share("the cat sat the cat sat the cat sat".split())       # 0.57: 4 of 7 trigrams seen before
    garble_reasons("Patients were treat- ment naive")                   # ['hyphen_break']
    similar_pairs([frozenset("ab"), frozenset("abc")], threshold=0.6)    # [(1, 0, 0.66...)]

Pure functions over strings, word lists and counts; nothing here reads a file or loads a model.
Tests: tests/corpus/test_check.py.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

# ------------------------------------------------------------------ near duplicates
SHINGLE = 3  # documents are compared as sets of word trigrams
SAMPLE = 4  # ... of which one in SAMPLE is kept (by a fixed hash), as MinHash-style sampling does


def shingles(tokens: Sequence[str], cache: dict[str, int] | None = None) -> frozenset[int]:
    """A document's word trigrams (from its `words`), hashed, one in SAMPLE kept.

    Words hash with crc32 (the same in every run, unlike `hash`; `cache` keeps them across documents)
    and trigrams combine their words' hashes. Sampling by hash keeps the same trigrams of two documents,
    so their Jaccard similarity is estimated without bias with a quarter of the memory; a text with
    fewer than 8 kept keeps all of them.
    """
    cache = {} if cache is None else cache
    ids = [cache.get(w) or cache.setdefault(w, zlib.crc32(w.encode("utf-8")) + 1) for w in tokens]
    if len(ids) < SHINGLE:
        return frozenset([sum(ids)]) if ids else frozenset()
    grams = {(a * 1_000_003 + b) * 1_000_033 + c for a, b, c in zip(ids, ids[1:], ids[2:], strict=False)}
    kept = frozenset(g for g in grams if g % SAMPLE == 0)
    return kept if len(kept) >= 8 else frozenset(grams)


def similar_pairs(
    sets: Sequence[frozenset[Any]], threshold: float, *, weighted: bool = True
) -> list[tuple[int, int, float]]:
    """(i, j, similarity) for every set i that has an earlier set j (j < i) with Jaccard similarity at
    least `threshold`; j is the most similar one. `weighted`: each feature weighs its IDF over `sets`
    (questions: the template words of "What are the symptoms of X ?" weigh little, X a lot); else 1.

    The same measure and prefix filter as the leakage check (`corpus.leakage.find_leaks`), as a
    self-join: each set is compared with the earlier ones that share one of its rarest features, which a
    pair at the threshold must share, so no pair is missed and 17k documents take seconds.
    """
    import numpy as np

    df: Counter[object] = Counter()
    for s in sets:
        df.update(s)
    n = len(sets)
    idf = {f: (math.log((n + 1) / (c + 1)) + 1.0 if weighted else 1.0) for f, c in df.items()}
    postings: dict[object, list[int]] = defaultdict(list)
    weights = np.zeros(n)
    out: list[tuple[int, int, float]] = []
    for i, s in enumerate(sets):
        w = sum(idf[f] for f in s) if weighted else float(len(s))
        weights[i] = w
        # Any order of the features keeps the guarantee; the rarest first keeps the candidates few.
        budget = (1.0 - threshold) * w - sum(idf[f] for f in s if f not in postings)
        shared: Counter[int] = Counter()  # candidate -> weight it shares with the prefix
        taken = 0.0
        for f in sorted((f for f in s if f in postings), key=df.__getitem__):
            if budget < 0:
                break
            if weighted:
                for j in postings[f]:
                    shared[j] += idf[f]  # type: ignore[assignment]
            else:
                shared.update(postings[f])
            budget -= idf[f]
            taken += idf[f]
        if shared:
            js = np.fromiter(shared.keys(), dtype=np.int64, count=len(shared))
            upper = np.fromiter(shared.values(), dtype=float, count=len(shared)) + (w - taken)
            wj = weights[js]
            # the sizes alone, or what the prefix shares plus all the rest, cannot reach the threshold
            keep = (np.minimum(w, wj) >= threshold * np.maximum(w, wj)) & (upper >= threshold / (1 + threshold) * (w + wj))
            js = np.sort(js[keep])
            common = [s & sets[j] for j in js.tolist()]
            inter = np.array([sum(idf[f] for f in c) if weighted else len(c) for c in common], dtype=float)
            sims = inter / np.maximum(w + weights[js] - inter, 1e-12)
            if len(sims) and sims.max() >= threshold:
                k = int(np.argmax(sims))  # the first of the most similar: the earliest
                out.append((i, int(js[k]), round(float(sims[k]), 4)))
        for f in s:
            postings[f].append(i)
    return out


# ------------------------------------------------------------------ repetition
REPEAT_N = 3
MIN_REPEAT_WORDS = 30  # shorter texts are not measured: a few repeated words say nothing


def repeated_share(tokens: Sequence[str], n: int = REPEAT_N) -> float:
    """Share of the text's word n-grams that occurred earlier in the same text (0: none repeats)."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


# ------------------------------------------------------------------ garbled text
# "treat- ment", "hospital-\nized": a word cut at a line end, its halves kept apart. Suspended hyphens
# ("pre- and post-operative", "low- to moderate-risk") are English, not breaks.
HYPHEN_BREAK = re.compile(r"\b([A-Za-z]{2,})-(?:[ \t]+|[ \t]*\n[ \t]*)([a-z]{2,})\b")
SUSPENDED = frozenset({"and", "or", "to", "nor", "versus", "vs", "than", "but", "as", "with", "through", "into", "of"})
PUNCTUATION = ".,;:!?'\"()[]{}-/%$&+*=<>#@|_~^°±×·•…–—‘’“”€£¥§©®™\\"
MIN_GARBLE_CHARS = 20
# Counted with regular expressions and str methods, not character loops: the medical corpus is 20 MB.
_PUNCT = re.compile(r"[^\w\s]|_")  # every character that is neither a letter, a digit nor a space
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_SINGLE = re.compile(r"\s[^\W\daAI_](?=\s)")  # a one-letter word other than "a" and "I"


def hyphen_breaks(text: str) -> list[str]:
    """The hyphenation breaks of `text`: "treat- ment" (a space or line break after the hyphen)."""
    if "- " not in text and "-\n" not in text and "-\t" not in text:
        return []  # the common case, found at C speed
    return [m.group(0) for m in HYPHEN_BREAK.finditer(text) if m.group(2).lower() not in SUSPENDED]


def garble_reasons(text: str) -> list[str]:
    """Why `text` looks garbled (empty list: it does not):

    - `control`: U+FFFD (a decoding failure) or control characters other than tab and newline;
    - `symbols`: over 5% of its non-space characters are neither letters, digits nor common punctuation
      (OCR noise such as "■", "¬", stray accents);
    - `non_letters`: letters and digits are under half of its non-space characters (digits count, so
      that a financial table is not "garbled");
    - `spaced_letters`: over 30% of its words are single letters ("t h e   p a t i e n t");
    - `hyphen_break`: a word broken at a line end ("treat- ment").
    """
    reasons = []
    if _CONTROL.search(text):
        reasons.append("control")
    tokens = text.split()
    n_chars = sum(map(len, tokens))
    if n_chars >= MIN_GARBLE_CHARS:
        other = _PUNCT.findall(text)
        if sum(c not in PUNCTUATION for c in other) > 0.05 * n_chars:
            reasons.append("symbols")
        if len(other) > 0.5 * n_chars:
            reasons.append("non_letters")
        if len(tokens) >= 10 and len(_SINGLE.findall(f" {text} ")) > 0.3 * len(tokens):
            reasons.append("spaced_letters")
    if hyphen_breaks(text):
        reasons.append("hyphen_break")
    return reasons


# ------------------------------------------------------------------ misspellings
MIN_WORD = 5  # shorter words are too often abbreviations, and one edit from too many others
FREQUENT = 20  # a word seen this often is taken as correctly spelt


def vocabulary(texts: Iterable[Sequence[str]]) -> Counter[str]:
    """How often each alphabetic word occurs in `texts` (each given as its `words`)."""
    counts: Counter[str] = Counter()
    for tokens in texts:
        counts.update(tokens)  # counted at C speed, then the words with a digit or "_" dropped
    return Counter({w: c for w, c in counts.items() if w.isalpha()})


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def within_one_edit(a: str, b: str) -> bool:
    """Whether `a` and `b` differ by one insertion, deletion, substitution or adjacent transposition."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _other_ending(a: str, b: str) -> bool:
    """"dose" / "doses", "described" / "describes", "serosa" / "serosal": the same stem with another last
    letter is an inflection or another form of the word, not a misspelling."""
    return a[:-1] == b[:-1] or a[:-1] == b or b[:-1] == a


def misspellings(counts: Counter[str], *, frequent: int = FREQUENT, min_len: int = MIN_WORD) -> dict[str, str]:
    """Words seen once that are one edit (see `within_one_edit`) from a word seen at least `frequent` times,
    with the same first letter and not only another last letter ("doses" / "dosed"): rare word -> the
    most frequent such word. "wheter" -> "whether", "symtpoms" -> "symptoms"; a rare real word next to a
    common one ("motility" / "mobility") is counted too, so read it as a rate with examples, not a list.

    Candidates come from a symmetric-delete index of the frequent words (each with one letter deleted),
    then the edit distance is verified, so the cost grows with the vocabulary, not its square.
    """
    common = {w for w, c in counts.items() if c >= frequent and len(w) >= min_len - 1}
    index: dict[str, list[str]] = defaultdict(list)
    for w in common:
        for d in _deletes(w):
            index[d].append(w)
    found: dict[str, str] = {}
    for word, c in counts.items():
        if c != 1 or len(word) < min_len or word in common:
            continue
        candidates = set(index.get(word, ()))
        for d in _deletes(word):
            if d in common:
                candidates.add(d)
            candidates.update(index.get(d, ()))
        near = [w for w in candidates if w[0] == word[0] and within_one_edit(word, w) and not _other_ending(word, w)]
        if near:
            found[word] = max(near, key=lambda w: (counts[w], w))
    return found


__all__ = [
    "garble_reasons",
    "hyphen_breaks",
    "misspellings",
    "repeated_share",
    "shingles",
    "similar_pairs",
    "vocabulary",
    "within_one_edit",
]
