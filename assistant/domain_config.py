"""`domains:` in assistant.yaml: the domains the assistant answers in, each with its instruction and,
optionally, its own generation and embedding models.

    domains: {medical: {model: /models/BioMistral-7B.Q4_K_M.gguf, embedding: /models/S-PubMedBert-MS-MARCO}}
"""

from __future__ import annotations

from dataclasses import dataclass


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
    ),
}


__all__ = ["DEFAULT_DOMAINS", "DomainConfig"]
