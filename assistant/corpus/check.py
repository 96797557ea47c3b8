"""The data check: a quality report on a domain's prepared QA items and documents, before training.

    assistant data check --domain medical [--corpus pubmedqa] [--strict] [--json]

    from assistant.corpus.check import check_data, estimated_tokens
    report = check_data(train, test, documents, instruction="Answer ...", seq_len=384, tokens=estimated_tokens())
    print(report.summary()); report.failed                # the checks whose share crossed its threshold

Ten checks, each with a count, a total, a few examples and a threshold (the largest share that passes;
`THRESHOLDS`, overridable): exact and near duplicate questions and documents, train/test leakage (the
leakage check `train sft` applies, `corpus.leakage`), SFT examples too long for `seq_len` (and the tokens
that would be cut), repetitive text, garbled text, empty or one-word answers, and misspellings against
the corpus's own vocabulary (`corpus.quality` has the text measures and says how each works).
Pure functions over QA items and documents; the caller passes a token counter (the generation model's
tokenizer, or a labelled estimate). `train sft` / `train cpt` save the report as `data_check.json` in
the adapter folder. Tests: tests/corpus/test_check.py.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.corpus import quality
from assistant.corpus.leakage import find_leaks, normalized_question
from assistant.prompts import target_answer
from assistant.text import words
from assistant.types import Document, QAItem

# the largest share of flagged items (misspellings: of words) that passes
THRESHOLDS: dict[str, float] = {
    "duplicate_questions": 0.02,
    "near_duplicate_questions": 0.10,  # templated questions ("What are the symptoms of X ?") come close
    "duplicate_documents": 0.01,
    "near_duplicate_documents": 0.05,
    "leakage": 0.01,
    "too_long": 0.05,
    "repetitive": 0.02,
    "garbled": 0.01,
    "short_answers": 0.01,
    "misspellings": 0.002,
}
NEAR_DOCUMENTS = 0.8  # word-trigram Jaccard from which two documents are near duplicates
REPEATED = 0.3  # a text whose word trigrams repeat more than this share is repetitive
EXAMPLES = 3
CHARS_PER_TOKEN = 4.0  # SmolLM2's tokenizer: 4.5 characters per token on PubMedQA, 4.8 MedQuAD, 3.3 TAT-QA
ESTIMATED_OVERHEAD = 15  # its chat template adds 5 tokens around each of system, user and assistant
SHORT_TYPES = ("span", "multi-span", "arithmetic", "count")  # a number or a name is a whole answer there


@dataclass(frozen=True)
class TokenCounter:
    """How the too-long check counts tokens: `count` per text, plus the chat template's `overhead`."""

    count: Callable[[Sequence[str]], list[int]]
    overhead: int
    label: str
    exact: bool


def estimated_tokens(reason: str = "") -> TokenCounter:
    """A tokenizer-free estimate: one token per CHARS_PER_TOKEN characters."""
    why = f" ({reason})" if reason else ""
    return TokenCounter(lambda texts: [max(1, round(len(t) / CHARS_PER_TOKEN)) for t in texts], ESTIMATED_OVERHEAD,
                        f"estimated at {CHARS_PER_TOKEN:g} characters per token{why}", exact=False)


def tokenizer_tokens(tokenizer: Any, name: str) -> TokenCounter:
    """Exact counts with a transformers tokenizer; the chat template's overhead measured once."""

    def count(texts: Sequence[str]) -> list[int]:
        out: list[int] = []
        for i in range(0, len(texts), 1000):
            out += [len(ids) for ids in tokenizer(list(texts[i : i + 1000]), add_special_tokens=False)["input_ids"]]
        return out

    parts = ["A", "B", "C"]
    if getattr(tokenizer, "chat_template", None):
        msgs = [{"role": r, "content": c} for r, c in zip(("system", "user", "assistant"), parts, strict=True)]
        rendered = str(tokenizer.apply_chat_template(msgs, tokenize=False))
    else:  # the template-free prompt `train sft` renders, plus the end-of-sequence token
        rendered = "system: A\nuser: B\nassistant: C" + str(tokenizer.eos_token or "")
    overhead = max(0, count([rendered])[0] - sum(count(parts)))
    return TokenCounter(count, overhead, f"exact ({name} tokenizer)", exact=True)


@dataclass(frozen=True)
class DataCheck:
    """One check: `count` of `total` flagged; it fails when their share exceeds `threshold`."""

    name: str
    what: str
    count: int
    total: int
    threshold: float
    examples: tuple[dict[str, Any], ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.total if self.total else 0.0

    @property
    def passed(self) -> bool:
        return self.rate <= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "what": self.what, "count": self.count, "total": self.total,
                "rate": round(self.rate, 6), "threshold": self.threshold, "passed": self.passed,
                "examples": list(self.examples), "details": self.details}

    def line(self) -> str:
        note = self.details.get("note", "")
        return (f"  {'ok  ' if self.passed else 'FAIL'}  {self.name:<25} {self.count:>6} / {self.total:<6} "
                f"({self.rate:.2%}; threshold {self.threshold:.2%})" + (f"  {note}" if note else ""))


@dataclass(frozen=True)
class DataCheckReport:
    domain: str
    corpora: tuple[str, ...]
    n_train: int
    n_test: int
    n_documents: int
    seq_len: int
    tokens: str  # how the too-long check counted tokens
    checks: tuple[DataCheck, ...]
    seconds: float = 0.0

    @property
    def failed(self) -> list[DataCheck]:
        return [c for c in self.checks if not c.passed]

    def check(self, name: str) -> DataCheck:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "corpora": list(self.corpora), "train": self.n_train, "test": self.n_test,
                "documents": self.n_documents, "seq_len": self.seq_len, "tokens": self.tokens,
                "passed": not self.failed, "failed": [c.name for c in self.failed],
                "checks": [c.to_dict() for c in self.checks], "seconds": self.seconds}

    def summary(self, examples: int = 2) -> str:
        """The CLI's report: one line per check, then examples of the ones that flagged something."""
        head = (f"data check: {self.domain} ({', '.join(self.corpora)}): {self.n_train} train / {self.n_test} test "
                f"questions, {self.n_documents} documents; seq_len {self.seq_len}, tokens {self.tokens} "
                f"[{self.seconds:.1f} s]")
        lines = [head, *(c.line() for c in self.checks)]
        for c in self.checks:
            for ex in c.examples[:examples] if c.count else ():
                lines.append(f"  e.g. {c.name}: " + "; ".join(f"{k}={v}" for k, v in ex.items()))
        verdict = "all checks pass" if not self.failed else "thresholds crossed: " + ", ".join(
            f"{c.name} ({c.rate:.2%} > {c.threshold:.2%})" for c in self.failed)
        return "\n".join([*lines, verdict])


def _snip(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _check(name: str, what: str, count: int, total: int, thresholds: dict[str, float],
           examples: Sequence[dict[str, Any]] = (), **details: Any) -> DataCheck:
    return DataCheck(name, what, count, total, thresholds[name], tuple(examples[:EXAMPLES]), details)


# ------------------------------------------------------------------ the checks
def duplicate_questions(items: Sequence[QAItem], threshold: float, th: dict[str, float]) -> list[DataCheck]:
    """Questions equal after normalisation (case, punctuation) to an earlier one, and near duplicates:
    IDF-weighted word Jaccard >= `threshold`, the measure of the leakage check."""
    first: dict[str, QAItem] = {}
    exact = []
    for item in items:
        key = normalized_question(item.question)
        if key in first:
            exact.append((item, first[key]))
        else:
            first[key] = item
    same_answer = sum(a.answer.strip() == b.answer.strip() for a, b in exact)
    ex = [{"id": a.id, "same_as": b.id, "question": _snip(a.question)} for a, b in exact]
    uniques = list(first.values())
    pairs = quality.similar_pairs([frozenset(k.split()) for k in first], threshold)
    near = [{"id": uniques[i].id, "like": uniques[j].id, "similarity": s, "question": _snip(uniques[i].question),
             "other": _snip(uniques[j].question)} for i, j, s in pairs]
    return [
        _check("duplicate_questions", "questions equal to an earlier one after normalisation", len(exact), len(items), th,
               ex, same_answer=same_answer, note=f"{same_answer} with the same answer too" if exact else ""),
        _check("near_duplicate_questions", f"questions with IDF-weighted word Jaccard >= {threshold} to an earlier one",
               len(near), len(uniques), th, near, similarity=threshold),
    ]


def duplicate_documents(docs: Sequence[Document], tokens: dict[str, list[str]], th: dict[str, float]) -> list[DataCheck]:
    """Documents whose words equal an earlier one's, and near duplicates: word-trigram Jaccard >= NEAR_DOCUMENTS."""
    first: dict[str, Document] = {}
    exact = []
    for doc in docs:
        key = " ".join(tokens[doc.text])
        if key in first:
            exact.append((doc, first[key]))
        else:
            first[key] = doc
    uniques = list(first.values())
    cache: dict[str, int] = {}
    pairs = quality.similar_pairs([quality.shingles(tokens[d.text], cache) for d in uniques], NEAR_DOCUMENTS, weighted=False)
    return [
        _check("duplicate_documents", "documents whose text equals an earlier one's", len(exact), len(docs), th,
               [{"id": a.id, "same_as": b.id, "text": _snip(a.text, 60)} for a, b in exact]),
        _check("near_duplicate_documents", f"documents with word-trigram Jaccard >= {NEAR_DOCUMENTS} to an earlier one",
               len(pairs), len(uniques), th,
               [{"id": uniques[i].id, "like": uniques[j].id, "similarity": s} for i, j, s in pairs]),
    ]


def leakage(train: Sequence[QAItem], test: Sequence[QAItem], threshold: float, th: dict[str, float]) -> DataCheck:
    leaks = find_leaks(train, test, threshold)
    test_docs = {d for item in test for d in item.doc_ids}
    shared = sum(bool(test_docs & set(item.doc_ids)) for item in train)
    return _check("leakage", f"train questions duplicating a test question (similarity >= {threshold})", len(leaks),
                  len(train), th, [{"train": x.train_id, "test": x.test_id, "similarity": x.similarity,
                                    "question": _snip(x.train_question)} for x in leaks],
                  train_citing_a_test_document=shared, note="`train sft` drops these" if leaks else "")


def too_long(train: Sequence[QAItem], instruction: str, seq_len: int, tokens: TokenCounter, min_answer_tokens: int,
             th: dict[str, float]) -> DataCheck:
    """SFT examples (instruction, question, target answer, chat template) longer than `seq_len` tokens; `train
    sft` cuts their answer, or drops them when the prompt leaves less than `min_answer_tokens` (as render_sft)."""
    items = [i for i in train if target_answer(i)]
    answers = [target_answer(i) for i in items]
    base = tokens.overhead + (tokens.count([instruction])[0] if instruction else 0)
    q_tokens = tokens.count([i.question for i in items])
    a_tokens = [n + 1 for n in tokens.count(answers)]  # + end of turn
    flagged: list[dict[str, Any]] = []
    cut = dropped = 0
    for item, q, a in zip(items, q_tokens, a_tokens, strict=True):
        prompt = base + q
        if prompt + a <= seq_len:
            continue
        room = seq_len - prompt
        if room < min(min_answer_tokens, a):
            dropped += 1
            lost = a  # the example is dropped: none of its answer trains
        else:
            lost = prompt + a - seq_len
        cut += lost
        flagged.append({"id": item.id, "tokens": prompt + a, "cut": lost, "question": _snip(item.question, 60)})
    flagged.sort(key=lambda e: -e["tokens"])
    return _check("too_long", f"train examples longer than seq_len {seq_len} tokens", len(flagged), len(items), th,
                  flagged, tokens_cut=cut, max_cut=max((e["cut"] for e in flagged), default=0), dropped=dropped,
                  longest=max((base + q + a for q, a in zip(q_tokens, a_tokens, strict=True)), default=0),
                  counted=tokens.label, note=f"{cut:,} tokens would be cut, {dropped} examples dropped" if flagged else "")


Entry = tuple[str, str, str]  # (kind, id, text): a question, an answer or a document


def repetitive(entries: Sequence[Entry], tokens: dict[str, list[str]], th: dict[str, float]) -> DataCheck:
    measured, flagged = 0, list[dict[str, Any]]()
    shares: dict[str, float] = {}
    for kind, id_, text in entries:
        ws = tokens[text]
        if kind == "question" or len(ws) < quality.MIN_REPEAT_WORDS:
            continue
        measured += 1
        share = shares.get(text)
        if share is None:
            share = shares[text] = quality.repeated_share(ws)
        if share > REPEATED:
            flagged.append({"kind": kind, "id": id_, "repeated": round(share, 3), "text": _snip(text, 60)})
    flagged.sort(key=lambda e: -e["repeated"])
    return _check("repetitive", f"answers and documents (>= {quality.MIN_REPEAT_WORDS} words) whose word trigrams "
                  f"repeat over {REPEATED:.0%}", len(flagged), measured, th, flagged)


def garbled(entries: Sequence[Entry], th: dict[str, float]) -> DataCheck:
    flagged, reasons = [], Counter[str]()
    seen: dict[str, list[str]] = {}
    for kind, id_, text in entries:
        why = seen.get(text)
        if why is None:
            why = seen[text] = quality.garble_reasons(text)
        if why:
            reasons.update(why)
            breaks = quality.hyphen_breaks(text)
            flagged.append({"kind": kind, "id": id_, "reasons": ",".join(why), "text": _snip(breaks[0] if breaks else text, 60)})
    return _check("garbled", "questions, answers and documents with OCR noise, control characters, mostly "
                  "symbols, spaced-out letters or hyphenation breaks", len(flagged), len(entries), th, flagged,
                  reasons=dict(sorted(reasons.items())), note=", ".join(f"{n} {r}" for r, n in sorted(reasons.items())))


def short_answers(items: Sequence[QAItem], th: dict[str, float]) -> DataCheck:
    """Empty answers, and one-word answers where a sentence is expected. Closed-label items (answer_type
    "label", e.g. PubMedQA's yes/no/maybe) are whole with one word; they are flagged only when the label is
    not one of their `options`. TAT-QA's span, count and arithmetic answers are whole as a number or name."""
    flagged, kinds = [], Counter[str]()
    for item in items:
        answer = item.answer.strip()
        if not answer:
            why = "empty"
        elif item.answer_type == "label" or item.options:
            if answer.lower() in {o.lower() for o in item.options}:
                continue
            why = "label_not_in_options"
        elif item.answer_type in SHORT_TYPES or len(words(answer[:200])) > 1:  # the start tells
            continue
        else:
            why = "one_word"
        kinds[why] += 1
        flagged.append({"id": item.id, "why": why, "answer": _snip(answer, 40), "question": _snip(item.question, 60)})
    return _check("short_answers", "empty answers, one-word free-text answers, labels outside the options",
                  len(flagged), len(items), th, flagged, reasons=dict(sorted(kinds.items())),
                  note=", ".join(f"{n} {r}" for r, n in sorted(kinds.items())))


def misspelled(entries: Sequence[Entry], tokens: dict[str, list[str]], th: dict[str, float]) -> DataCheck:
    """Words seen once in the corpus one edit from a word seen at least quality.FREQUENT times (see
    quality.misspellings), as a share of the words of at least quality.MIN_WORD letters (each distinct text
    counted once: MedQuAD's answers are also its documents)."""
    counts = quality.vocabulary(tokens.values())
    found = quality.misspellings(counts)
    total = sum(c for w, c in counts.items() if len(w) >= quality.MIN_WORD)
    examples = []
    for word in sorted(found, key=lambda w: (-len(w), w))[:EXAMPLES]:
        where = next((f"{kind} {id_}" for kind, id_, text in entries if word in tokens[text]), "")
        examples.append({"word": word, "likely": found[word], "in": where})
    return _check("misspellings", f"words seen once, one edit from a word seen >= {quality.FREQUENT} times (share "
                  f"of words with >= {quality.MIN_WORD} letters)", len(found), total, th, examples)


def check_data(
    train: Sequence[QAItem],
    test: Sequence[QAItem],
    documents: Sequence[Document],
    *,
    instruction: str,
    seq_len: int,
    tokens: TokenCounter | None = None,
    thresholds: dict[str, float] | None = None,
    leakage_threshold: float = 0.8,
    min_answer_tokens: int = 16,
    domain: str = "",
    corpora: Sequence[str] = (),
) -> DataCheckReport:
    """All checks over a domain's QA items (train and test) and documents."""
    start = time.perf_counter()
    unknown = set(thresholds or {}) - set(THRESHOLDS)
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(sorted(unknown))} (known: {', '.join(THRESHOLDS)})")
    th = {**THRESHOLDS, **(thresholds or {})}
    tokens = tokens or estimated_tokens()
    items = [*train, *test]
    entries: list[Entry] = [("question", i.id, i.question) for i in items]
    entries += [("answer", i.id, target_answer(i)) for i in items]
    entries += [("document", d.id, d.text) for d in documents]
    words_of = {text: words(text) for _, _, text in entries}  # each distinct text split once
    checks = [
        *duplicate_questions(items, leakage_threshold, th),
        *duplicate_documents(documents, words_of, th),
        leakage(train, test, leakage_threshold, th),
        too_long(train, instruction, seq_len, tokens, min_answer_tokens, th),
        repetitive(entries, words_of, th),
        garbled(entries, th),
        short_answers(items, th),
        misspelled(entries, words_of, th),
    ]
    return DataCheckReport(domain=domain, corpora=tuple(corpora), n_train=len(train), n_test=len(test),
                           n_documents=len(documents), seq_len=seq_len, tokens=tokens.label, checks=tuple(checks),
                           seconds=round(time.perf_counter() - start, 2))


__all__ = ["THRESHOLDS", "DataCheck", "DataCheckReport", "TokenCounter", "check_data", "estimated_tokens", "tokenizer_tokens"]
