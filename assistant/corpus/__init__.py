"""Corpora: recipes name the source files of a corpus, loaders turn them into Document and QAItem records.

    from assistant import load_config
    from assistant.corpus import prepare, load_documents, load_qa, corpora_for
    config = load_config()
    report = prepare("pubmedqa", config)           # or: assistant corpus prepare pubmedqa [--from PATH]
    print(report.summary())
    for name in corpora_for("medical", config):    # ['medquad', 'pubmedqa']
        docs = list(load_documents(name, config))
    test = load_qa("pubmedqa", config, split="test")

Modules: `recipes` (corpora/<name>/recipe.yaml: find, validate, add), `store` (prepare, the JSONL files
and the manifest), `loaders` (the registry and one module per source format).
"""

from __future__ import annotations

from assistant.corpus.loaders import LOADERS, Loader, LoadResult, get_loader, register_loader
from assistant.corpus.recipes import (
    Recipe,
    add_recipe,
    corpora_for,
    get_recipe,
    list_recipes,
    load_recipe,
    source_paths,
)
from assistant.corpus.store import (
    PrepareReport,
    corpus_dir,
    corpus_manifest,
    is_prepared,
    is_stale,
    load_documents,
    load_qa,
    prepare,
    read_sources,
    sha256_file,
)

__all__ = [
    "LOADERS",
    "LoadResult",
    "Loader",
    "PrepareReport",
    "Recipe",
    "add_recipe",
    "corpora_for",
    "corpus_dir",
    "corpus_manifest",
    "get_loader",
    "get_recipe",
    "is_prepared",
    "is_stale",
    "list_recipes",
    "load_documents",
    "load_qa",
    "load_recipe",
    "prepare",
    "read_sources",
    "register_loader",
    "sha256_file",
    "source_paths",
]
