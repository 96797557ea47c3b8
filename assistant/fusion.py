"""Fusing ranked lists and merging chunks: the pure parts of retrieval (assistant.retrieval).

    rrf([dense, bm25], k=60, weights=(1.0, 1.0))   # [(chunk id, fused score)], best first
    merge_by_document(sources)                      # one Source per document, its chunks in reading order
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from assistant.types import Source


def merge_by_document(sources: Sequence[Source]) -> list[Source]:
    """One source per document, ranked by its best chunk: its retrieved chunks' text in reading order.

    Answers cite documents (an abstract, a filing page), so two chunks of one page become one numbered
    source instead of two that a reader cannot tell apart.
    """
    groups: dict[str, list[Source]] = {}
    for src in sources:
        groups.setdefault(src.doc_id, []).append(src)
    merged = []
    for group in groups.values():
        best = group[0]
        if len(group) > 1:
            ordered = sorted(group, key=lambda s: int(s.metadata.get("chunk_index", 0)))
            similarity = max((s.similarity for s in group if s.similarity is not None), default=None)
            best = dataclasses.replace(
                best,
                snippet="\n…\n".join(s.snippet for s in ordered),
                similarity=similarity,
                metadata={**best.metadata, "merged_chunks": len(group)},
            )
        merged.append(best)
    return merged


def rrf(lists: Sequence[Sequence[tuple[str, float]]], *, k: int = 60,
        weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: the sum of weight / (k + rank) over the lists an id appears in (rank from 1;
    weights: one per list, default 1)."""
    fused: dict[str, float] = {}
    for i, ranked in enumerate(lists):
        weight = 1.0 if weights is None else weights[i]
        seen: set[str] = set()
        for rank, (cid, _) in enumerate(ranked, start=1):
            if cid in seen:
                continue
            seen.add(cid)
            fused[cid] = fused.get(cid, 0.0) + weight / (k + rank)
    # sorted() is stable: ties keep first-seen order (dense before BM25)
    return sorted(fused.items(), key=lambda item: -item[1])


__all__ = ["merge_by_document", "rrf"]
