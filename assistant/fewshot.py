"""Few-shot demonstrations: for each question, the nearest training QA pairs of its domain, by embedding.

    pool = FewShotPool.load("medical", config)        # train split only; embeddings cached on disk
    demos = pool.nearest("Do statins reduce mortality?", k=3)

The pool holds the *train* split of the domain's corpora and nothing else, so a demonstration is never
a test item; a training item whose question is the asked question (after normalising case and spaces)
is skipped, so a question is never its own demonstration. Question embeddings are computed once per
(domain, items, embedding model) and cached under the data home's `.cache/fewshot/`.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.atomic import atomic_write
from assistant.config import Config
from assistant.errors import InputError
from assistant.prompts import target_answer
from assistant.types import QAItem

if TYPE_CHECKING:
    import numpy as np


def _key(question: str) -> str:
    return re.sub(r"\s+", " ", question).strip().lower()


@dataclass
class FewShotPool:
    domain: str
    items: list[QAItem]
    vectors: np.ndarray  # one normalised row per item

    @classmethod
    def load(cls, domain: str, config: Config) -> FewShotPool:
        """The domain's training pairs with their question embeddings (cached once per process and on disk)."""
        key = (domain, str(config.home), config.embedding)
        with _LOCK:
            if key not in _POOLS:
                _POOLS[key] = cls._build(domain, config)
            return _POOLS[key]

    @classmethod
    def _build(cls, domain: str, config: Config) -> FewShotPool:
        import numpy as np

        from assistant.corpus import corpora_for, is_prepared, load_qa
        from assistant.embeddings import load_embedder

        items: list[QAItem] = []
        for corpus in corpora_for(domain, config):
            if is_prepared(corpus, config):
                items += [i for i in load_qa(corpus, config) if i.split == "train" and target_answer(i)]
        if not items:
            raise InputError(
                f"few-shot needs training QA pairs, and '{domain}' has none: prepare its corpora "
                f"(`assistant corpus prepare`) or choose another strategy"
            )
        items.sort(key=lambda i: i.id)
        digest = hashlib.sha256(repr(config.embedding).encode())
        for item in items:
            digest.update(f"{item.id}\0{item.question}\0".encode())
        path = config.cache_dir / "fewshot" / f"{domain}-{digest.hexdigest()[:16]}.npy"
        if path.is_file():
            vectors = np.load(path)
        else:
            vectors = np.asarray(load_embedder(config.embedding).embed_documents([i.question for i in items]))
            buffer = io.BytesIO()
            np.save(buffer, vectors)
            atomic_write(path, buffer.getvalue())
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return cls(domain, items, vectors / np.maximum(norms, 1e-12))

    def nearest(self, question: str, k: int, config: Config) -> list[QAItem]:
        """The k training pairs whose questions are most similar to `question`, most similar first."""
        import numpy as np

        from assistant.embeddings import load_embedder

        query = np.asarray(load_embedder(config.embedding).embed_query(question), dtype=np.float32)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        scores = self.vectors @ query
        own = _key(question)
        order = np.argsort(-scores, kind="stable")
        picked: list[QAItem] = []
        for i in order:
            if _key(self.items[int(i)].question) != own:
                picked.append(self.items[int(i)])
                if len(picked) == k:
                    break
        return picked


_POOLS: dict[tuple[str, str, object], FewShotPool] = {}
_LOCK = threading.Lock()


__all__ = ["FewShotPool"]
