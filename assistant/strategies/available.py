"""Which strategy specs can answer in a domain now: the one list the app's menus, the router and the
evaluation read (through `Assistant.available_strategies()`).

    available_strategies("medical", config)
    # ["auto", "base", "fewshot:3", "cot", "rag", "adapter:medical-sft", "rag+adapter:medical-sft"]

fewshot needs the domain's training questions, rag an index, adapter:NAME a trained adapter of the domain
(or of no domain), rag+adapter both. Every fewshot:K with K in FEWSHOT_K is available when fewshot:3 is
(`expand_fewshot`); the menus list fewshot:3 alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from assistant.config import Config
from assistant.errors import AssistantError
from assistant.strategies.core import AUTO

FEWSHOT_K = range(1, 7)  # the K of fewshot:K a user may pick
_HAS_TRAIN_QA: set[tuple[str, str]] = set()  # (home, domain): once a domain has training questions, it keeps them
_LOCK = threading.Lock()


def has_train_qa(domain: str, config: Config) -> bool:
    """fewshot:K needs the domain's training questions; an uploads-only domain has none."""
    from assistant.corpus import corpora_for, is_prepared, load_qa

    key = (str(config.home), domain)
    with _LOCK:
        if key in _HAS_TRAIN_QA:
            return True
    try:
        found = any(is_prepared(c, config) and load_qa(c, config, "train") for c in corpora_for(domain, config))
    except AssistantError:
        return False
    if found:
        with _LOCK:
            _HAS_TRAIN_QA.add(key)
    return found


def is_indexed(domain: str, config: Config) -> bool:
    from assistant.index import list_indexes

    try:
        return domain in {s.name for s in list_indexes(config)}
    except AssistantError:
        return False


def available_strategies(domain: str, config: Config) -> list[str]:
    """The specs that can answer in `domain` now, "auto" first, in the ladder's order."""
    from assistant.models.adapters import list_adapters

    names = [AUTO, "base", *(["fewshot:3"] if has_train_qa(domain, config) else []), "cot"]
    indexed = is_indexed(domain, config)
    names += ["rag"] if indexed else []
    adapters = [a.name for a in list_adapters(config) if a.domain in (None, domain)]
    names += [f"adapter:{n}" for n in adapters]
    names += [f"rag+adapter:{n}" for n in adapters] if indexed else []
    return names


def expand_fewshot(specs: Iterable[str]) -> list[str]:
    """`specs` with fewshot:3 standing for every fewshot:K."""
    out: list[str] = []
    for spec in specs:
        out += [f"fewshot:{k}" for k in FEWSHOT_K] if spec == "fewshot:3" else [spec]
    return out


__all__ = ["FEWSHOT_K", "available_strategies", "expand_fewshot", "has_train_qa", "is_indexed"]
