"""Tiny fixture documents for index and retrieval tests: distinct vocabularies, two companies, several pages."""

from __future__ import annotations

from assistant.types import Document

TOPICS = {
    "mito": "Mitochondria remodel lace plant leaves during programmed cell death. Perforation forms between veins.",
    "statin": "Statins lower cholesterol and reduce cardiovascular mortality in elderly patients with diabetes.",
    "asthma": "Inhaled corticosteroids control asthma symptoms in children and reduce emergency admissions.",
    "malaria": "Artemisinin combination therapy cures falciparum malaria; mosquito nets prevent transmission.",
    "revenue": "Total revenue grew to 66.6 billion dollars, driven by commercial airplane deliveries.",
    "dividend": "The board declared a quarterly dividend and repurchased common stock during the fiscal year.",
}


def long_text(seed: str, sentences: int = 40) -> str:
    """A text long enough to need several chunks at small chunk sizes."""
    return " ".join(f"{seed} sentence number {i} talks about {seed} details." for i in range(sentences))


def medical_docs() -> list[Document]:
    return [
        Document(
            id=f"med:{key}",
            corpus="med",
            title=f"Study on {key}",
            text=text,
            locator=f"https://example.org/{key}",
        )
        for key, text in TOPICS.items()
        if key not in ("revenue", "dividend")
    ]


def finance_docs() -> list[Document]:
    """The same two topics in two companies' filings, one page each: scoping must keep them apart."""
    docs = []
    for company in ("BOEING", "ACME"):
        for page, key in enumerate(("revenue", "dividend"), start=1):
            docs.append(
                Document(
                    id=f"fin:{company}:{page}",
                    corpus="filings",
                    title=f"{company} 10-K 2022, page {page}",
                    text=f"{company} annual report. {TOPICS[key]}",
                    locator=f"{company}_10K_2022.pdf, page {page}",
                    # the keys the files loader writes; "file" once clashed with np.savez(file=...)
                    metadata={"company": company, "document": f"{company}_10K_2022", "file": f"{company}_10K_2022.pdf", "page": page},
                )
            )
    return docs


def all_docs() -> list[Document]:
    return medical_docs() + finance_docs()
