"""assistant: answers "RAG or finetune?" for medical and financial documents, with measurements.

This module is the Python API; the CLI (`assistant ...`) and the app (`app.py`) use nothing else.

    from assistant import Assistant
    a = Assistant.load("medical")
    ans = a.ask("Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?")
    print(ans.text)
    for i, s in enumerate(ans.sources, 1):
        print(i, s.title, s.locator, round(s.score, 3))

    from assistant import load_config, build, prepare_corpus
    config = load_config()
    prepare_corpus("pubmedqa", config)
    build("medical", config)           # prepares what is missing, then embeds only new or changed documents

Names are resolved lazily (PEP 562), so `import assistant` and `assistant --help` stay fast.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import TYPE_CHECKING, Any

# torch's bf16 matmuls on a CPU go through oneDNN, which keeps a compiled kernel for every matrix shape it
# meets, up to 1,024 in each of two caches (oneDNN's and torch's ideep). Every prompt length is a new set of
# shapes, so a long-lived process grew ~4 MB for each distinct prompt length it read, without bound in
# practice (bench/memory.py: +134 MB over 30 RAG answers, +35 MB with these caps). A few entries hold a
# forward pass's shapes just as fast. Set before torch builds its first kernel (read once, then); a value
# already in the environment is kept.
for _cache in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
    os.environ.setdefault(_cache, "16")

# bitsandbytes logs a warning about an optional CPU kernel package on every import; it is noise here.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

__version__ = "0.1.0"

# public name -> (module, attribute)
_EXPORTS: dict[str, tuple[str, str]] = {
    "Assistant": ("assistant.api", "Assistant"),
    "PROJECT_ROOT": ("assistant.config", "PROJECT_ROOT"),
    "Config": ("assistant.config", "Config"),
    "load_config": ("assistant.config", "load_config"),
    "dump_config": ("assistant.config", "dump_config"),
    "Answer": ("assistant.types", "Answer"),
    "Check": ("assistant.types", "Check"),
    "Evidence": ("assistant.types", "Evidence"),
    "Document": ("assistant.types", "Document"),
    "QAItem": ("assistant.types", "QAItem"),
    "Source": ("assistant.types", "Source"),
    "AssistantError": ("assistant.errors", "AssistantError"),
    "ConfigError": ("assistant.errors", "ConfigError"),
    "InputError": ("assistant.errors", "InputError"),
    "ModelUnavailableError": ("assistant.errors", "ModelUnavailableError"),
    "NotFoundError": ("assistant.errors", "NotFoundError"),
    "PrepareReport": ("assistant.corpus", "PrepareReport"),
    "Recipe": ("assistant.corpus", "Recipe"),
    "add_recipe": ("assistant.corpus", "add_recipe"),
    "corpora_for": ("assistant.corpus", "corpora_for"),
    "corpus_manifest": ("assistant.corpus", "corpus_manifest"),
    "get_recipe": ("assistant.corpus", "get_recipe"),
    "is_prepared": ("assistant.corpus", "is_prepared"),
    "is_stale": ("assistant.corpus", "is_stale"),
    "list_recipes": ("assistant.corpus", "list_recipes"),
    "load_documents": ("assistant.corpus", "load_documents"),
    "load_qa": ("assistant.corpus", "load_qa"),
    "prepare_corpus": ("assistant.corpus", "prepare"),
    "BuildReport": ("assistant.index", "BuildReport"),
    "IndexStatus": ("assistant.index", "IndexStatus"),
    "index_status": ("assistant.index", "index_status"),
    "list_indexes": ("assistant.index", "list_indexes"),
    "remove_index": ("assistant.index", "remove_index"),
    "SUPPORTED_FILES": ("assistant.corpus.loaders.files", "SUPPORTED"),
    "SUPPORTED_LABEL": ("assistant.corpus.loaders.files", "SUPPORTED_LABEL"),
    "BuildResult": ("assistant.jobs.documents", "BuildResult"),
    "BackgroundBuild": ("assistant.background", "BackgroundBuild"),
    "import_transformers": ("assistant.hub", "import_transformers"),
    "CorpusProgress": ("assistant.background", "CorpusProgress"),
    "add_documents": ("assistant.jobs.documents", "add_documents"),
    "build": ("assistant.jobs.documents", "build"),
    "update_index": ("assistant.jobs.documents", "update"),
    "train": ("assistant.jobs.train", "train"),
    "evaluate": ("assistant.evaluation.runner", "evaluate"),
    "rescore": ("assistant.evaluation.runner", "rescore"),
    "advise": ("assistant.evaluation.advise", "advise"),
    "sweep_data": ("assistant.jobs.sweep", "sweep_data"),
    "summarize": ("assistant.evaluation.report", "summarize"),
    "elo_table": ("assistant.evaluation.report", "elo_table"),
    "report_run": ("assistant.evaluation.report", "report_run"),
    "RunStore": ("assistant.evaluation.store", "RunStore"),
    "Record": ("assistant.evaluation.store", "Record"),
    "Run": ("assistant.evaluation.store", "Run"),
    "Vote": ("assistant.evaluation.store", "Vote"),
    "train_router": ("assistant.jobs.router", "train_router"),
    "eval_router": ("assistant.jobs.router", "eval_router"),
    "show_router": ("assistant.routing", "show_router"),
    "TrainingConfig": ("assistant.config", "TrainingConfig"),
    "AdapterInfo": ("assistant.models.adapters", "AdapterInfo"),
    "list_adapters": ("assistant.models.adapters", "list_adapters"),
    "get_adapter": ("assistant.models.adapters", "get_adapter"),
    "check_question": ("assistant.strategies", "check_question"),
    "delete_adapter": ("assistant.training", "delete_adapter"),
    "merge_adapter": ("assistant.training", "merge_adapter"),
    "DataCheckReport": ("assistant.corpus.check", "DataCheckReport"),
    "ChatExport": ("assistant.training.export_chat", "ChatExport"),
    "check_data": ("assistant.jobs.data", "check_data"),
    "export_data": ("assistant.jobs.data", "export_data"),
    "synthesize": ("assistant.jobs.synth", "synthesize"),
    "export_adapter": ("assistant.jobs.export", "export_adapter"),
    "check_export": ("assistant.jobs.export", "check_export"),
    "export_tolerance": ("assistant.jobs.export", "tolerance_for"),
}

__all__ = [
    "PROJECT_ROOT",
    "SUPPORTED_FILES",
    "SUPPORTED_LABEL",
    "AdapterInfo",
    "Answer",
    "Assistant",
    "AssistantError",
    "BackgroundBuild",
    "BuildReport",
    "BuildResult",
    "ChatExport",
    "Check",
    "Config",
    "ConfigError",
    "CorpusProgress",
    "DataCheckReport",
    "Document",
    "Evidence",
    "IndexStatus",
    "InputError",
    "ModelUnavailableError",
    "NotFoundError",
    "PrepareReport",
    "QAItem",
    "Recipe",
    "Record",
    "Run",
    "RunStore",
    "Source",
    "TrainingConfig",
    "Vote",
    "add_documents",
    "add_recipe",
    "advise",
    "build",
    "check_data",
    "check_export",
    "check_question",
    "corpora_for",
    "corpus_manifest",
    "delete_adapter",
    "dump_config",
    "elo_table",
    "eval_router",
    "evaluate",
    "export_adapter",
    "export_data",
    "export_tolerance",
    "get_adapter",
    "get_recipe",
    "import_transformers",
    "index_status",
    "is_prepared",
    "is_stale",
    "list_adapters",
    "list_indexes",
    "list_recipes",
    "load_config",
    "load_documents",
    "load_qa",
    "merge_adapter",
    "prepare_corpus",
    "remove_index",
    "report_run",
    "rescore",
    "show_router",
    "summarize",
    "sweep_data",
    "synthesize",
    "train",
    "train_router",
    "update_index",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value  # resolve once
        return value
    raise AttributeError(f"module 'assistant' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from assistant.api import Assistant
    from assistant.config import PROJECT_ROOT, Config, TrainingConfig, dump_config, load_config
    from assistant.corpus import (
        PrepareReport,
        Recipe,
        add_recipe,
        corpora_for,
        corpus_manifest,
        get_recipe,
        is_prepared,
        is_stale,
        list_recipes,
        load_documents,
        load_qa,
    )
    from assistant.corpus import prepare as prepare_corpus
    from assistant.corpus.check import DataCheckReport
    from assistant.corpus.loaders.files import SUPPORTED as SUPPORTED_FILES
    from assistant.corpus.loaders.files import SUPPORTED_LABEL
    from assistant.errors import AssistantError, ConfigError, InputError, ModelUnavailableError, NotFoundError
    from assistant.evaluation.advise import advise
    from assistant.evaluation.report import elo_table, report_run, summarize
    from assistant.evaluation.runner import evaluate, rescore
    from assistant.evaluation.store import Record, Run, RunStore, Vote
    from assistant.index import BuildReport, IndexStatus, index_status, list_indexes, remove_index
    from assistant.jobs.data import check_data, export_data
    from assistant.jobs.documents import BuildResult, add_documents, build
    from assistant.jobs.documents import update as update_index
    from assistant.jobs.export import check_export, export_adapter
    from assistant.jobs.export import tolerance_for as export_tolerance
    from assistant.jobs.router import eval_router, train_router
    from assistant.jobs.sweep import sweep_data
    from assistant.jobs.synth import synthesize
    from assistant.jobs.train import train
    from assistant.models.adapters import AdapterInfo, get_adapter, list_adapters
    from assistant.routing import show_router
    from assistant.strategies import check_question
    from assistant.training import delete_adapter, merge_adapter
    from assistant.training.export_chat import ChatExport
    from assistant.types import Answer, Check, Document, Evidence, QAItem, Source
