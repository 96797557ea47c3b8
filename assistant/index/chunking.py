"""Documents -> chunks with llama-index's SentenceSplitter, sized in the embedding model's own tokens.

    from assistant.index.chunking import make_splitter, chunk_documents
    splitter = make_splitter(config.chunking, embedder.tokenize)
    chunks = chunk_documents(docs, splitter)     # [Chunk(id="doc#0", text=..., embed_text=..., metadata=...)]

A chunk is embedded (and BM25-indexed) as its document's title followed by the chunk text: the title
rides along as llama-index metadata that is excluded from nothing but itself, so the splitter subtracts
its length from every chunk and title + chunk fit the model's window. Chunk ids are `doc_id#i`, so a
re-chunked document overwrites its own chunks. llama-index's tokenizer default (tiktoken) and its
`Settings` (a hosted embedding API) are never used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.config import ChunkingConfig
from assistant.types import Document

TITLE_CHARS = 200  # longer titles are cut in the embedded text, so that they leave room for the chunk


@dataclass(frozen=True)
class Chunk:
    id: str  # f"{doc_id}#{index}"
    text: str  # the chunk alone: what a Source's snippet shows
    embed_text: str  # title + chunk: what is embedded and BM25-indexed
    metadata: dict[str, Any]  # what Chroma stores with it


def embed_text(title: str, text: str) -> str:
    """The text a chunk is searched by, densely and lexically: its document's title, then the chunk."""
    title = title[:TITLE_CHARS]
    return f"{title}\n\n{text}" if title else text


def make_splitter(chunking: ChunkingConfig, tokenize: Callable[[str], list[Any]]) -> Any:
    from llama_index.core.node_parser import SentenceSplitter

    # The splitter tokenizes whole documents to measure them; the "longer than the maximum sequence
    # length" warning that transformers then logs is noise (chunks are cut to size before embedding).
    logging.getLogger("transformers.tokenization_utils_base").setLevel(logging.ERROR)
    return SentenceSplitter(
        chunk_size=chunking.chunk_size,
        chunk_overlap=chunking.chunk_overlap,
        tokenizer=tokenize,
        id_func=lambda i, node: f"{node.node_id}#{i}",
        include_prev_next_rel=False,
    )


def llama_document(doc: Document) -> Any:
    from llama_index.core import Document as LlamaDocument

    metadata: dict[str, Any] = {"title": doc.title[:TITLE_CHARS], "doc_id": doc.id, "corpus": doc.corpus}
    hidden = [k for k in metadata if k != "title"]
    return LlamaDocument(
        id_=doc.id,
        text=doc.text,
        metadata=metadata,
        excluded_embed_metadata_keys=hidden,
        excluded_llm_metadata_keys=hidden,
        metadata_template="{value}",
        text_template="{metadata_str}\n\n{content}",
    )


def chunk_metadata(doc: Document, index: int, n_chunks: int) -> dict[str, Any]:
    """What Chroma stores with a chunk: the document's own scalar metadata plus its bookkeeping."""
    return {
        **doc.metadata,
        "doc_id": doc.id,
        "doc_hash": doc.content_hash,
        "chunk_index": index,
        "n_chunks": n_chunks,
        "corpus": doc.corpus,
        "title": doc.title,
        "locator": doc.locator,
    }


def chunk_documents(docs: Sequence[Document], splitter: Any) -> list[Chunk]:
    """All chunks of `docs`, in document order."""
    from llama_index.core.schema import MetadataMode

    by_id = {d.id: d for d in docs}
    nodes = splitter.get_nodes_from_documents([llama_document(d) for d in docs])
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.ref_doc_id] = counts.get(node.ref_doc_id, 0) + 1
    seen: dict[str, int] = {}
    chunks = []
    for node in nodes:
        doc = by_id[node.ref_doc_id]
        i = seen.get(doc.id, 0)
        seen[doc.id] = i + 1
        text = node.get_content(metadata_mode=MetadataMode.NONE)
        chunks.append(
            Chunk(node.node_id, text, embed_text(doc.title, text), chunk_metadata(doc, i, counts[doc.id]))
        )
    return chunks
