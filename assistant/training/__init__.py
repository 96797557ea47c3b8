"""Adapters from the domain corpus: continued pretraining (CPT) and QLoRA instruction tuning (SFT, RAFT).

    from assistant.training import train_cpt, train_sft, list_adapters, merge_adapter
    train_sft("medical", "medical-sft", config)            # adapters/medical-sft/ (peft + training.json + loss.png)

`data` builds examples (packing, chat rendering, leakage check), `trainer` is the one (Q)LoRA loop
(accelerate) with `checkpoints` (resume) and `record` (training.json, loss.png, the adapter folder),
`adapters` deletes and merges finished adapters, `entry` holds the two entry points. Listing, reading
and attaching adapters is the model layer's (`assistant.models.adapters`), re-exported here. Tests: `.venv/bin/pytest tests/training -q`.
"""

from __future__ import annotations

from assistant.models.adapters import AdapterInfo, attach, base_fingerprint, get_adapter, list_adapters
from assistant.training.adapters import delete_adapter, merge_adapter
from assistant.training.entry import PassagesFor, qa_train_items, train_cpt, train_sft

__all__ = [
    "AdapterInfo",
    "PassagesFor",
    "attach",
    "base_fingerprint",
    "delete_adapter",
    "get_adapter",
    "list_adapters",
    "merge_adapter",
    "qa_train_items",
    "train_cpt",
    "train_sft",
]
