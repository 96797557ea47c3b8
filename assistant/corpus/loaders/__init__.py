"""The loader registry: one function per source format, turning files into Document and QAItem records.

    from assistant.corpus.loaders import LOADERS, register_loader, LoadResult

    @register_loader("myformat")
    def load_myformat(sources: list[Path], recipe: Recipe, progress: bool) -> LoadResult: ...

A recipe names its loader (`loader: pubmedqa`); `assistant.corpus.prepare` looks it up here. The built-in
loaders (pubmedqa, medquad, tatqa, files) register themselves the same way an extra one would, when this
package is imported. Loaders only read; `assistant.corpus.store` dedupes, splits into files and writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from assistant.errors import unknown
from assistant.types import Document, QAItem

if TYPE_CHECKING:
    from assistant.corpus.recipe import Recipe

# Beyond this many warnings of one kind a loader reports the rest as a count: a folder of 5,000
# images should not print 5,000 lines.
MAX_WARNINGS_PER_REASON = 20
T = TypeVar("T")


@dataclass
class LoadResult:
    """What a loader returns. `documents` and `qa` may be lists or lazy iterables (consumed once)."""

    documents: Iterable[Document]
    qa: Iterable[QAItem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> count
    warnings: list[str] = field(default_factory=list)

    def skip(self, reason: str, warning: str | None = None) -> None:
        """Count one skipped item; keep its warning unless this reason already has many."""
        self.skipped[reason] += 1
        if warning and self.skipped[reason] <= MAX_WARNINGS_PER_REASON:
            self.warnings.append(warning)
        elif warning and self.skipped[reason] == MAX_WARNINGS_PER_REASON + 1:
            self.warnings.append(f"more items skipped for '{reason}' (see the skipped counts)")


Loader = Callable[[list[Path], "Recipe", bool], LoadResult]
LOADERS: dict[str, Loader] = {}


def register_loader(name: str) -> Callable[[Loader], Loader]:
    """Decorator: make `fn` available to recipes as `loader: <name>`."""

    def decorate(fn: Loader) -> Loader:
        LOADERS[name] = fn
        return fn

    return decorate


def get_loader(name: str) -> Loader:
    if name not in LOADERS:
        raise unknown("loader", name, list(LOADERS))
    return LOADERS[name]


def files_under(sources: list[Path], suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """The files among `sources`, with folders walked recursively (hidden entries skipped), in a stable order."""
    found: list[Path] = []
    for src in sources:
        if src.is_dir():
            for path in sorted(src.rglob("*")):
                rel = path.relative_to(src)
                if path.is_file() and not any(part.startswith(".") for part in rel.parts):
                    found.append(path)
        else:
            found.append(src)
    if suffixes is not None:
        found = [p for p in found if p.name.lower().endswith(suffixes)]
    return found


def progress_bar(
    items: Iterable[T], *, enabled: bool, desc: str, unit: str = "it", total: int | None = None, leave: bool = True
) -> Iterable[T]:
    """`items` wrapped in a tqdm progress bar (on stderr) when `enabled`, else `items` unchanged."""
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit=unit, total=total, leave=leave, dynamic_ncols=True)


# The built-in loaders register on import, exactly like an extra one would.
from assistant.corpus.loaders import files, medquad, pubmedqa, tatqa  # noqa: E402

__all__ = ["LOADERS", "LoadResult", "Loader", "files", "get_loader", "medquad", "pubmedqa", "register_loader", "tatqa"]
