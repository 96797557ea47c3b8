"""Training data from a prepared corpus: packed CPT blocks, chat-rendered SFT examples, RAFT passages,
the leakage check against the test split (from `corpus.leakage`), and the validation split.

    blocks, stats = pack_blocks(texts, tokenizer, block_size=384)      # no padding anywhere
    for messages, answer in sft_messages(items, instruction, cfg, None, truncate, 0, SftStats()): ...
    ex, status = render_sft(tokenizer, messages, "Yes. Because ...", seq_len=384)
    kept, leaks = drop_leaks(train_items, test_items, threshold=0.8)

Everything here is pure Python over a tokenizer: no model, no retrieval (RAFT passages are handed in).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from assistant.config import TrainingConfig

# The leakage check lives with the corpus (the data check uses it too); re-exported for the entry points.
from assistant.corpus.leakage import Leak as Leak
from assistant.corpus.leakage import drop_leaks as drop_leaks
from assistant.corpus.leakage import find_leaks as find_leaks
from assistant.corpus.leakage import question_words as question_words
from assistant.prompts import base_messages, rag_messages, target_answer
from assistant.types import QAItem, Source

IGNORE = -100  # label of tokens that carry no loss (prompt, padding)
T = TypeVar("T")
PassagesFor = Callable[[QAItem], tuple[list[Source], list[Source]]]  # RAFT: item -> (gold, distractors)


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


# ---------------------------------------------------------------- SFT messages and RAFT
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


def passage_budget(cfg: TrainingConfig) -> int:
    """Tokens per RAFT passage: `passages` of them and the question fit in `seq_len`."""
    return max(32, (cfg.seq_len - 256) // cfg.passages)


def sft_messages(
    items: Sequence[QAItem],
    instruction: str,
    cfg: TrainingConfig,
    passages_for: PassagesFor | None,
    truncate: Callable[[str, int], str],
    passage_tokens: int,
    stats: SftStats,
) -> Iterator[tuple[list[dict[str, str]], str]]:
    """(messages, target answer) per QA item: the same prompts the `adapter` / `rag+adapter` strategies use
    (`train sft` renders them with the chat template, `data export` writes them as chat JSONL)."""
    rng = random.Random(cfg.seed)
    for item in items:
        if passages_for is not None:
            gold, distractors = passages_for(item)
            choice = raft_passages(gold, distractors, cfg.passages, cfg.gold_share, rng)
            stats.context_examples += 1
            stats.gold_in_context += int(choice.gold_included)
            messages = rag_messages(instruction, item.question, choice.sources, truncate, passage_tokens)
        else:
            messages = base_messages(instruction, item.question)
        yield messages, target_answer(item)


def token_truncate(tokenizer: Any) -> Callable[[str, int], str]:
    """`truncate(text, n)`: `text` cut to its first n tokens of `tokenizer` (RAFT passages)."""

    def truncate(text: str, n: int) -> str:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= n else str(tokenizer.decode(ids[:n]))

    return truncate
