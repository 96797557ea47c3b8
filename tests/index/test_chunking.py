"""Chunks that carry their page's context and keep tables whole (assistant.index.chunking)."""

from __future__ import annotations

from dataclasses import replace

from assistant.config import ChunkingConfig, Config
from assistant.embeddings import load_embedder
from assistant.index import build_index
from assistant.index.chunking import blocks, chunk_documents, header_of, is_row, make_splitter
from assistant.retrieval import Retriever
from assistant.types import Document

PROSE = ("Revenue grew in every segment this year, led by commercial deliveries. Management expects the "
         "backlog to convert over the next three years as supply chains recover.")
TABLE = "\n".join([
    "Consolidated Statements of Operations",
    "(Dollars in millions)  2022  2021  2020",
    "Total revenues  66,608  62,286  58,158",
    "Cost of products  (54,569)  (50,980)  (56,240)",
    "Research and development, net  2,852  2,249  2,476",
    "Total costs and expenses",
    "General and administrative  4,187  4,157  4,817",
    "Operating loss  (3,547)  (2,902)  (12,767)",
])
PAGE = f"{PROSE}\n\n{TABLE}\n\nSee Note 21 for revenue by segment; figures are unaudited where marked."


def test_rows_and_blocks() -> None:
    assert is_row("Total revenues  66,608  62,286") and is_row("Operating loss  (3,547)  $(2,902)")
    assert not is_row("Revenue grew 10% in 2022 as deliveries rose.")  # prose with numbers: no column breaks
    assert not is_row("Name  Title")  # columns, but no number
    got = blocks(PAGE)
    assert [table for table, _ in got] == [False, True, False]
    assert got[1][1] == TABLE  # its title and units from above; a label-only line inside kept
    two_rows = "Intro text here.\nA  1,000  2,000\nB  3,000  4,000\nClosing remark."
    assert blocks(two_rows) == [(False, two_rows)]  # two rows are not a table


def _chunks(chunking: ChunkingConfig, config: Config, text: str = PAGE, **meta: str) -> list:
    embedder = load_embedder(config.embedding)
    doc = Document(id="f:p1", corpus="filings", title="ACME 2022 10K — page 1", text=text, metadata=dict(meta))
    return chunk_documents([doc], make_splitter(chunking, embedder.tokenize), chunking, embedder.tokenize)


def test_a_table_is_one_chunk_and_a_long_one_is_cut_between_rows(config: Config) -> None:
    small = ChunkingConfig(chunk_size=48, chunk_overlap=4)
    chunks = _chunks(small, config)
    tables = [c for c in chunks if "Total revenues" in c.text]
    assert len(tables) == 1 and tables[0].text == TABLE  # whole, though over chunk_size
    assert [c.id for c in chunks] == [f"f:p1#{i}" for i in range(len(chunks))]
    assert all(c.metadata["n_chunks"] == len(chunks) for c in chunks)
    # the old way: the sentence splitter cuts the table
    split = _chunks(replace(small, whole_tables=False), config)
    assert not any(c.text == TABLE for c in split) and sum("Total revenues" in c.text for c in split) == 1

    tiny = replace(small, max_table_tokens=40)
    pieces = [c.text for c in _chunks(tiny, config) if "(Dollars in millions)" in c.text]
    assert len(pieces) > 1
    assert all(p.startswith("Consolidated Statements of Operations\n(Dollars in millions)") for p in pieces)
    rows = [line for p in pieces for line in p.split("\n")[2:]]
    assert rows == TABLE.split("\n")[2:]  # every row once, none cut


def test_the_context_line_is_searched_with_every_chunk(config: Config) -> None:
    meta = {"context": "Acme Widgets Corporation, Form 10-K annual report, fiscal 2022. Item 8. Financial Statements"}
    chunks = _chunks(config.chunking, config, **meta)
    assert all(c.embed_text.startswith("ACME 2022 10K — page 1\nAcme Widgets Corporation, Form 10-K") for c in chunks)
    assert all(c.metadata["header"] == header_of(Document("f:p1", "filings", "ACME 2022 10K — page 1", PAGE,
                                                          metadata=meta), config.chunking) for c in chunks)
    off = replace(config.chunking, context=False)
    assert all(c.embed_text.startswith("ACME 2022 10K — page 1\n\n") for c in _chunks(off, config, **meta))

    docs = [Document(id="f:p1", corpus="filings", title="ACME 2022 10K — page 1", text=PAGE, metadata=meta),
            Document(id="g:p1", corpus="filings", title="OTHER 2022 10K — page 1", text=PAGE.replace("66,608", "1"))]
    for chunking, found in ((config.chunking, True), (off, False)):
        cfg = config.replace(chunking=chunking)
        build_index("ctx", cfg, documents=docs, progress=False)
        with Retriever.open("ctx", cfg) as r:  # BM25 rebuilds the same text from what Chroma stores
            hits = r.retrieve("widgets corporation", mode="bm25", top_k=3)
            assert bool(hits) and hits[0].doc_id == "f:p1" if found else not hits
            assert "header" not in hits[0].metadata if hits else True  # bookkeeping, not shown as metadata
