"""The sentence-transformers (PyTorch) embedding backend: `embedding.backend: torch`.

Optionally int8 (torch's dynamic quantization of the Linear layers). Each text is embedded alone by a
worker thread running torch on one intra-op thread (see the package docstring for why).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from assistant import hub
from assistant.embeddings import embed_each, normalise

_THREADS_LOCK = threading.Lock()
_single_users = 0
_saved_threads = 1


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch ops on one intra-op thread while any caller is inside (re-entrant, across threads).

    Small ops (a 256-token sequence, a query) scale badly across torch's OpenMP threads on few cores:
    int8 MiniLM embeds 30 passages/s on one thread and only 35/s on two, and with other work on the
    cores a one-sentence query took p50 136 / p95 508 ms on two threads against 7-10 ms on one
    (measured on the 2-core reference machine). Parallelism comes from worker threads instead.
    OMP_WAIT_POLICY=PASSIVE would also cure the second case but halves decode speed on an idle machine.
    """
    import torch

    global _single_users, _saved_threads
    with _THREADS_LOCK:
        if _single_users == 0:
            _saved_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        _single_users += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _single_users -= 1
            if _single_users == 0:
                torch.set_num_threads(_saved_threads)


class SentenceTransformerEmbedder:
    """A sentence-transformers model on CPU, optionally int8-quantized (dynamic, Linear layers)."""

    def __init__(self, path: Path, *, name: str, quantize: bool, workers: int, max_seq_length: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer

        self.name = name + (" (int8)" if quantize else "")
        self.workers = workers
        self._tokenizer_lock = threading.Lock()  # HF fast tokenizers must not be shared across threads
        with hub.quiet_transformers():
            model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        model.max_seq_length = min(max_seq_length, model.max_seq_length or max_seq_length)
        if quantize:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        model.eval()
        self._model = model
        # A private copy of the Rust tokenizer for counting chunk tokens: never mutated, so it needs no lock,
        # and without truncation (the model's own one truncates at max_seq_length). 1.6x faster chunking.
        self._counter = Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
        self._counter.no_truncation()
        self._counter.no_padding()
        dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
        self.dim = int(dim or model.get_sentence_embedding_dimension() or 0)

    def tokenize(self, text: str) -> list[int]:
        return self._counter.encode(text, add_special_tokens=False).ids

    def _one(self, text: str) -> np.ndarray:
        import torch

        with self._tokenizer_lock:
            features = self._model.preprocess([text])
        with torch.inference_mode():
            vec = self._model(features)["sentence_embedding"][0]
        return normalise(vec.float().numpy()[None, :])[0]

    def embed_documents(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        with one_torch_thread():
            return embed_each(texts, self._one, dim=self.dim, workers=self.workers, progress=progress)

    def embed_query(self, text: str) -> np.ndarray:
        with one_torch_thread():
            return self._one(text)
