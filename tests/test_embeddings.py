"""Embedders: the hash fake, and the real embedded MiniLM (it installs from PyPI and loads offline in ~1 s)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from assistant.config import EmbeddingConfig
from assistant.embeddings import HashEmbedder, load_embedder, one_torch_thread
from assistant.errors import ModelUnavailableError, NotFoundError


def test_hash_embedder_is_deterministic_normalised_and_lexical() -> None:
    emb = load_embedder(EmbeddingConfig(model="hash:64"))
    assert isinstance(emb, HashEmbedder) and emb.dim == 64
    vecs = emb.embed_documents(["glaucoma optic nerve", "optic nerve glaucoma", "quarterly revenue"])
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0)
    assert vecs[0] @ vecs[1] == pytest.approx(1.0) and vecs[0] @ vecs[2] < 0.5
    assert np.allclose(emb.embed_query("glaucoma optic nerve"), vecs[0])
    assert emb.embed_documents([]).shape == (0, 64)


@pytest.fixture(scope="module")
def minilm():
    return load_embedder(EmbeddingConfig())


def test_minilm_vectors_do_not_depend_on_batch_mates(minilm) -> None:
    texts = ["Glaucoma damages the optic nerve.", "Revenue grew 8% in 2022.", "Asthma is an airway disease.", "x " * 300]
    together = minilm.embed_documents(texts)
    alone = np.stack([minilm.embed_documents([t])[0] for t in texts])
    assert together.shape == (4, 384)
    np.testing.assert_array_equal(together, alone)  # int8 activation scales would differ within a batch
    np.testing.assert_array_equal(minilm.embed_query(texts[0]), together[0])
    assert together[0] @ minilm.embed_query("what harms the optic nerve?") > together[1] @ minilm.embed_query(
        "what harms the optic nerve?"
    )


def test_minilm_reports_progress_and_counts_tokens_without_truncation(minilm) -> None:
    seen: list[int] = []
    minilm.embed_documents(["a b c"] * 40, progress=seen.append)
    assert sum(seen) == 40
    assert len(minilm.tokenize("word " * 600)) == 600  # the splitter must see the real length


def test_one_torch_thread_is_reentrant_and_restores() -> None:
    import torch

    before = torch.get_num_threads()
    inside: list[int] = []

    def worker() -> None:
        with one_torch_thread():
            inside.append(torch.get_num_threads())
            time.sleep(0.05)

    with one_torch_thread():
        threads = [threading.Thread(target=worker) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert torch.get_num_threads() == 1
    assert inside == [1, 1, 1] and torch.get_num_threads() == before


def test_unknown_and_unavailable_models_fail_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(NotFoundError, match="unknown embedded embedding model 'bge-small'"):
        load_embedder(EmbeddingConfig(model="embedded:bge-small"))
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match=r"'BAAI/bge-small-en-v1\.5' is not in the local Hugging Face cache"):
        load_embedder(EmbeddingConfig(model="BAAI/bge-small-en-v1.5"))
    assert time.perf_counter() - start < 2
    with pytest.raises(ModelUnavailableError, match="neither an existing path nor a hub id"):
        load_embedder(EmbeddingConfig(model="./no/such/model/dir"))
    with pytest.raises(ModelUnavailableError, match="dimension must be a number"):
        load_embedder(EmbeddingConfig(model="hash:big"))
