"""The set-level steps of `data synth`: deduplicate, split train/test by document, limit, and write the
QA split into a prepared corpus (files and manifest), so that eval, advise, train sft and router train
read it like a shipped one.

    from assistant.corpus.synth_split import dedupe, split_by_document, write_split
    kept, dropped = dedupe(records)                          # same question: one kept, or none if answers differ
    test_docs = split_by_document(counts, test_share=0.3, seed=0, corpus="filings")
    write_split("filings", config, train_items, test_items, provenance)
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from assistant.atomic import atomic_write, exclusive_lock
from assistant.config import Config
from assistant.corpus.store import MANIFEST, QA_FILES, corpus_dir, corpus_manifest
from assistant.errors import InputError
from assistant.types import QAItem


def question_key(question: str) -> str:
    return " ".join(re.sub(r"[^\w%.$-]+", " ", question.lower()).split())


def dedupe(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Counter[str], dict[str, list[str]]]:
    """Records with distinct questions: of several with one question, the first is kept when they agree on
    the answer ("duplicate") and none when they do not ("ambiguous": two tables, or two columns headed
    alike, give different numbers for one question). Returns (kept, dropped counts, examples)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(question_key(record["question"]), []).append(record)
    kept: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for group in groups.values():
        answers = {(r["answer_raw"], r["scale"]) for r in group}
        if len(answers) == 1:
            kept.append(group[0])
            if len(group) > 1:
                dropped["duplicate"] += len(group) - 1
        else:
            dropped["ambiguous"] += len(group)
            some = examples.setdefault("ambiguous", [])
            if len(some) < 3:
                some.append(f"{group[0]['question']} -> {' / '.join(sorted(r['answer'] for r in group))}")
    order = {id(r): i for i, r in enumerate(records)}
    kept.sort(key=lambda r: order[id(r)])
    return kept, dropped, examples


def split_by_document(counts: dict[str, int], *, test_share: float, seed: int, corpus: str) -> set[str]:
    """The documents whose questions go to test: shuffled by `seed`, taken until they hold about
    `test_share` of the questions, always leaving at least one document on each side."""
    docs = sorted(d for d, n in counts.items() if n)
    if len(docs) < 2:
        found = f"only {docs[0]}" if docs else "none"
        raise InputError(
            f"corpus '{corpus}': questions came from {len(docs)} document(s) ({found}); a train/test split by "
            "document needs at least 2: add documents (`assistant corpus add`) or synthesise from a larger corpus"
        )
    random.Random(seed).shuffle(docs)
    total = sum(counts[d] for d in docs)
    test: set[str] = set()
    n_test = 0
    for doc in docs[:-1]:
        if n_test >= test_share * total:
            break
        # take the next document unless it overshoots the share by more than leaving it out undershoots it
        if test and n_test + counts[doc] - test_share * total > test_share * total - n_test:
            continue
        test.add(doc)
        n_test += counts[doc]
    return test


def limit_items(items: list[QAItem], limit: int | None, test_share: float, seed: int) -> list[QAItem]:
    """At most `limit` items, test and train sampled in proportion (seeded), in their original order."""
    if limit is None or len(items) <= limit:
        return items
    test = [i for i in items if i.split == "test"]
    train = [i for i in items if i.split == "train"]
    n_test = min(len(test), max(1, round(limit * test_share)))
    n_train = min(len(train), limit - n_test)
    rng = random.Random(seed)
    chosen = {i.id for i in rng.sample(test, n_test)} | {i.id for i in rng.sample(train, n_train)}
    return [i for i in items if i.id in chosen]


def existing_qa(manifest: dict[str, Any]) -> int:
    counts = manifest.get("counts", {})
    return int(counts.get("qa_train", 0)) + int(counts.get("qa_test", 0))


def write_split(name: str, config: Config, items: Sequence[QAItem], provenance: dict[str, Any]) -> dict[str, Any]:
    """Write `items` as corpus `name`'s qa_train.jsonl / qa_test.jsonl and record `provenance` as the
    manifest's "synthesised" entry (with the new counts and file sizes). Each file goes in through a
    temporary one and os.replace; the manifest, written last, names the new sizes, so a reader never
    pairs it with a half-written split. Returns the new manifest."""
    folder = corpus_dir(name, config)
    with exclusive_lock(folder / ".lock"):
        manifest = corpus_manifest(name, config)
        if existing_qa(manifest) and not manifest.get("synthesised"):
            raise InputError(f"corpus '{name}' has a QA set of its own; synth does not overwrite it")
        counts = {}
        for split, file in QA_FILES.items():
            lines = [json.dumps(i.to_dict(), ensure_ascii=False) + "\n" for i in items if i.split == split]
            tmp = folder / f".{file}.synth-tmp"
            tmp.write_text("".join(lines), encoding="utf-8")
            os.replace(tmp, folder / file)
            counts[f"qa_{split}"] = len(lines)
            manifest.setdefault("files", {})[file] = (folder / file).stat().st_size
        manifest["counts"] = {**manifest.get("counts", {}), **counts}
        manifest["synthesised"] = provenance
        atomic_write(folder / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
    return manifest


__all__ = ["dedupe", "existing_qa", "limit_items", "question_key", "split_by_document", "write_split"]
