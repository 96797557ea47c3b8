"""Training data: packed CPT blocks, SFT rendering and its label mask, leakage, subsets, validation, RAFT,
and the target answers of QA items. Pure Python over the tiny byte tokenizer (one token per byte)."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from assistant.prompts import target_answer
from assistant.training.data import (
    IGNORE,
    MIN_ANSWER_TOKENS,
    drop_leaks,
    find_leaks,
    pack_blocks,
    raft_passages,
    render_sft,
    select,
    split_validation,
)
from assistant.training.trainer import collate
from assistant.types import QAItem, Source

MESSAGES = [{"role": "system", "content": "Answer."}, {"role": "user", "content": "Is tea good?"}]


def ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


# ---------------------------------------------------------------- CPT packing
def test_pack_blocks_full_blocks_only_documents_end_with_eos(tokenizer: Any) -> None:
    eos = tokenizer.eos_token_id
    blocks, stats = pack_blocks(["abc", "defgh", "  ", "ij"], tokenizer, block_size=4)
    a, b, c, d, e, f, g, h, i, j = (ids(tokenizer, x)[0] for x in "abcdefghij")
    # 3 + 1, 5 + 1, 2 + 1 = 13 tokens: three blocks of 4, one EOS left in the tail
    assert [blk.input_ids for blk in blocks] == [[a, b, c, eos], [d, e, f, g], [h, eos, i, j]]
    assert all(blk.labels == blk.input_ids for blk in blocks)  # every token trains, none is padding
    assert (stats.documents, stats.tokens, stats.blocks, stats.dropped_tail_tokens) == (3, 13, 3, 1)
    assert stats.replay_documents == 0


def test_pack_blocks_counts_replay_and_drops_a_short_corpus(tokenizer: Any) -> None:
    blocks, stats = pack_blocks(["x" * 10], tokenizer, block_size=8, replay=["y" * 5, ""])
    assert (stats.documents, stats.replay_documents, stats.tokens) == (1, 1, 17)
    assert stats.blocks == len(blocks) == 2 and stats.dropped_tail_tokens == 1
    none, stats = pack_blocks(["short"], tokenizer, block_size=64)
    assert none == [] and stats.dropped_tail_tokens == 6


# ---------------------------------------------------------------- SFT rendering
def test_render_sft_labels_are_the_answer_and_its_eos(tokenizer: Any) -> None:
    eos = tokenizer.eos_token_id
    assert tokenizer.pad_token_id == eos  # the case that hides EOS when padding is masked by id
    example, status = render_sft(tokenizer, MESSAGES, "  Yes.  ", seq_len=128)
    assert status == "ok" and example is not None
    prompt = ids(tokenizer, tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True))
    answer = [*ids(tokenizer, "Yes."), eos]
    assert example.input_ids == prompt + answer  # the template's newline after <|im_end|> is not trained
    assert example.labels == [IGNORE] * len(prompt) + answer
    assert example.n_loss_tokens == len(answer) and example.labels[-1] == eos
    # Padding to a longer neighbour masks the padding, not the real EOS (pad and EOS share an id).
    longer, _ = render_sft(tokenizer, MESSAGES, "Yes, it is.", seq_len=128)
    assert longer is not None
    batch = collate([example, longer], pad_token_id=tokenizer.pad_token_id)
    row = batch["labels"][0].tolist()
    n = len(example.input_ids)
    assert row[n - 1] == eos and row[n:] == [IGNORE] * (len(longer.input_ids) - n)
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (len(longer.input_ids) - n)


def test_render_sft_truncation_cuts_the_answer_and_drops_eos(tokenizer: Any) -> None:
    eos = tokenizer.eos_token_id
    prompt = len(ids(tokenizer, tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)))
    answer = "Tea is good for most people in moderate amounts, says the study."
    example, status = render_sft(tokenizer, MESSAGES, answer, seq_len=prompt + 20)
    assert status == "answer_truncated" and example is not None
    assert len(example.input_ids) == prompt + 20
    kept = [t for t in example.labels if t != IGNORE]
    assert kept == ids(tokenizer, answer)[:20] and eos not in kept  # not taught to stop mid-answer
    # Exactly enough room for the whole answer and its EOS: not truncated.
    short, status = render_sft(tokenizer, MESSAGES, "Yes.", seq_len=prompt + 5)
    assert status == "ok" and short is not None and short.labels[-1] == eos


def test_render_sft_too_long_prompt_and_empty_answer(tokenizer: Any) -> None:
    prompt = len(ids(tokenizer, tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)))
    long_answer = "A long answer that would need more room than there is. " * 2
    assert render_sft(tokenizer, MESSAGES, long_answer, seq_len=prompt + MIN_ANSWER_TOKENS - 1) == (None, "prompt_too_long")
    assert render_sft(tokenizer, MESSAGES, long_answer, seq_len=prompt - 3) == (None, "prompt_too_long")
    example, status = render_sft(tokenizer, MESSAGES, long_answer, seq_len=prompt + MIN_ANSWER_TOKENS)
    assert status == "answer_truncated" and example is not None and example.n_loss_tokens == MIN_ANSWER_TOKENS
    assert render_sft(tokenizer, MESSAGES, "   ", seq_len=128) == (None, "empty_answer")


def test_render_sft_without_a_chat_template_matches_the_generator_prompt(tokenizer: Any) -> None:
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    example, status = render_sft(plain, MESSAGES, "Yes.", seq_len=128)
    assert status == "ok" and example is not None
    n_prompt = example.labels.count(IGNORE)
    # Generator.render without a template ends the prompt with "\nassistant:" (tests/test_models.py).
    assert plain.decode(example.input_ids[:n_prompt]) == "system: Answer.\nuser: Is tea good?\nassistant:"
    assert plain.decode(example.input_ids[n_prompt:]) == " Yes.<|im_end|>"


# ---------------------------------------------------------------- leakage
def qa(item_id: str, question: str, split: str = "train") -> QAItem:
    return QAItem(item_id, "c", question, "yes", split)  # type: ignore[arg-type]


def leak_test_set() -> list[QAItem]:
    """Three test questions among templated background ones, so that word weights (IDF) are realistic."""
    topics = ("statins", "insulin", "asthma", "malaria", "obesity", "smoking", "exercise", "vitamin", "dementia")
    outcomes = ("survival", "fractures", "stroke", "depression", "infection")
    items = [
        qa("t1", "Does aspirin prevent strokes in elderly patients with atrial fibrillation?", "test"),
        qa("t2", "Is coffee consumption associated with lower mortality in women?", "test"),
        qa("t3", "What are the symptoms of Gardner syndrome ?", "test"),
    ]
    items += [qa(f"b{t}{o}", f"Is {t} associated with {o} in adults?", "test") for t in topics for o in outcomes]
    items += [qa(f"s{t}", f"What are the symptoms of {t} ?", "test") for t in topics]
    return items


def test_leaks_exact_and_near_duplicates_are_found() -> None:
    train = [
        qa("exact", "Does aspirin prevent strokes in elderly patients with atrial fibrillation?"),
        qa("case", "does ASPIRIN prevent strokes, in elderly patients with atrial-fibrillation"),
        qa("word", "Does aspirin prevent strokes in elderly patients having atrial fibrillation?"),
        qa("unrelated", "How is malaria transmitted by mosquitoes in Africa?"),
        qa("template", "What are the symptoms of Turner syndrome ?"),  # same template, another disease
    ]
    test = leak_test_set()
    leaks = {leak.train_id: leak for leak in find_leaks(train, test, threshold=0.8)}
    assert set(leaks) == {"exact", "case", "word"}
    assert leaks["exact"].similarity == leaks["case"].similarity == 1.0
    assert {leak.test_id for leak in leaks.values()} == {"t1"}
    assert 0.8 <= leaks["word"].similarity < 1.0
    kept, dropped = drop_leaks(train, test, threshold=0.8)
    assert [i.id for i in kept] == ["unrelated", "template"] and len(dropped) == 3
    assert find_leaks(train, [], threshold=0.8) == [] and find_leaks([], test, threshold=0.8) == []


def test_leak_candidates_miss_no_near_duplicate() -> None:
    """At threshold 0 every test question sharing a word is compared: the exhaustive answer. At 0.8 the
    inverted index looks at fewer candidates and must still flag exactly the same train questions."""
    rng = random.Random(0)
    common = ["is", "the", "of", "in", "with", "does", "are", "what", "a", "for"]
    vocab = [f"w{i}" for i in range(300)]
    for _ in range(15):
        test = [
            qa(f"t{i}", " ".join(rng.sample(common, 4) + rng.sample(vocab, rng.randint(5, 16))), "test")
            for i in range(50)
        ]
        # near duplicates: a test question plus a few words that other questions use (ties in rarity)
        train = [
            qa(f"r{i}", " ".join(rng.choice(test).question.split() + rng.sample(vocab, rng.randint(1, 4))))
            for i in range(50)
        ]
        exhaustive = {leak.train_id: leak.similarity for leak in find_leaks(train, test, threshold=0.0)}
        found = {leak.train_id: leak.similarity for leak in find_leaks(train, test, threshold=0.8)}
        assert found == {k: v for k, v in exhaustive.items() if v >= 0.8}


# ---------------------------------------------------------------- subsets and validation
def test_select_gives_nested_seeded_subsets() -> None:
    items = list(range(100))
    quarter = select(items, max_examples=None, fraction=0.25, seed=3)
    half = select(items, max_examples=None, fraction=0.5, seed=3)
    assert len(quarter) == 25 and len(half) == 50 and half[:25] == quarter
    assert select(items, max_examples=10, fraction=0.5, seed=3) == quarter[:10]
    assert select(items, max_examples=1000, fraction=None, seed=3)[:50] == half
    assert select(items, max_examples=None, fraction=0.5, seed=4) != half
    assert sorted(select(items, max_examples=None, fraction=None, seed=3)) == items
    assert select(items[:3], max_examples=None, fraction=0.01, seed=0) != []  # at least one
    with pytest.raises(ValueError, match="fraction"):
        select(items, max_examples=None, fraction=0.0, seed=0)
    with pytest.raises(ValueError, match="max_examples"):
        select(items, max_examples=0, fraction=None, seed=0)


def test_split_validation_is_disjoint_capped_and_seeded() -> None:
    items = list(range(100))
    train, val = split_validation(items, fraction=0.1, max_n=64, seed=0)
    assert len(val) == 10 and len(train) == 90 and sorted(train + val) == items
    assert split_validation(items, fraction=0.1, max_n=64, seed=0) == (train, val)
    assert len(split_validation(items, fraction=0.5, max_n=7, seed=0)[1]) == 7
    assert split_validation(items, fraction=0.0, max_n=64, seed=0)[1] == []
    assert split_validation([1], fraction=0.9, max_n=64, seed=0) == ([1], [])  # never the only example


# ---------------------------------------------------------------- RAFT passages
def source(doc_id: str) -> Source:
    return Source(doc_id=doc_id, title=doc_id, locator="", score=0.0, snippet=f"text of {doc_id}")


def test_raft_passages_respect_the_gold_share_and_never_repeat_gold() -> None:
    rng = random.Random(0)
    gold = [source("gold")]
    # A retriever often returns the gold document among its hits: it must not come twice, nor
    # sneak into an example that is meant to be without it.
    distractors = [source("d1"), source("gold"), source("d2"), source("d3")]
    draws = [raft_passages(gold, distractors, n=3, gold_share=0.7, rng=rng) for _ in range(2000)]
    share = sum(d.gold_included for d in draws) / len(draws)
    assert share == pytest.approx(0.7, abs=0.04)
    positions = set()
    for d in draws:
        names = [s.doc_id for s in d.sources]
        assert len(names) == 3 and len(set(names)) == 3
        assert names.count("gold") == (1 if d.gold_included else 0)
        if d.gold_included:
            positions.add(names.index("gold"))
    assert positions == {0, 1, 2}  # shuffled: the gold passage is not always first
    assert not any(raft_passages([], distractors, 3, 1.0, rng).gold_included for _ in range(50))
    assert all(raft_passages(gold, distractors, 3, 1.0, rng).gold_included for _ in range(50))
    few = raft_passages(gold, [source("d1")], n=3, gold_share=1.0, rng=rng)
    assert sorted(s.doc_id for s in few.sources) == ["d1", "gold"]


# ---------------------------------------------------------------- target answers
def test_target_answer_for_labels_scaled_spans_and_free_text() -> None:
    label = QAItem("p", "pubmedqa", "Does aspirin help?", "yes", "train", answer_type="label",
                   options=("yes", "no", "maybe"), long_answer=" Aspirin reduced strokes. ")
    assert target_answer(label) == "Yes. Aspirin reduced strokes."
    bare = QAItem("p2", "pubmedqa", "Q?", "maybe", "train", answer_type="label")
    assert target_answer(bare) == "Maybe."
    span = QAItem("t", "tatqa", "Revenue?", "1,000", "train", answer_type="span", metadata={"scale": "thousand"})
    assert target_answer(span) == "1,000 (thousand)"
    has_scale = QAItem("t2", "tatqa", "Q?", "5 million", "train", answer_type="arithmetic", metadata={"scale": "million"})
    assert target_answer(has_scale) == "5 million"
    no_scale = QAItem("t3", "tatqa", "Q?", "12.5", "train", answer_type="arithmetic", metadata={"scale": ""})
    assert target_answer(no_scale) == "12.5"
    free = QAItem("m", "medquad", "What is X?", "  X is a rare disease.\n", "train")
    assert target_answer(free) == "X is a rare disease."
    assert target_answer(QAItem("e", "medquad", "Q?", "  ", "train")) == ""
