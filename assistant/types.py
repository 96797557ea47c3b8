"""The records that flow through the system: Document, QAItem, Source and Answer (with its Evidence and Checks).

Documents and QA items are what `assistant corpus prepare` writes (one JSON object per line);
Sources and Answers are what `Assistant.ask` returns. All are plain dataclasses with `to_dict` /
`from_dict`, so that they serialise to JSONL and to the CLI's `--json` output unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# Chroma metadata values must be scalars; keeping Document metadata scalar lets it flow into the
# index unchanged and keeps filters (company, document, source) simple equality tests.
MetaValue = str | int | float | bool
Split = Literal["train", "test"]


def _check_meta(owner: str, metadata: dict[str, Any]) -> None:
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str | int | float | bool):
            raise ValueError(f"{owner}: metadata '{key}' must be a str, int, float or bool, got {type(value).__name__}")


@dataclass(frozen=True)
class Document:
    """One retrievable unit of a corpus: an abstract, an answer page, a report context, a PDF page.

    `id` is stable across runs (PMID, MedQuAD document id, TAT-QA uid, file + page), so that
    re-preparing a corpus and re-building an index only touches what changed.
    """

    id: str
    corpus: str
    title: str
    text: str
    locator: str = ""  # where a reader finds it: a URL, or "FILE.pdf, page 12"
    metadata: dict[str, MetaValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("Document.id must not be empty")
        _check_meta(f"document {self.id}", self.metadata)

    @property
    def content_hash(self) -> str:
        """Hash of everything that is indexed; a changed hash means the document is re-embedded."""
        payload = json.dumps([self.title, self.text, self.locator, self.metadata], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(**data)


@dataclass(frozen=True)
class QAItem:
    """A question with its gold answer, the documents that support it and its split.

    `answer_type` says how to score it: "label" (one of `options`, e.g. PubMedQA yes/no/maybe),
    "span", "multi-span", "arithmetic", "count" (TAT-QA) or "free" (MedQuAD answers).
    """

    id: str
    corpus: str
    question: str
    answer: str
    split: Split
    answer_type: str = "free"
    doc_ids: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    long_answer: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.split not in ("train", "test"):
            raise ValueError(f"QA item {self.id}: split must be 'train' or 'test', got {self.split!r}")
        # JSON gives lists; keep tuples so items stay hashable and immutable
        object.__setattr__(self, "doc_ids", tuple(self.doc_ids))
        object.__setattr__(self, "options", tuple(self.options))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["doc_ids"] = list(self.doc_ids)
        data["options"] = list(self.options)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QAItem:
        return cls(**data)


@dataclass(frozen=True)
class Source:
    """A retrieved passage as cited in an answer: [1] in the text is `sources[0]`."""

    doc_id: str
    title: str
    locator: str
    score: float  # the ranking score of the retrieval mode (cosine for dense, BM25, or fused RRF)
    snippet: str
    chunk_id: str = ""
    corpus: str = ""
    similarity: float | None = None  # cosine similarity of question and passage, comparable across modes
    metadata: dict[str, MetaValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        return cls(**data)


@dataclass(frozen=True)
class Evidence:
    """The sentence(s) or table row of a source that best support an answer: `quote` is
    `answer.sources[source - 1].snippet[start:end]`."""

    source: int  # 1-based, as the answer's [n] markers number the sources
    doc_id: str
    locator: str  # the page or URL, as the Source has it
    quote: str
    start: int  # character span of the quote in the source's snippet
    end: int
    score: float  # sentence similarity to the answer combined with word and number overlap, 0..1
    kind: Literal["sentence", "row"] = "sentence"
    cited: bool = True  # False: the answer cites no source and this is the best one

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(**data)


@dataclass(frozen=True)
class Check:
    """One checked claim of an answer (a number or a year) and the sources that show it."""

    claim: str  # as the answer writes it, e.g. "$79,368"
    kind: Literal["number", "year"]
    start: int  # character span of the claim in Answer.text
    end: int
    supported: bool
    sources: tuple[int, ...] = ()  # 1-based numbers of the sources that show it
    found: str = ""  # how the first of them writes it, e.g. "66,608 (in millions)"
    note: str = ""  # what was done about it: re-cited, or why it is unsupported

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sources"] = list(self.sources)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        return cls(**data)


@dataclass
class Answer:
    """What `Assistant.ask` returns: the text, the sources it cites, which strategy made it and why, and for
    retrieval strategies the quotes that support it and its numbers checked against the sources."""

    question: str
    text: str
    sources: list[Source] = field(default_factory=list)
    strategy: str = ""
    reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # seconds: retrieve, generate, total
    warnings: list[str] = field(default_factory=list)
    model: str = ""
    prompt_tokens: int = 0  # the prompt as the model read it
    output_tokens: int = 0  # the reply as the model wrote it (before citation markers were checked)
    finish_reason: str = ""  # "stop" (end of turn or a stop string), "length" (cut at max_new_tokens), "" (nothing generated)
    citations: list[int] = field(default_factory=list)  # 1-based source numbers cited in `text`
    domain: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # strategy-specific, e.g. few-shot demonstration ids
    evidence: list[Evidence] = field(default_factory=list)  # retrieval strategies: the quotes that support it
    checks: list[Check] = field(default_factory=list)  # its numbers and years, checked against the sources
    grounded: float | None = None  # share of `checks` supported by a source; None: nothing to check

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sources"] = [s.to_dict() for s in self.sources]
        data["evidence"] = [e.to_dict() for e in self.evidence]
        data["checks"] = [c.to_dict() for c in self.checks]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        data = dict(data)
        data["sources"] = [Source.from_dict(s) for s in data.get("sources", [])]
        # answers saved before evidence and checks were fields load with none
        data["evidence"] = [Evidence.from_dict(e) for e in data.get("evidence", [])]
        data["checks"] = [Check.from_dict(c) for c in data.get("checks", [])]
        usage = data.pop("usage", None) or {}  # answers saved before the token counts were fields
        data.setdefault("prompt_tokens", usage.get("prompt_tokens", 0))
        data.setdefault("output_tokens", usage.get("output_tokens", 0))
        return cls(**data)
