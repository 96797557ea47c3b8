"""The router's signals: what is known about a question before answering it, cheaply.

    from assistant.router.signals import Signals, domain_of, question_type, retrieval_signals
    domain, sim = domain_of({"medical": 0.62, "finance": 0.18}, threshold=0.3)     # ("medical", 0.62)
    top, gap, agreement = retrieval_signals(dense_hits, bm25_hits, k=5)          # ranked (doc_id, score)
    s = Signals(domain, sim, top, gap, agreement, question_type(question), adapters=("medical-sft",),
                adapter_accuracy={"rag": 0.55, "rag+adapter:medical-sft": 0.62})
    s.to_features()     # a fixed-order list of floats, named by FEATURES (the learned policy's input)

Everything here is pure Python: computing the signals from embeddings and retrieval results is the
caller's job; these helpers only turn those numbers into the router's inputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

from assistant.text import words as text_words

QUESTION_TYPES = ("label", "numeric", "free")

# The learned policy's input, in order. A signal that can be absent (None) is a value plus a
# "<name>_missing" indicator (1.0 when absent); the value then takes MISSING_DEFAULTS[name], so the
# model can tell "not retrieved" from "retrieved badly". The question type is one-hot.
# rag_accuracy / best_adapter_accuracy come from evaluation records (Signals.adapter_accuracy): they are
# the same for every question of a domain and matter only when one policy serves several domains.
FEATURES: tuple[str, ...] = (
    "in_domain",  # 1.0 when a domain was recognised
    "domain_similarity",
    "top_score",
    "top_score_missing",
    "score_gap",
    "score_gap_missing",
    "agreement",
    "agreement_missing",
    "type_label",
    "type_numeric",
    "type_free",
    "has_adapter",
    "n_adapters",
    "rag_accuracy",  # adapter_accuracy["rag"]
    "rag_accuracy_missing",
    "best_adapter_accuracy",  # the best accuracy of any strategy spec with an adapter
    "best_adapter_accuracy_missing",
)

MISSING_DEFAULTS: dict[str, float] = {
    "top_score": 0.0,  # no retrieval looks like retrieval that found nothing similar
    "score_gap": 0.0,
    "agreement": 0.0,
    "rag_accuracy": 0.0,
    "best_adapter_accuracy": 0.0,
}


def _number(name: str, value: Any, low: float | None = None, high: float | None = None) -> float | None:
    """`value` as a float (None stays None), or a ValueError naming the field."""
    if value is None:
        return None
    if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"Signals.{name} must be a finite number, got {value!r}")
    number = float(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"Signals.{name} must lie in [{low}, {high}], got {value}")
    return number


@dataclass(frozen=True)
class Signals:
    """What the router knows about one question. Validated on construction.

    domain: the question's domain, None when it is outside every known domain.
    domain_similarity: cosine similarity to the chosen domain (for None: the best similarity found).
    top_score: the top dense retrieval cosine similarity; None when nothing was retrieved.
    score_gap: the first minus the second retrieval similarity; None with fewer than two hits.
    agreement: overlap of the BM25 and dense top-k document ids, 0..1; None when either list is empty.
    question_type: "label" (closed, yes/no), "numeric" or "free".
    adapters: adapter names available for the domain, in order of preference.
    context_adapters: those of `adapters` trained to read retrieved passages (RAFT, `train sft
        --with-context`), as their training records say.
    adapter_accuracy: strategy spec -> accuracy from evaluation records ("rag", "adapter:NAME",
        "rag+adapter:NAME", ...); empty when there are no records.
    """

    domain: str | None
    domain_similarity: float = 0.0
    top_score: float | None = None
    score_gap: float | None = None
    agreement: float | None = None
    question_type: str = "free"
    adapters: tuple[str, ...] = ()
    adapter_accuracy: Mapping[str, float] = field(default_factory=dict, hash=False)
    context_adapters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.domain is not None and (not isinstance(self.domain, str) or not self.domain):
            raise ValueError(f"Signals.domain must be a non-empty name or None, got {self.domain!r}")
        if self.domain_similarity is None:
            raise ValueError("Signals.domain_similarity must be a number (the best similarity found)")
        for name, low, high in (("domain_similarity", -1.0, 1.0), ("top_score", None, None),
                                ("score_gap", None, None), ("agreement", 0.0, 1.0)):
            object.__setattr__(self, name, _number(name, getattr(self, name), low, high))
        if self.question_type not in QUESTION_TYPES:
            raise ValueError(f"Signals.question_type must be one of {', '.join(QUESTION_TYPES)}, "
                             f"got {self.question_type!r}")
        if isinstance(self.adapters, str):
            raise ValueError("Signals.adapters must be a sequence of adapter names, not a single string")
        object.__setattr__(self, "adapters", tuple(self.adapters))
        if isinstance(self.context_adapters, str) or not set(self.context_adapters) <= set(self.adapters):
            raise ValueError("Signals.context_adapters must be a sequence of names taken from Signals.adapters")
        object.__setattr__(self, "context_adapters", tuple(self.context_adapters))
        accuracy: dict[str, float] = {}
        for spec, value in dict(self.adapter_accuracy).items():
            checked = _number(f"adapter_accuracy[{spec!r}]", value, 0.0, 1.0)
            if checked is None:
                raise ValueError(f"Signals.adapter_accuracy[{spec!r}] is None: leave unevaluated strategies out")
            accuracy[str(spec)] = checked
        object.__setattr__(self, "adapter_accuracy", accuracy)

    def best_adapter_accuracy(self) -> float | None:
        """The best accuracy of any strategy spec that uses an adapter; None when none was evaluated."""
        scores = [v for k, v in self.adapter_accuracy.items() if "adapter:" in k]
        return max(scores) if scores else None

    def to_features(self) -> list[float]:
        """The numeric vector the learned policy reads, in FEATURES order (see MISSING_DEFAULTS)."""
        optional = {
            "top_score": self.top_score,
            "score_gap": self.score_gap,
            "agreement": self.agreement,
            "rag_accuracy": self.adapter_accuracy.get("rag"),
            "best_adapter_accuracy": self.best_adapter_accuracy(),
        }
        values: dict[str, float] = {
            "in_domain": float(self.domain is not None),
            "domain_similarity": float(self.domain_similarity),
            "has_adapter": float(bool(self.adapters)),
            "n_adapters": float(len(self.adapters)),
        }
        for name, value in optional.items():
            values[name] = MISSING_DEFAULTS[name] if value is None else float(value)
            values[f"{name}_missing"] = float(value is None)
        for kind in QUESTION_TYPES:
            values[f"type_{kind}"] = float(self.question_type == kind)
        return [values[name] for name in FEATURES]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `Signals.from_dict` reads it back."""
        return {
            "domain": self.domain,
            "domain_similarity": self.domain_similarity,
            "top_score": self.top_score,
            "score_gap": self.score_gap,
            "agreement": self.agreement,
            "question_type": self.question_type,
            "adapters": list(self.adapters),
            "adapter_accuracy": dict(self.adapter_accuracy),
            "context_adapters": list(self.context_adapters),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signals:
        """Signals from `to_dict` output; unknown keys are ignored, absent optional ones take defaults."""
        if "domain" not in data:
            raise ValueError("signals dict has no 'domain' (use null for an out-of-domain question)")
        return cls(
            domain=data["domain"],
            domain_similarity=data.get("domain_similarity", 0.0),
            top_score=data.get("top_score"),
            score_gap=data.get("score_gap"),
            agreement=data.get("agreement"),
            question_type=data.get("question_type", "free"),
            adapters=tuple(data.get("adapters", ())),
            adapter_accuracy=dict(data.get("adapter_accuracy", {})),
            context_adapters=tuple(data.get("context_adapters", ())),
        )


# ---------------------------------------------------------------------------------- question type

# Yes/no questions open with an auxiliary verb ("Does ...", "Are ...", "Was revenue higher ...").
_AUXILIARIES = frozenset(
    "is are am was were do does did can could should shall has have had will would may might must".split()
)
# Words that make "what is/was the ..." ask for an amount. Exact words: "changes" is not "change", so
# "What are the genetic changes related to X?" stays free-form.
_AMOUNTS = (
    "total|net|change|percentage|percent|ratio|growth|revenue|revenues|income|amount|average|mean|median|sum|"
    "value|cost|costs|expense|expenses|profit|loss|margin|balance|sales|number|proportion|share|rate|increase|"
    "decrease|price|cash|debt|dividend|dividends|ebitda|eps|earnings|turnover|count|prevalence|incidence"
)
_NUMERIC = re.compile(
    r"\bhow\s+(?:much|many)\b"
    r"|\bwhat\s+percent(?:age)?\b"
    r"|\b(?:percentage|percent|%)\s+(?:change|increase|decrease)\b"
    r"|\bwhat\s+(?:is|was|were|are|would\s+be)\s+the\s+(?:[\w'’&/-]+\s+){0,3}?(?:" + _AMOUNTS + r")\b"
    r"|\bwhat\s+(?:is|was|were|are)\s+(?:[\w'’&/-]+\s+){0,2}?(?:total|net|average|ratio|percentage)\b"
    r"|\b(?:difference|change|increase|decrease)\b.*\b(?:19|20)\d\d\b",
    re.IGNORECASE,
)
# A clause after ":", "," or ";" that opens with an auxiliary: "Sublingual varices: are they ...?"
_LABEL_CLAUSE = re.compile(r"[:,;]\s*(?:" + "|".join(sorted(_AUXILIARIES)) + r")\b", re.IGNORECASE)
_LABEL_TAIL = re.compile(r"\b(?:yes\s+or\s+no|or\s+not)\s*\??\s*$", re.IGNORECASE)


def question_type(question: str) -> str:
    """"label", "numeric" or "free", by a heuristic on the wording.

    1. "label" when the question opens with an auxiliary verb (Is/Are/Does/Did/Can/Should/Has/Was/Will ...);
    2. "numeric" when it asks for an amount: "how much/how many", "what percentage", "percentage change",
       "what was the (total|net|change|ratio|growth|revenue|...)", or a difference/change with a year;
    3. "label" when a later clause opens with an auxiliary ("X in children: is it safe?") or it ends with
       "yes or no" / "or not";
    4. "free" otherwise.
    """
    text = question.strip().lstrip("\"'“‘([").strip()
    words = [w for w in text_words(text) if not w.isdigit()]
    if words and words[0].lower() in _AUXILIARIES:
        return "label"
    if _NUMERIC.search(text):
        return "numeric"
    if _LABEL_CLAUSE.search(text) or _LABEL_TAIL.search(text):
        return "label"
    return "free"


# ---------------------------------------------------------------------------------- domain and retrieval


def domain_of(similarities: Mapping[str, float], threshold: float) -> tuple[str | None, float]:
    """The most similar domain and its similarity; (None, best similarity) when it is below `threshold`.

    Ties go to the alphabetically first domain, so the answer never depends on dict order.
    No domains at all: (None, 0.0).
    """
    if not similarities:
        return None, 0.0
    name, best = min(similarities.items(), key=lambda kv: (-kv[1], kv[0]))
    best = float(best)
    return (name if best >= threshold else None), best


def _top_ids(hits: Sequence[tuple[str, float]], k: int) -> list[str]:
    """The first k distinct document ids (several chunks of one document count once)."""
    seen: dict[str, None] = {}
    for doc_id, _ in hits:
        seen.setdefault(doc_id)
        if len(seen) == k:
            break
    return list(seen)


def retrieval_signals(
    dense: Sequence[tuple[str, float]], bm25: Sequence[tuple[str, float]], k: int = 5
) -> tuple[float | None, float | None, float | None]:
    """(top_score, score_gap, agreement) from ranked (doc_id, score) hits.

    top_score: the best dense score (a cosine similarity); None when `dense` is empty.
    score_gap: best minus second-best dense score; None with fewer than two dense hits.
    agreement: |dense top-k ids & BM25 top-k ids| / min(sizes of the two sets), 0..1, over distinct document
    ids; None when either list is empty. BM25 scores are unbounded, so only its ranking is used.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    scores = sorted((float(s) for _, s in dense), reverse=True)
    top = scores[0] if scores else None
    gap = scores[0] - scores[1] if len(scores) >= 2 else None
    ranked_dense = sorted(dense, key=lambda hit: -hit[1])  # stable: equal scores keep their rank
    d, b = _top_ids(ranked_dense, k), _top_ids(bm25, k)
    agreement = len(set(d) & set(b)) / min(len(d), len(b)) if d and b else None
    return top, gap, agreement


__all__ = [
    "FEATURES",
    "MISSING_DEFAULTS",
    "QUESTION_TYPES",
    "Signals",
    "domain_of",
    "question_type",
    "retrieval_signals",
]
