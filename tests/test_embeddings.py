"""Embedders: the hash fake, and the real embedded MiniLM (it installs from PyPI and loads offline in ~1 s)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
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
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ONNX export is cached under the data home: keep it out of the checkout."""
    home = tmp_path_factory.mktemp("emb-home")
    load_embedder.cache_clear()  # embedders loaded by earlier tests came from (and exported to) other homes
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(home))
        yield home
    load_embedder.cache_clear()


@pytest.fixture(scope="module", params=["onnx", "torch"])
def minilm(request: pytest.FixtureRequest, model_home: Path):
    return load_embedder(EmbeddingConfig(backend=request.param))


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


def test_onnx_export_is_cached_and_matches_sentence_transformers(model_home: Path, capfd: pytest.CaptureFixture) -> None:
    from assistant.embeddings.onnx_backend import OnnxEmbedder

    texts = ["Glaucoma damages the optic nerve.", "Total revenues were $66,608 million in 2022."]
    onnx_fp32 = load_embedder(EmbeddingConfig(backend="onnx", quantize=False))
    torch_fp32 = load_embedder(EmbeddingConfig(backend="torch", quantize=False))
    assert isinstance(onnx_fp32, OnnxEmbedder) and onnx_fp32.name.endswith("(onnx)")
    cos = (onnx_fp32.embed_documents(texts) * torch_fp32.embed_documents(texts)).sum(axis=1)
    assert cos.min() > 0.9999  # the same model, another engine
    exports = sorted((model_home / ".cache" / "models" / "onnx").iterdir())
    assert [p.name.rsplit("-", 1)[0] for p in exports if not p.name.startswith(".")] == [
        "all-MiniLM-L6-v2-fp32",
        "all-MiniLM-L6-v2-int8",
    ]
    capfd.readouterr()
    load_embedder.cache_clear()  # a new process: the export on disk is reused, not redone
    again = load_embedder(EmbeddingConfig(backend="onnx", quantize=False))
    assert "exporting" not in capfd.readouterr().err
    np.testing.assert_array_equal(again.embed_query(texts[0]), onnx_fp32.embed_query(texts[0]))
