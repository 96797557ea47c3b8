"""Documents -> chunks with llama-index's SentenceSplitter, sized in the embedding model's own tokens.

    from assistant.index.chunking import make_splitter, chunk_documents
    splitter = make_splitter(config.chunking, embedder.tokenize)
    chunks = chunk_documents(docs, splitter, config.chunking, embedder.tokenize)   # [Chunk(id="doc#0", ...)]

A chunk is embedded (and BM25-indexed) as its header followed by the chunk text. The header is the
document's title and, with `chunking.context` (the default), the document's `context` metadata: for a
PDF page, the issuer, kind of document, period, Item, page heading and units (corpus.loaders.page_context),
so that a chunk reading "Total revenues  66,608  62,286" is found by "Boeing's revenue in 2022". The
splitter subtracts the header's length from every chunk, so header + chunk fit the model's window; the
header is kept in the chunk's metadata (`header`), from which BM25 rebuilds the same text.

With `chunking.whole_tables` (the default), a table (three or more rows of a layout-mode page: cells set
apart by runs of spaces, at least one a number) is one chunk with the title and unit lines just above it,
never cut mid-row; one longer than `max_table_tokens` is cut between rows, its title lines repeated. The
dense vector reads the first ~256 tokens of it (the title, units, column headings and first rows); BM25
and the answer's source read all of it. The prose around tables goes through the sentence splitter.

Chunk ids are `doc_id#i` in document order, so a re-chunked document overwrites its own chunks.
llama-index's tokenizer default (tiktoken) and its `Settings` (a hosted embedding API) are never used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.config import ChunkingConfig
from assistant.types import Document

TITLE_CHARS = 200  # longer titles are cut in the embedded text, so that they leave room for the chunk
CONTEXT_CHARS = 300  # and so are context lines (also to at most half the chunk: ~4 characters a token)
_YEAR = re.compile(r"(?:19|20)\d{2}")
_CELL_TEXT = re.compile(r"(?<![\w,.])[($-]*\$?\(?-?\d[\d,]*(?:\.\d+)?%?\)?(?![\w,.])")
_CELL = re.compile(r"(?:^|\s{2})[($-]*\$?\(?-?\d[\d,]*(?:\.\d+)?%?\)?(?=\s{2}|$)")


@dataclass(frozen=True)
class Chunk:
    id: str  # f"{doc_id}#{index}"
    text: str  # the chunk alone: what a Source's snippet shows
    embed_text: str  # header + chunk: what is embedded and BM25-indexed
    metadata: dict[str, Any]  # what Chroma stores with it


def embed_text(header: str, text: str) -> str:
    """The text a chunk is searched by, densely and lexically: its header, then the chunk."""
    return f"{header}\n\n{text}" if header else text


def header_of(doc: Document, chunking: ChunkingConfig) -> str:
    """The document's title and, with `chunking.context`, its context line (see the module docstring)."""
    title = doc.title[:TITLE_CHARS]
    context = str(doc.metadata.get("context") or "") if chunking.context else ""
    context = context[: min(CONTEXT_CHARS, 2 * chunking.chunk_size)]
    return f"{title}\n{context}" if title and context else title or context


def make_splitter(chunking: ChunkingConfig, tokenize: Callable[[str], list[Any]]) -> Any:
    from llama_index.core.node_parser import SentenceSplitter

    # The splitter tokenizes whole documents to measure them; the "longer than the maximum sequence
    # length" warning that transformers then logs is noise (chunks are cut to size before embedding).
    logging.getLogger("transformers.tokenization_utils_base").setLevel(logging.ERROR)
    return SentenceSplitter(
        chunk_size=chunking.chunk_size,
        chunk_overlap=chunking.chunk_overlap,
        tokenizer=tokenize,
        include_prev_next_rel=False,
    )


def is_row(line: str) -> bool:
    """A table row of a layout-mode page: columns set apart by runs of spaces, at least one cell a number."""
    return "  " in line.strip() and _CELL.search(line.rstrip()) is not None


def _heading_line(line: str) -> bool:
    text = line.strip()
    return 0 < len(text) <= 100 and not text.endswith((".", ";")) and not is_row(line)


def blocks(text: str) -> list[tuple[bool, str]]:
    """`text` as (is_table, text) blocks in order: tables (>= 3 rows, label-only lines inside them kept,
    with up to two title or unit lines from just above) and the prose between them."""
    lines = text.split("\n")
    rows = [is_row(line) for line in lines]
    out: list[tuple[bool, str]] = []
    prose_from = i = 0
    while i < len(lines):
        if not rows[i]:
            i += 1
            continue
        end, n_rows, j = i + 1, 1, i + 1
        while j < len(lines):  # a row, or up to two short lines followed by a row
            if rows[j]:
                end, n_rows = j + 1, n_rows + 1
            elif not (_heading_line(lines[j]) and j + 1 < len(lines) and any(rows[j + 1 : j + 3])):
                break
            j += 1
        if n_rows < 3:
            i = end
            continue
        start = i
        while start > prose_from and i - start < 2 and _heading_line(lines[start - 1]):
            start -= 1
        before = "\n".join(lines[prose_from:start]).strip()
        if before:
            out.append((False, before))
        out.append((True, "\n".join(lines[start:end]).strip()))
        prose_from = i = end
    rest = "\n".join(lines[prose_from:]).strip()
    if rest:
        out.append((False, rest))
    return out


def _table_pieces(table: str, tokenize: Callable[[str], list[Any]], limit: int) -> list[str]:
    """A table cut between rows into pieces of at most `limit` tokens, the lines above its first row
    (title, units) and a first row of years (column headings) repeated on each; one piece when it fits."""
    if len(tokenize(table)) <= limit:
        return [table]
    lines = table.split("\n")
    first = next((k for k, line in enumerate(lines) if is_row(line)), 0)
    if first < len(lines) and all(_YEAR.fullmatch(c) for c in _CELL_TEXT.findall(lines[first])):
        first += 1  # the column headings ("(in millions)  2022  2021") go with the title
    title, body = lines[:first], lines[first:]
    pieces, current = [], list(title)
    budget = limit - len(tokenize("\n".join(title)))
    used = 0
    for line in body:
        n = len(tokenize(line)) + 1
        if used and used + n > budget:
            pieces.append("\n".join(current))
            current, used = list(title), 0
        current.append(line)
        used += n
    pieces.append("\n".join(current))
    return pieces


def split_document(doc: Document, header: str, splitter: Any, chunking: ChunkingConfig,
                   tokenize: Callable[[str], list[Any]]) -> list[str]:
    """The texts of `doc`'s chunks, in order, each to be searched after `header` (see the module docstring);
    `tokenize`: the splitter's."""
    parts = blocks(doc.text) if chunking.whole_tables else [(False, doc.text)]
    texts: list[str] = []
    for table, text in parts:
        if table:
            texts += _table_pieces(text, tokenize, chunking.max_table_tokens)
        else:
            texts += [t for t in splitter.split_text_metadata_aware(text, header) if t.strip()]
    return texts


def chunk_metadata(doc: Document, index: int, n_chunks: int, header: str) -> dict[str, Any]:
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
        "header": header,
    }


def chunk_documents(docs: Sequence[Document], splitter: Any, chunking: ChunkingConfig,
                    tokenize: Callable[[str], list[Any]]) -> list[Chunk]:
    """All chunks of `docs`, in document order (`splitter` from make_splitter with the same `tokenize`)."""
    chunks = []
    for doc in docs:
        header = header_of(doc, chunking)
        texts = split_document(doc, header, splitter, chunking, tokenize)
        chunks += [Chunk(f"{doc.id}#{i}", text, embed_text(header, text), chunk_metadata(doc, i, len(texts), header))
                   for i, text in enumerate(texts)]
    return chunks
