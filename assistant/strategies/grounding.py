"""The last step of a retrieval strategy's finish: check the answer's numbers against its sources (re-citing
where another source shows them), then quote the evidence of each source it cites.

    from assistant.strategies.grounding import ground
    ground(answer, embedder=retriever.embedder)   # answer.text / citations / checks / warnings / grounded / evidence

`checks` does the first part (numbers and years, see assistant.strategies.numbers for what is tolerated),
`evidence` the second; this module only puts them in order on an Answer. Tests:
`.venv/bin/pytest tests/test_grounding.py -q`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from assistant.strategies.checks import check_claims
from assistant.strategies.evidence import find_evidence
from assistant.types import Answer

if TYPE_CHECKING:
    from assistant.embeddings import Embedder


def ground(answer: Answer, embedder: Embedder | None = None) -> Answer:
    """Check and quote: fills answer.checks, .grounded and .evidence, re-cites answer.text where a number
    stands in another source than the cited one and warns about every number no source shows."""
    if not answer.sources or not answer.text.strip():
        return answer
    start = time.perf_counter()
    report = check_claims(answer.text, answer.sources, answer.question)
    answer.text, answer.citations = report.text, report.citations
    answer.checks, answer.grounded = report.checks, report.grounded
    answer.warnings.extend(report.warnings)
    answer.evidence = find_evidence(answer.question, answer.text, answer.sources, answer.citations, embedder)
    answer.timings["check"] = time.perf_counter() - start
    return answer


__all__ = ["ground"]
