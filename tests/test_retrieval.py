"""Retrieval: dense, BM25 and hybrid find the right chunk; filters scope results in every mode; bad input.

The last test is end-to-end with the real embedded MiniLM on 100 PubMedQA abstracts (`-m slow`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import Config, EmbeddingConfig, load_config
from assistant.corpus import read_sources
from assistant.errors import InputError, NotFoundError
from assistant.fusion import rrf
from assistant.index import build_index
from assistant.retrieval import Retriever, where_clause
from assistant.types import Document
from tests.index.docs import all_docs

MODES = ("dense", "bm25", "hybrid")


@pytest.fixture
def retriever(config: Config) -> Iterator[Retriever]:
    build_index("t", config, documents=all_docs(), corpora=["med", "filings"], progress=False)
    r = Retriever.open("t", config)
    yield r
    r.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("query", "doc_id"),
    [
        ("Do mitochondria play a role in lace plant programmed cell death?", "med:mito"),
        ("statins cholesterol mortality", "med:statin"),
        ("corticosteroids asthma children", "med:asthma"),
        ("artemisinin falciparum malaria", "med:malaria"),
    ],
)
def test_each_mode_finds_the_right_document(retriever: Retriever, mode: str, query: str, doc_id: str) -> None:
    hits = retriever.retrieve(query, mode=mode, top_k=3)
    assert hits[0].doc_id == doc_id
    assert len({h.chunk_id for h in hits}) == len(hits) <= 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_sources_carry_fields_scores_and_similarity(retriever: Retriever) -> None:
    dense = retriever.retrieve("statins cholesterol mortality", mode="dense", top_k=1)[0]
    bm25 = retriever.retrieve("statins cholesterol mortality", mode="bm25", top_k=1)[0]
    hybrid = retriever.retrieve("statins cholesterol mortality", mode="hybrid", top_k=1)[0]
    assert dense.chunk_id == bm25.chunk_id == hybrid.chunk_id == "med:statin#0"
    assert (dense.title, dense.locator, dense.corpus) == (
        "Study on statin",
        "https://example.org/statin",
        "med",
    )
    assert dense.snippet.startswith("Statins lower cholesterol")
    assert dense.score == pytest.approx(dense.similarity, abs=1e-5)  # dense score is the cosine
    assert bm25.score > 1.0 and hybrid.score == pytest.approx(2 / 61)  # rank 1 in both lists, k=60
    assert (
        dense.similarity
        == pytest.approx(bm25.similarity, abs=1e-5)
        == pytest.approx(hybrid.similarity, abs=1e-5)
    )
    assert dense.metadata == {"chunk_index": 0, "n_chunks": 1}
    page = retriever.retrieve("quarterly dividend", top_k=1, filters={"company": "BOEING"})[0]
    assert page.metadata == {
        "chunk_index": 0,
        "n_chunks": 1,
        "company": "BOEING",
        "document": "BOEING_10K_2022",
        "file": "BOEING_10K_2022.pdf",
        "page": 2,
    }


@pytest.mark.parametrize("mode", MODES)
def test_filters_scope_results_to_one_company(retriever: Retriever, mode: str) -> None:
    for company in ("BOEING", "ACME"):
        hits = retriever.retrieve(
            "total revenue airplane deliveries dividend", mode=mode, top_k=10, filters={"company": company}
        )
        assert hits and all(h.metadata["company"] == company for h in hits)
        assert hits[0].doc_id == f"fin:{company}:1"
    both = retriever.retrieve(
        "revenue", mode=mode, top_k=10, filters={"company": ["BOEING", "ACME"], "page": 1}
    )
    assert {h.doc_id for h in both} == {"fin:BOEING:1", "fin:ACME:1"}
    scoped = retriever.retrieve("statins revenue", mode=mode, top_k=10, filters={"doc_id": ["med:statin"]})
    assert [h.doc_id for h in scoped] == ["med:statin"]
    medical = retriever.retrieve("revenue dividend statins", mode=mode, top_k=10, filters={"corpus": "med"})
    assert medical and all(h.corpus == "med" for h in medical)
    assert retriever.retrieve("revenue", mode=mode, filters={"company": "NOBODY"}) == []
    assert retriever.retrieve("revenue", mode=mode, filters={"company": []}) == []


def test_filter_values_are_coerced_to_the_stored_type(retriever: Retriever) -> None:
    hits = retriever.retrieve("annual report", top_k=10, filters={"page": "2", "company": "ACME"})
    assert [h.doc_id for h in hits] == ["fin:ACME:2"]


def test_min_similarity_drops_weak_sources(retriever: Retriever) -> None:
    hits = retriever.retrieve("statins cholesterol mortality", mode="bm25", top_k=10, min_similarity=-1.0)
    strong = retriever.retrieve("statins cholesterol mortality", mode="bm25", top_k=10, min_similarity=0.3)
    assert strong and all(h.similarity >= 0.3 for h in strong)
    assert len(strong) < len(hits) or all(h.similarity >= 0.3 for h in hits)
    assert retriever.retrieve("statins cholesterol mortality", min_similarity=1.01) == []


def test_top_k_and_deduplication(retriever: Retriever) -> None:
    hits = retriever.retrieve("annual report revenue", mode="hybrid", top_k=100, min_similarity=-1.0)
    assert len(hits) == len({h.chunk_id for h in hits}) == len(all_docs())
    assert len(retriever.retrieve("annual report revenue", top_k=2)) == 2


def test_bad_queries(retriever: Retriever, config: Config) -> None:
    for query in ("", "   \n"):
        with pytest.raises(InputError, match="empty query"):
            retriever.retrieve(query)
    with pytest.raises(InputError, match="unknown retrieval mode"):
        retriever.retrieve("x", mode="magic")
    with pytest.raises(InputError, match=r"unknown filter 'sector'.*known: .*company"):
        retriever.retrieve("x", filters={"sector": "tech"})
    with pytest.raises(InputError, match="top_k"):
        retriever.retrieve("x", top_k=0)
    with pytest.raises(NotFoundError, match=r"unknown index 'nope' \(known: t\)"):
        Retriever.open("nope", config)
    # words outside the BM25 vocabulary: no lexical hits, dense still answers
    assert retriever.retrieve("qwxyz", mode="bm25") == []


def test_an_index_is_queried_with_the_model_that_built_it(retriever: Retriever, config: Config) -> None:
    other = config.replace(embedding=EmbeddingConfig(model="hash:64", quantize=False))
    with Retriever.open("t", other) as r:
        assert r.embedder.dim == 384
        assert r.retrieve("statins cholesterol", mode="dense")[0].doc_id == "med:statin"


def test_status_and_facets(retriever: Retriever) -> None:
    assert retriever.status.n_chunks == len(retriever) == len(all_docs())
    assert retriever.facets["company"] == ["ACME", "BOEING"]
    assert "page" in retriever.filter_keys


def test_rrf_and_where_clause() -> None:
    fused = rrf([[("a", 0.9), ("b", 0.5)], [("b", 7.0), ("c", 3.0), ("b", 1.0)]], k=60)
    assert [cid for cid, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    weighted = rrf([[("a", 0.9), ("b", 0.5)], [("b", 7.0), ("c", 3.0)]], k=60, weights=(1.0, 2.0))
    assert [cid for cid, _ in weighted] == ["b", "c", "a"] and weighted[1][1] == pytest.approx(2 / 62)
    assert where_clause({}) is None
    assert where_clause({"company": ["X"]}) == {"company": "X"}
    assert where_clause({"company": ["X", "Y"], "page": [1]}) == {
        "$and": [{"company": {"$in": ["X", "Y"]}}, {"page": 1}]
    }


@pytest.mark.slow
def test_pubmedqa_questions_find_their_own_abstract(shared_data: Path, home: Path) -> None:
    """End to end with the embedded MiniLM: 100 abstracts, their questions, own abstract in the hybrid top 5."""
    config = load_config(home=home)
    loaded = read_sources("pubmedqa", config)  # the records `assistant corpus prepare pubmedqa` writes
    docs = sorted(loaded.documents, key=lambda d: d.id)[:100]
    ids = {d.id for d in docs}
    questions = [q for q in loaded.qa if q.doc_ids[0] in ids]
    assert len(questions) == 100
    report = build_index("pubmedqa", config, documents=docs, corpora=["pubmedqa"], progress=False)
    assert report.n_documents == 100 and report.n_chunks >= 100
    with Retriever.open("pubmedqa", config) as r:
        found = sum(
            q.doc_ids[0] in {s.doc_id for s in r.retrieve(q.question, mode="hybrid", top_k=5)} for q in questions
        )
    assert found >= 90, f"own abstract in the top 5 for only {found}/100 questions"


def test_an_index_without_indexable_words_still_answers_densely(config: Config) -> None:
    build_index(
        "tiny", config, documents=[Document(id="a", corpus="c", title="X", text="a b c")], progress=False
    )
    with Retriever.open("tiny", config) as r:
        assert r.retrieve("hello", mode="bm25") == []
        assert [s.doc_id for s in r.retrieve("a b", mode="hybrid", min_similarity=-1.0)] == ["a"]


def test_manifest_fields_that_do_not_shape_vectors_are_ignored(config: Config) -> None:
    """An index outlives config changes that do not touch its vectors (e.g. worker threads, old fields)."""
    build_index("t", config, documents=all_docs(), progress=False)
    path = config.indexes_dir / "t" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["embedding"]["config"].update(workers=7, batch_size=64)  # batch_size: a field of older versions
    path.write_text(json.dumps(manifest))
    with Retriever.open("t", config) as r:
        assert r.retrieve("statins cholesterol", top_k=1)[0].doc_id == "med:statin"
        assert r.embedder.name == "hash:384"


def test_merge_by_document_keeps_rank_and_reading_order() -> None:
    from assistant.fusion import merge_by_document
    from assistant.types import Source

    def src(doc: str, idx: int, score: float, sim: float) -> Source:
        return Source(doc_id=doc, title=doc, locator="", score=score, snippet=f"{doc}-{idx}", chunk_id=f"{doc}#{idx}",
                      similarity=sim, metadata={"chunk_index": idx})

    merged = merge_by_document([src("a", 3, 0.9, 0.5), src("b", 0, 0.8, 0.7), src("a", 1, 0.7, 0.6)])
    assert [m.doc_id for m in merged] == ["a", "b"]
    assert merged[0].snippet == "a-1\n…\na-3" and merged[0].score == 0.9 and merged[0].similarity == 0.6
    assert merged[0].chunk_id == "a#3" and merged[0].metadata["merged_chunks"] == 2
    assert merged[1] == src("b", 0, 0.8, 0.7)
