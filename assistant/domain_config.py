"""`domains:` in assistant.yaml: the domains the assistant answers in, each with its instruction and,
optionally, its own generation and embedding models and retrieval settings.

    domains: {medical: {model: /models/BioMistral-7B.Q4_K_M.gguf, embedding: /models/S-PubMedBert-MS-MARCO}}
    domains: {finance: {bm25_weight: 1.0, top_k: 8}}

A domain the assistant ships (medical, finance) keeps what the file does not change: its instruction, and
finance's BM25 weight and short answers. A setting made for every domain (`retrieval: {bm25_weight: 1}`) wins over a shipped
domain's default, and a setting made for the domain wins over both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

RETRIEVAL_FIELDS = ("bm25_weight", "top_k")  # the retrieval settings a domain may set for itself


@dataclass(frozen=True)
class DomainConfig:
    name: str
    description: str = ""
    instruction: str = "Answer the question accurately and concisely."
    # this domain's own generation model (e.g. a biomedical one for medical); "": generation.model
    model: str = ""
    # this domain's own embedding model (as embedding.model spells it); "": embedding.model. Its index is
    # built and queried with it (a change builds a new collection, see assistant.index.build).
    embedding: str = ""
    # this domain's retrieval.bm25_weight and retrieval.top_k; None: retrieval's own
    bm25_weight: float | None = None
    top_k: int | None = None
    # an extractive answer (answer_mode extractive, or auto replacing a reply) leads with the amount, date or
    # phrase of the evidence sentence that answers ("Answer: $0.3 million [2]" over the quoted sentence), as
    # questions about filings want; off, the whole sentence is the answer, as explanations want (measured on
    # 300 MedQuAD test questions with their page as the source: 153 answers at F1 >= 0.3 whole, 82 as spans)
    short_answers: bool = False

    def retrieval_changes(self) -> dict[str, Any]:
        """The retrieval settings this domain sets for itself, as `dataclasses.replace` takes them."""
        return {f: getattr(self, f) for f in RETRIEVAL_FIELDS if getattr(self, f) is not None}


def merge_domains(built: Mapping[str, DomainConfig], raw: Mapping[str, Any], retrieval_set: set[str],
                  ) -> dict[str, DomainConfig]:
    """The domains a config file gives: the shipped ones, each with what the file changes of it (`raw`: the
    file's `domains:` mapping, `built`: the same built), then the file's own; a shipped retrieval default
    is dropped where the file sets that retrieval field for every domain (`retrieval_set`) and not here."""
    out = dict(DEFAULT_DOMAINS)
    for name, domain in built.items():
        given = set((raw.get(name) or {}).keys())
        if name in DEFAULT_DOMAINS:
            shipped = DEFAULT_DOMAINS[name]
            domain = replace(shipped, **{f.name: getattr(domain, f.name) for f in fields(domain) if f.name in given})
        out[name] = domain
    for name, domain in out.items():
        given = set((raw.get(name) or {}).keys())
        dropped: dict[str, Any] = {f: None for f in RETRIEVAL_FIELDS if f in retrieval_set and f not in given}
        out[name] = replace(domain, **dropped) if dropped else domain
    return out


DEFAULT_DOMAINS: dict[str, DomainConfig] = {
    "medical": DomainConfig(
        name="medical",
        description="Biomedical literature (PubMedQA abstracts) and consumer-health pages (MedQuAD).",
        instruction=(
            "You are a careful medical information assistant. Answer accurately and concisely. "
            "This is information, not medical advice."
        ),
    ),
    "finance": DomainConfig(
        name="finance",
        description="Annual-report tables and text (TAT-QA) and SEC filings of public companies.",
        instruction=(
            "You are a financial analyst assistant. Answer precisely, giving numbers with their units "
            "and the period they refer to."
        ),
        # statements and tables are found by their row labels' words: BM25 counts twice in the fusion
        # (measured: bench/retrieval_filings.py and TAT-QA train questions, README "Retrieval")
        bm25_weight=2.0,
        short_answers=True,
    ),
}


__all__ = ["DEFAULT_DOMAINS", "RETRIEVAL_FIELDS", "DomainConfig", "merge_domains"]
