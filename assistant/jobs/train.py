"""The training job: prepare what is missing, then train an adapter (`assistant train cpt | sft`).

    from assistant import train, load_config
    train("sft", "medical", "medical-sft", load_config(), max_examples=2000)
    train("sft", "medical", "medical-raft", load_config(), with_context=True)   # RAFT passages from the index
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from assistant.config import Config
from assistant.corpus import corpora_for
from assistant.errors import InputError, NotFoundError
from assistant.index import list_indexes
from assistant.jobs.documents import ensure_prepared
from assistant.types import QAItem, Source

if TYPE_CHECKING:
    from assistant.training import AdapterInfo


def index_passages(domain: str, config: Config, n: int) -> Callable[[QAItem], tuple[list[Source], list[Source]]]:
    """RAFT passages from the domain's index: (gold, distractors) for a training question.

    Distractors are what retrieval returns for the question that is not its own document: the hard
    negatives the adapter will meet at answer time. When retrieval misses the gold document, its own
    text is the gold passage.
    """
    from assistant.corpus import load_documents
    from assistant.fusion import merge_by_document
    from assistant.retrieval import Retriever

    if domain not in {s.name for s in list_indexes(config)}:
        raise NotFoundError(f"--with-context retrieves from the '{domain}' index: build it first with `assistant index build {domain}`")
    retriever = Retriever.open(domain, config)
    docs = {d.id: d for c in corpora_for(domain, config) for d in load_documents(c, config)}

    def passages(item: QAItem) -> tuple[list[Source], list[Source]]:
        found = merge_by_document(retriever.retrieve(item.question, top_k=n + 4))
        gold = [s for s in found if s.doc_id in item.doc_ids]
        if not gold:
            gold = [
                Source(doc_id=d.id, title=d.title, locator=d.locator, score=0.0, snippet=d.text, corpus=d.corpus)
                for d in (docs.get(i) for i in item.doc_ids)
                if d is not None
            ][:1]
        return gold, [s for s in found if s.doc_id not in item.doc_ids]

    return passages


def train(
    kind: Literal["cpt", "sft"],
    domain: str,
    name: str,
    config: Config,
    *,
    with_context: bool = False,
    progress: bool = True,
    **options: Any,
) -> AdapterInfo:
    """Prepare what is missing, then train adapter `name`: `kind` "cpt" (raw text) or "sft" (QA pairs).

    `with_context` (sft only) trains RAFT-style on passages retrieved from the domain's index; `options`
    go to `train_cpt` / `train_sft` (base, max_examples, fraction, resume, overwrite, replay and any
    TrainingConfig field such as max_steps or quantize).
    """
    from assistant.training import train_cpt, train_sft

    if kind not in ("cpt", "sft"):
        raise InputError(f"training kind must be 'cpt' or 'sft', got '{kind}'")
    corpora_for(domain, config)  # an unknown domain or corpus fails before anything loads
    ensure_prepared(domain, config, progress=progress)
    if kind == "cpt":
        if with_context:
            raise InputError("--with-context applies to `train sft` (RAFT), not to continued pretraining")
        return train_cpt(domain, name, config, **options)
    passages_for = None
    if with_context:
        n = options.get("passages") or config.training.passages
        passages_for = index_passages(domain, config, n)
    return train_sft(domain, name, config, passages_for=passages_for, **options)
