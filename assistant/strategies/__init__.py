"""Answer strategies, the rungs of the ladder: base, fewshot:K, cot, rag, adapter:NAME, rag+adapter:NAME.

    from assistant.strategies import get_strategy, AskOptions
    strategy = get_strategy("rag")
    prepared = strategy.prepare(ctx, "Do statins reduce mortality?", AskOptions())   # retrieval, prompt
    answer = strategy.finish(ctx, prepared, generation)                              # citations, warnings

`core` holds what all share (options, context, Prepared, the registry), `builtin` the strategies,
`citations` the checks of RAG citation markers, `grounding` the last finish step of a retrieval strategy:
`checks` (numbers and years against the sources, parsed by `numbers`) and `evidence` (the quotes); `modes`
the answer modes (generate | extractive | auto) over `extract` and `derive` (table cells read by `tables`).
`Assistant` (assistant.api) routes "auto" and runs the one generation between prepare and finish. Tests: `.venv/bin/pytest tests/test_strategies.py -q`.
"""

from __future__ import annotations

from assistant.strategies import builtin
from assistant.strategies.available import FEWSHOT_K, available_strategies, expand_fewshot
from assistant.strategies.builtin import fit_sources, rag_prompt
from assistant.strategies.checks import check_claims
from assistant.strategies.citations import attribute, check_citations
from assistant.strategies.core import (
    AUTO,
    DESCRIPTIONS,
    STRATEGIES,
    AskOptions,
    Prepared,
    Strategy,
    StrategyContext,
    check_question,
    check_spec,
    get_strategy,
    register_strategy,
)
from assistant.strategies.evidence import find_evidence
from assistant.strategies.grounding import ground

__all__ = ["AUTO", "DESCRIPTIONS", "FEWSHOT_K", "STRATEGIES", "AskOptions", "Prepared", "Strategy", "StrategyContext",
           "attribute", "available_strategies", "builtin", "check_citations", "check_claims", "check_question", "check_spec",
           "expand_fewshot", "find_evidence", "fit_sources", "get_strategy", "ground", "rag_prompt", "register_strategy"]
