"""Retrieval in the scope a question names (assistant.scope): what the RAG strategies and `search` use.

    sources, scope = retrieve_in_scope(retriever, "What was Boeing's revenue in 2022?")
    scope   # {"company": ["BOEING"]}: the filters the sources were found with ({} for none)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from assistant.types import MetaValue, Source

if TYPE_CHECKING:
    from assistant.retrieval import Retriever


def retrieve_in_scope(retriever: Retriever, question: str, *, top_k: int | None = None, mode: str | None = None,
                      filters: Mapping[str, str | Sequence[str]] | None = None, scope: bool = True,
                      ) -> tuple[list[Source], dict[str, list[MetaValue]]]:
    """The retriever's sources for `question` and the scope they were found in: the user's `filters` as
    given, else the scope the question names (when `scope`), else none. A scope that finds nothing is
    dropped (the question named a company the index holds, but nothing of it matches)."""
    named = retriever.scope_of(question) if filters is None and scope else {}
    sources = retriever.retrieve(question, top_k=top_k, mode=mode, filters=filters or named or None)
    if named and not sources:
        named, sources = {}, retriever.retrieve(question, top_k=top_k, mode=mode)
    return sources, named


__all__ = ["retrieve_in_scope"]
