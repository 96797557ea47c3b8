"""Citation markers in a RAG answer: keep the ones that name a real source, and add them by word overlap
when the model cited nothing.

    text, cited, warnings = check_citations("Statins help [1][7].", n_sources=5)   # [7] removed, said why
    text, cited = attribute("Statins lower LDL.", sources)                          # "Statins lower LDL [2]."
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.text import terms
from assistant.types import Source

_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOP = frozenset(
    "the a an and or of to in on for with by is are was were be been it its this that these those as at from "
    "which who what when where how not no yes can may also than then there their they has have had do does".split()
)


def content_words(text: str) -> set[str]:
    return {w for w in terms(text) if w not in _STOP and len(w) > 2}


def check_citations(text: str, n_sources: int) -> tuple[str, list[int], list[str]]:
    """Keep citation markers that name a real source; drop the others and say so."""
    cited: set[int] = set()
    dropped: set[int] = set()

    def repl(match: re.Match[str]) -> str:
        nums = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        good = [n for n in nums if 1 <= n <= n_sources]
        dropped.update(n for n in nums if n not in good)
        cited.update(good)
        return f"[{', '.join(map(str, good))}]" if good else ""

    cleaned = _CITE.sub(repl, text)
    warnings = [f"removed citation [{n}]: there is no source {n}" for n in sorted(dropped)]
    return re.sub(r"[ \t]+([.,;:])", r"\1", cleaned).strip(), sorted(cited), warnings


def attribute(text: str, sources: Sequence[Source], min_overlap: float = 0.35) -> tuple[str, list[int]]:
    """Post-hoc attribution for answers that cite nothing: mark each sentence with the source that shares
    the largest share of its content words, when that share reaches `min_overlap`."""
    source_words = [content_words(s.snippet + " " + s.title) for s in sources]
    out, cited = [], set()
    for sentence in _SENTENCE.split(text.strip()):
        words = content_words(sentence)
        best, share = 0, 0.0
        for i, sw in enumerate(source_words, 1):
            if words:
                overlap = len(words & sw) / len(words)
                if overlap > share:
                    best, share = i, overlap
        if best and share >= min_overlap:
            cited.add(best)
            stripped = sentence.rstrip()
            end = stripped[-1] if stripped and stripped[-1] in ".!?" else ""
            sentence = f"{stripped[: len(stripped) - len(end)]} [{best}]{end}"
        out.append(sentence)
    return " ".join(out), sorted(cited)


__all__ = ["attribute", "check_citations", "content_words"]
