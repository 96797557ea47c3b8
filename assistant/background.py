"""Build the domains' indexes in a background thread, corpus by corpus, so the app answers while it builds.

    from assistant.background import BackgroundBuild
    job = BackgroundBuild(["medical", "finance"], config, on_step=lambda domain: ...)
    job.start()                      # returns at once; `assistant serve --build` does this
    job.progress()                   # [CorpusProgress(domain, corpus, state, done, total, ...), ...]
    job.wait()                       # until every domain is built (or failed)

A domain's corpora are prepared and indexed one at a time, smallest sources first: after the first step
the domain's index holds that corpus and can answer (its answers say which corpora are still missing),
the next step adds the next corpus to the same index, and so on. Each step is the ordinary incremental
build (`build_index`), so an interrupted run resumes where it stopped and never duplicates, and a domain
whose index is already complete costs one quick no-op check. A corpus that fails (a missing source, a
corrupt file, a full disk) is marked failed with its one-line message and logged; the other corpora and
domains go on, and the app stays up.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from assistant import hub
from assistant.config import Config
from assistant.corpus import corpora_for, get_recipe, is_prepared, is_stale, prepare, source_paths
from assistant.errors import AssistantError
from assistant.index import build_index, index_status

log = logging.getLogger(__name__)

State = Literal["waiting", "preparing", "indexing", "ready", "failed"]


@dataclass
class CorpusProgress:
    domain: str
    corpus: str
    state: State = "waiting"
    done: int = 0  # chunks embedded in this step
    total: int = 0  # estimated chunks to embed in this step (0: not known yet)
    message: str = ""  # why it failed, or what it is doing
    seconds: float = 0.0  # time this corpus's preparing and indexing took

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _source_bytes(corpus: str, config: Config) -> float:
    """How much there is to read for `corpus` (a missing source sorts last; its prepare says why)."""
    try:
        paths = source_paths(get_recipe(corpus, config), config)
    except AssistantError:
        return float("inf")
    total = 0
    for path in paths:
        files = path.rglob("*") if path.is_dir() else [path]
        total += sum(f.stat().st_size for f in files if f.is_file())
    return total


def build_order(domain: str, config: Config) -> list[str]:
    """The domain's corpora, the one quickest to make answerable (least source data) first."""
    return sorted(corpora_for(domain, config), key=lambda c: (_source_bytes(c, config), c))


class BackgroundBuild:
    """Prepares and indexes `domains` (in order) in one daemon thread; `progress()` is safe from any thread."""

    def __init__(
        self,
        domains: Sequence[str],
        config: Config,
        *,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.domains = list(domains)
        self.on_step = on_step  # called with the domain after each step that changed its index
        self._lock = threading.Lock()
        self._items: list[CorpusProgress] = []
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        for domain in self.domains:
            try:
                order = build_order(domain, config)
            except AssistantError as exc:
                self._items.append(CorpusProgress(domain, "—", "failed", message=str(exc)))
                continue
            self._items += [CorpusProgress(domain, corpus) for corpus in order]

    # ------------------------------------------------------------------ reading
    def progress(self) -> list[CorpusProgress]:
        with self._lock:
            return [dataclasses.replace(item) for item in self._items]

    def finished(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _update(self, item: CorpusProgress, **changes: object) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(item, key, value)

    # ------------------------------------------------------------------ running
    def start(self) -> BackgroundBuild:
        hub.import_transformers()  # not for the first time inside a thread: see its docstring
        self._thread = threading.Thread(target=self.run, name="index-build", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Build every domain, one corpus at a time (what `start` runs in its thread)."""
        try:
            for domain in self.domains:
                items = [i for i in self._items if i.domain == domain and i.state != "failed"]
                if items:
                    self._build_domain(domain, items)
        finally:
            self._done.set()

    def _build_domain(self, domain: str, items: list[CorpusProgress]) -> None:
        try:
            held = set(index_status(domain, self.config).corpora)
        except AssistantError:
            held = set()
        names = {i.corpus for i in items}
        included: list[str] = []
        refreshed = False  # a corpus was (re-)prepared in this run: the index must be synced with it
        for item in items:
            start = time.perf_counter()
            try:
                if not is_prepared(item.corpus, self.config) or is_stale(item.corpus, self.config):
                    self._update(item, state="preparing", message="reading the sources")
                    prepare(item.corpus, self.config, progress=False)
                    refreshed = True
                included.append(item.corpus)
                # Corpora the index already holds stay in every step: a step must never drop them.
                wanted = sorted({*included, *(held & names)})
                if set(wanted) <= held and not refreshed:
                    self._update(item, state="ready", message="already indexed", seconds=time.perf_counter() - start)
                    continue
                self._update(item, state="indexing", message="loading the embedder, reading the index")
                def progress(done: int, total: int, item: CorpusProgress = item) -> None:
                    self._update(item, done=done, total=total)

                report = build_index(domain, self.config, corpora=wanted, progress=False, on_progress=progress)
                held = set(wanted)
                self._update(item, state="ready", message=f"{report.n_chunks} chunks in the index",
                             seconds=time.perf_counter() - start)
                log.info("index '%s' now holds %s (%d chunks, %.0f s)", domain, ", ".join(wanted),
                         report.n_chunks, time.perf_counter() - start)
            except Exception as exc:  # a failed corpus must not take the app (or the other corpora) down
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if item.corpus in included:
                    included.remove(item.corpus)
                self._update(item, state="failed", message=first, seconds=time.perf_counter() - start)
                log.error("building index '%s' with corpus '%s' failed: %s", domain, item.corpus, first,
                          exc_info=not isinstance(exc, AssistantError))
                continue
            if self.on_step is not None:
                try:
                    self.on_step(domain)
                except Exception:  # the app's reaction to a finished step is best effort
                    log.exception("after indexing '%s' for '%s'", item.corpus, domain)
