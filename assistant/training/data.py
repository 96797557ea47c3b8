"""Training data from a prepared corpus: packed CPT blocks, chat-rendered SFT examples, RAFT passages,
the leakage check against the test split, and the validation split.

    blocks, stats = pack_blocks(texts, tokenizer, block_size=384)      # no padding anywhere
    ex, status = render_sft(tokenizer, messages, "Yes. Because ...", seq_len=384)
    kept, leaks = drop_leaks(train_items, test_items, threshold=0.8)

Everything here is pure Python over a tokenizer: no model, no retrieval (RAFT passages are handed in).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from assistant.text import words
from assistant.types import QAItem, Source

IGNORE = -100  # label of tokens that carry no loss (prompt, padding)
T = TypeVar("T")


@dataclass
class Example:
    """One training sequence; `labels` is `input_ids` with IGNORE where no loss is taken."""

    input_ids: list[int]
    labels: list[int]

    @property
    def n_loss_tokens(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


@dataclass
class PackStats:
    documents: int = 0
    tokens: int = 0
    blocks: int = 0
    dropped_tail_tokens: int = 0  # the last, partial block
    replay_documents: int = 0


# ---------------------------------------------------------------- CPT
def pack_blocks(
    texts: Iterable[str], tokenizer: Any, block_size: int, *, replay: Iterable[str] = ()
) -> tuple[list[Example], PackStats]:
    """Tokenize each text with the model's tokenizer, end it with EOS, concatenate, cut into full blocks.

    Blocks are exactly `block_size` tokens: no padding, so every token trains. A document may span two
    blocks (standard for causal LM pretraining); only the tail after the last full block is dropped.
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token to separate documents")
    stats = PackStats()
    buffer: list[int] = []
    blocks: list[Example] = []

    def add(text: str) -> None:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        buffer.extend(ids)
        buffer.append(eos)
        stats.tokens += len(ids) + 1
        while len(buffer) >= block_size:
            chunk = buffer[:block_size]
            del buffer[:block_size]
            blocks.append(Example(input_ids=chunk, labels=list(chunk)))

    for text in texts:
        if text.strip():
            stats.documents += 1
            add(text)
    for text in replay:
        if text.strip():
            stats.replay_documents += 1
            add(text)
    stats.blocks = len(blocks)
    stats.dropped_tail_tokens = len(buffer)
    return blocks, stats


def mix_replay(texts: Sequence[str], replay: Sequence[str], ratio: float, seed: int) -> list[str]:
    """Replay texts whose total length is about `ratio` of the mix (by characters), sampled with `seed`."""
    if ratio <= 0 or not replay:
        return []
    own = sum(len(t) for t in texts)
    wanted = own * ratio / (1.0 - ratio)
    pool = list(replay)
    random.Random(seed).shuffle(pool)
    chosen: list[str] = []
    total = 0
    for text in pool:
        if total >= wanted:
            break
        chosen.append(text)
        total += len(text)
    return chosen


def shuffle_blocks(blocks: list[Example], seed: int) -> list[Example]:
    """Blocks in a seeded random order, so that replay and domain text interleave across batches."""
    out = list(blocks)
    random.Random(seed).shuffle(out)
    return out


# ---------------------------------------------------------------- SFT
SftStatus = Literal["ok", "answer_truncated", "prompt_too_long", "empty_answer"]
MIN_ANSWER_TOKENS = 16  # an example keeps at least this much answer, or is dropped


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def render_sft(
    tokenizer: Any, messages: Sequence[dict[str, str]], answer: str, seq_len: int
) -> tuple[Example | None, SftStatus]:
    """Prompt (chat template, generation prompt) + answer + end of turn; loss on the answer tokens only.

    The completion always ends with the tokenizer's EOS (the end-of-turn token for chat models), and it
    is a label, never masked: a model trained with pad = eos and masked pads never learns to stop. When
    prompt + answer exceed `seq_len` the answer is cut (and loses its EOS, so the model is not taught to
    stop mid-answer) and the example is reported as truncated; a prompt that leaves less than
    MIN_ANSWER_TOKENS of room drops the example.
    """
    answer = answer.strip()
    if not answer:
        return None, "empty_answer"
    eos = tokenizer.eos_token_id
    msgs = [dict(m) for m in messages]
    if getattr(tokenizer, "chat_template", None):
        prompt = str(tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
        full = str(
            tokenizer.apply_chat_template(
                [*msgs, {"role": "assistant", "content": answer}], tokenize=False, add_generation_prompt=False
            )
        )
        completion = full[len(prompt) :] if full.startswith(prompt) else answer
    else:
        # Exactly Generator.render's prompt without a template, so the adapter sees what it is given.
        prompt = "\n".join(f"{m['role']}: {m['content']}" for m in msgs) + "\nassistant:"
        completion = " " + answer
    prompt_ids = _encode(tokenizer, prompt)
    completion_ids = _encode(tokenizer, completion)
    # End the answer at its end-of-turn token (templates add a newline after it) or append EOS.
    if eos in completion_ids:
        completion_ids = completion_ids[: completion_ids.index(eos) + 1]
    else:
        completion_ids.append(eos)
    room = seq_len - len(prompt_ids)
    if room < min(MIN_ANSWER_TOKENS, len(completion_ids)):
        return None, "prompt_too_long"
    status: SftStatus = "ok"
    if len(completion_ids) > room:
        completion_ids = completion_ids[:room]
        status = "answer_truncated"
    return Example(input_ids=prompt_ids + completion_ids, labels=[IGNORE] * len(prompt_ids) + completion_ids), status


# ---------------------------------------------------------------- leakage
def question_words(question: str) -> frozenset[str]:
    return frozenset(words(question))


def _normalized(question: str) -> str:
    return " ".join(words(question))


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
    import math

    exact: dict[str, int] = {}
    words: list[frozenset[str]] = []
    postings: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(test):
        exact.setdefault(_normalized(item.question), i)
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
        hit = exact.get(_normalized(item.question))
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


# ---------------------------------------------------------------- selection and splits
def select(items: Sequence[T], *, max_examples: int | None, fraction: float | None, seed: int) -> list[T]:
    """A seeded random subset: `fraction` of the items, then at most `max_examples` (for data-size curves).

    Subsets are nested: for one seed, a smaller fraction is a prefix of a larger one.
    """
    out = list(items)
    random.Random(seed).shuffle(out)
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        out = out[: max(1, round(len(out) * fraction))]
    if max_examples is not None:
        if max_examples < 1:
            raise ValueError(f"max_examples must be at least 1, got {max_examples}")
        out = out[:max_examples]
    return out


def split_validation(items: Sequence[T], fraction: float, max_n: int, seed: int) -> tuple[list[T], list[T]]:
    """(train, validation): a seeded share of `items` held out for the evaluation loss."""
    out = list(items)
    random.Random(seed + 1).shuffle(out)
    n_val = min(max_n, int(len(out) * fraction)) if len(out) > 1 else 0
    return out[n_val:], out[:n_val]


# ---------------------------------------------------------------- RAFT
@dataclass
class RaftChoice:
    sources: list[Source]
    gold_included: bool


@dataclass
class SftStats:
    examples: int = 0
    ok: int = 0
    answer_truncated: int = 0
    prompt_too_long: int = 0
    empty_answer: int = 0
    gold_in_context: int = 0
    context_examples: int = 0

    def count(self, status: str) -> None:
        self.examples += 1
        setattr(self, status, getattr(self, status) + 1)


def raft_passages(
    gold: Sequence[Source], distractors: Sequence[Source], n: int, gold_share: float, rng: random.Random
) -> RaftChoice:
    """`n` passages for one question: with probability `gold_share` the gold one plus n-1 distractors, else
    n distractors; shuffled, so the adapter learns to find the answer and to ignore what does not hold it."""
    with_gold = bool(gold) and rng.random() < gold_share
    # A retriever's hits often hold the gold document: as a "distractor" it would come twice, or
    # sneak into an example that is meant to be without it.
    gold_ids = {g.doc_id for g in gold}
    distractors = [d for d in distractors if d.doc_id not in gold_ids]
    picked = [gold[0], *distractors[: n - 1]] if with_gold else list(distractors[:n])
    rng.shuffle(picked)
    return RaftChoice(sources=picked, gold_included=with_gold)
