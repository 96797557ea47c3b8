"""Method `llm` of `assistant data synth`: a model writes a question and its answer for a passage of each
sampled document (Alpaca's instruction-response pairs, RAFT's passage-grounded questions); a filter keeps a
pair only when its answer is in the passage, its question does not give the answer away, and both have
sensible lengths.

    records, stats = llm_records(docs, ask, model="SmolLM2-135M (llamacpp)", cache=folder / ".synth" / "llm.jsonl",
                                 sample=200, seed=0)

`ask(messages) -> reply` is any configured model (assistant.jobs.synth builds it from `generation:` or a
named model); this module never loads one. Each passage asked is cached as one JSON line (keyed by model,
document and passage), so an interrupted run resumes where it stopped and never asks twice; a line cut
short by the interruption is ignored.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assistant.corpus.loaders import progress_bar
from assistant.types import Document

Ask = Callable[[list[dict[str, str]]], str]
PASSAGE_CHARS = (200, 1200)  # a passage: whole paragraphs, packed up to the larger, kept from the smaller
QUESTION_WORDS = (4, 40)
ANSWER_WORDS = (1, 40)
SUPPORT = 0.8  # share of the answer's words the passage must hold when it is not there word for word
SYSTEM = ("You write exam questions about documents. Use only the passage you are given; the answer must be "
          "copied from the passage.")
_PAIR = re.compile(r"question\s*[:\-]\s*(?P<q>.+?)\s*\n+\s*(?:\*\*)?answer\s*[:\-]\s*(?P<a>[^\n]+)", re.I | re.S)
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*%?")
# a question that points at the text it was written from cannot be asked of an index ("What is the passage about?")
_POINTS_AT_TEXT = re.compile(r"\b(?:th(?:e|is) (?:passage|text|excerpt|paragraph|document|article)|this study)\b", re.I)


def passages(text: str) -> list[tuple[int, int]]:
    """(start, end) of `text`'s passages: its paragraphs packed in order up to PASSAGE_CHARS[1] characters;
    those shorter than PASSAGE_CHARS[0] are left out."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S(?:.*?\S)?(?=\n\s*\n|\s*$)", text, re.S)]
    out: list[tuple[int, int]] = []
    for start, end in spans:
        if out and end - out[-1][0] <= PASSAGE_CHARS[1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, min(end, start + PASSAGE_CHARS[1])))
    return [(s, e) for s, e in out if e - s >= PASSAGE_CHARS[0]]


def prompt(title: str, passage: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Passage from {title}:\n\"\"\"\n{passage}\n\"\"\"\n\nWrite one question that "
                                    "this passage answers, and its short answer copied from the passage. Reply in "
                                    "exactly this form:\nQuestion: <the question>\nAnswer: <the answer>"},
    ]


def parse(reply: str) -> tuple[str, str] | None:
    """(question, answer) from a "Question: ... Answer: ..." reply, or None."""
    match = _PAIR.search(reply)
    if not match:
        return None
    question = " ".join(match["q"].replace("**", "").split())
    answer = " ".join(match["a"].replace("**", "").split()).strip(" \"'")
    return (question, answer) if question and answer else None


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def problem(question: str, answer: str, passage: str) -> str | None:
    """Why a pair is filtered out, or None to keep it: lengths, a question that is not one, that points at
    its passage ("this passage", "this study") or that holds its answer, an answer the passage does not support (word for word, or SUPPORT of its words with every
    number among them)."""
    q_words, a_words, p_words = _words(question), _words(answer), set(_words(passage))
    if not QUESTION_WORDS[0] <= len(question.split()) <= QUESTION_WORDS[1]:
        return "question_length"
    if not question.rstrip().endswith("?"):
        return "not_a_question"
    if _POINTS_AT_TEXT.search(question):
        return "not_self_contained"
    if not a_words or not ANSWER_WORDS[0] <= len(answer.split()) <= ANSWER_WORDS[1]:
        return "answer_length"
    flat_answer, flat_passage = " ".join(a_words), " ".join(_words(passage))
    numbers = [w for w in a_words if any(c.isdigit() for c in w)]
    supported = flat_answer in flat_passage or (
        sum(w in p_words for w in a_words) >= SUPPORT * len(a_words) and all(n in p_words for n in numbers))
    if not supported:
        return "answer_not_in_passage"
    if flat_answer in " ".join(q_words):
        return "answer_in_question"
    return None


def _key(model: str, doc: Document, span: tuple[int, int]) -> str:
    text = doc.text[span[0]:span[1]]
    return hashlib.sha256(f"{model}|{doc.id}|{text}".encode()).hexdigest()[:20]


def _cached(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            entry = json.loads(line)
            out[entry["key"]] = entry
        except (ValueError, KeyError, TypeError):  # a line cut short by an interruption: asked again
            continue
    return out


def llm_records(docs: Sequence[Document], ask: Ask, *, model: str, cache: Path, sample: int, seed: int,
                progress: bool = False) -> tuple[list[dict[str, Any]], Counter[str], dict[str, list[str]], int]:
    """Question records for one passage of each of up to `sample` documents (seeded), with the problems of
    the filtered ones (counts and examples) and how many passages were asked in this run (the rest came
    from `cache`)."""
    rng = random.Random(seed)
    chosen = [(d, spans) for d in sorted(docs, key=lambda d: d.id) if (spans := passages(d.text))]
    rng.shuffle(chosen)
    todo = [(doc, rng.choice(spans)) for doc, spans in chosen[:sample]]
    done = _cached(cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    asked = 0
    with cache.open("a", encoding="utf-8") as out:
        for doc, span in progress_bar(todo, enabled=progress, desc="asking the model", unit="passage"):
            key = _key(model, doc, span)
            if key in done:
                continue
            passage = doc.text[span[0]:span[1]]
            reply = ask(prompt(doc.title, passage))
            pair = parse(reply)
            why = "no_question_in_reply" if pair is None else problem(pair[0], pair[1], passage)
            entry = {"key": key, "doc_id": doc.id, "span": list(span), "reply": reply, "problem": why,
                     "question": pair[0] if pair else "", "answer": pair[1] if pair else ""}
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
            out.flush()
            done[key] = entry
            asked += 1
    records: list[dict[str, Any]] = []
    problems: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for doc, span in todo:
        entry = done[_key(model, doc, span)]
        why = str(entry.get("problem") or "")
        if why:
            problems[why] += 1
            some = examples.setdefault(why, [])
            if len(some) < 3:
                some.append(f"{doc.id}: {str(entry['question'] or entry['reply'])[:120]!r} -> {str(entry['answer'])[:60]!r}")
            continue
        records.append({
            "question": entry["question"], "answer": entry["answer"], "answer_raw": entry["answer"], "scale": "",
            "doc_id": doc.id, "document": str(doc.metadata.get("document") or doc.id), "span": span,
            "page": doc.metadata.get("page"), "meta": dict(doc.metadata), "locator": doc.locator,
        })
    return records, problems, examples, asked


__all__ = ["Ask", "llm_records", "parse", "passages", "problem", "prompt"]
