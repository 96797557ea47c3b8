"""PDF pages to text with pypdf, in a pool of processes, one per core: the slow part of preparing PDFs.

    from assistant.corpus.loaders.pdf import extract_pages
    pages = extract_pages([(Path("BOEING_2022_10K.pdf"), 190)], "layout", progress=True, desc="filings")
    pages[0].texts[0]        # the raw text of page 1, or None when pypdf cannot read that page

Layout-mode extraction takes ~0.1 s a page on one core, so the pages of all the PDFs passed together are
split into tasks of about PAGES_PER_TASK pages, and worker processes each open the file themselves (a pypdf
reader does not pickle) and return the texts of a task, so extraction scales with the cores.
One task's worth of pages, or one core, is extracted in this process: no pool to start for a one-page
upload. The caller opens each PDF first (to find a corrupt or locked file and its page count); a task
that fails here anyway (an exception, a worker that died) leaves its pages unreadable, never the rest.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.corpus.loaders import progress_bar

# Pages per task (~3 s of work): small enough that every core stays busy to the end even when one file is
# much longer than the others (a 500-page 10-K next to a 9-page release), large enough that handing a
# task to a worker costs little next to it.
PAGES_PER_TASK = 32


@dataclass
class Pages:
    """The raw text of each page of one PDF (None: unreadable), and why the tasks that failed did."""

    texts: list[str | None]
    failed: dict[int, str] = field(default_factory=dict)  # first page index of a failed task -> why


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask, e.g. a container's cpuset), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def page_text(reader: Any, index: int, mode: str) -> str | None:
    """The text of page `index`, or None when pypdf cannot get at it at all."""
    try:
        page = reader.pages[index]
    except Exception:  # a broken page object in an otherwise readable file
        return None
    try:
        return page.extract_text(extraction_mode=mode) if mode == "layout" else page.extract_text()
    except Exception:  # layout mode trips on some odd fonts; plain mode still gets the words
        try:
            return page.extract_text()
        except Exception:
            return None


def _reader(path: Path) -> Any:
    import pypdf

    return pypdf.PdfReader(path)  # tries the empty user password itself, as EDGAR PDFs need


# The reader a worker process opened last: its next task is most often more pages of the same file.
_worker_reader: tuple[tuple[str, int, int], Any] | None = None


def extract_range(path: str, start: int, stop: int, mode: str) -> list[str | None]:
    """A pool task, run in a worker process: the raw text of pages [start, stop) of the PDF at `path`."""
    global _worker_reader
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # as the parent does: no warning per odd object
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if _worker_reader is None or _worker_reader[0] != key:
        _worker_reader = None  # let the last file go before reading the next
        _worker_reader = (key, _reader(Path(path)))
    return [page_text(_worker_reader[1], index, mode) for index in range(start, stop)]


def _ranges(n_pages: int) -> list[tuple[int, int]]:
    """Evenly sized [start, stop) page ranges of at most PAGES_PER_TASK pages, covering `n_pages`."""
    n = -(-n_pages // PAGES_PER_TASK)
    return [(n_pages * i // n, n_pages * (i + 1) // n) for i in range(n)]


def _failed(pages: Pages, start: int, stop: int, exc: BaseException) -> range:
    pages.failed[start] = f"pages {start + 1}-{stop} could not be extracted ({exc.__class__.__name__}: {exc})"
    return range(start, stop)


def _extract_here(pdfs: Sequence[tuple[Path, int]], out: list[Pages], mode: str) -> Generator[int, None, None]:
    """Fill in `out` in this process, yielding once per page (for a progress bar)."""
    for (path, n_pages), pages in zip(pdfs, out, strict=True):
        try:
            reader = _reader(path)
        except Exception as exc:  # changed or gone since the caller opened it
            yield from _failed(pages, 0, n_pages, exc)
            continue
        for index in range(n_pages):
            pages.texts[index] = page_text(reader, index, mode)
            yield index


_LAUNCH = threading.Lock()


@contextmanager
def _workers_without_main() -> Iterator[None]:
    """Start pool processes that do not run the program's main script again, as multiprocessing has them do.

    Spawn and forkserver both re-run `__main__` in every worker: that costs each of the app's workers a
    gradio import (seconds, more than a short PDF's extraction), and runs a script that lacks the
    `if __name__ == "__main__":` guard twice. The tasks need nothing from it: they are this module's
    function. This patches a multiprocessing internal for the launch only, under a lock.
    """
    from multiprocessing import spawn

    with _LAUNCH:  # one launch at a time, so that the original always comes back
        original = spawn.get_preparation_data

        def without_main(name: str) -> dict[str, Any]:
            data = original(name)
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
            return data

        spawn.get_preparation_data = without_main
        try:
            yield
        finally:
            spawn.get_preparation_data = original


def _extract_in_pool(
    pdfs: Sequence[tuple[Path, int]], out: list[Pages], mode: str, workers: int
) -> Generator[int, None, None]:
    """Fill in `out` with `workers` processes, yielding once per page as the tasks finish."""
    import concurrent.futures as cf
    import multiprocessing

    # forkserver (or spawn), never fork: the app calls this from a thread of a process that runs torch and
    # onnxruntime threads, and a forked child can inherit their locks held. The fork server starts once
    # per process; the workers fork from its clean copy, cheaply.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    pool = None
    try:
        with _workers_without_main():  # workers start on submit
            pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))
            pool.submit(int).result()  # one worker up, or none can start here (no /dev/shm...): use this process
    except Exception as exc:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        logging.getLogger(__name__).warning("cannot start processes to extract PDF pages (%s): using one", exc)
        yield from _extract_here(pdfs, out, mode)
        return
    finished = False
    try:
        futures: dict[cf.Future[list[str | None]], tuple[Pages, int, int]] = {}
        refused: list[tuple[Pages, int, int, Exception]] = []
        with _workers_without_main():
            for (path, n_pages), pages in zip(pdfs, out, strict=True):
                for start, stop in _ranges(n_pages):
                    try:
                        futures[pool.submit(extract_range, str(path), start, stop, mode)] = (pages, start, stop)
                    except Exception as exc:  # the pool broke already (a worker died)
                        refused.append((pages, start, stop, exc))
        for pages, start, stop, error in refused:
            yield from _failed(pages, start, stop, error)
        for future in cf.as_completed(futures):
            pages, start, stop = futures[future]
            try:
                texts = future.result()
                if len(texts) != stop - start:
                    raise ValueError(f"{len(texts)} pages came back, not {stop - start}")
            except Exception as exc:  # raised in the task, or BrokenProcessPool when its worker died
                yield from _failed(pages, start, stop, exc)
                continue
            pages.texts[start:stop] = texts
            yield from range(start, stop)
        finished = True
    finally:
        # interrupted (Ctrl-C): stop the running tasks too, rather than wait seconds for them to end
        # (the private process table is what Python 3.14's terminate_workers() uses)
        running = [] if finished else list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=not running, cancel_futures=True)
        for process in running:
            process.terminate()


def extract_pages(pdfs: Sequence[tuple[Path, int]], mode: str, *, progress: bool, desc: str) -> list[Pages]:
    """The page texts of each (PDF, page count) in `pdfs`, in `mode` ('layout' or 'plain'), in their order.

    A pool of processes does it unless all the pages make one task or this process has one core.
    """
    out = [Pages([None] * n_pages) for _, n_pages in pdfs]
    total = sum(n_pages for _, n_pages in pdfs)
    workers = min(cpu_count(), sum(len(_ranges(n)) for _, n in pdfs)) if total > PAGES_PER_TASK else 1
    done = _extract_in_pool(pdfs, out, mode, workers) if workers > 1 else _extract_here(pdfs, out, mode)
    try:
        for _ in progress_bar(done, enabled=progress and total > 20, desc=desc, unit="page", total=total):
            pass
    finally:
        done.close()  # on an interrupt, cancel the tasks not started (the pool would run them all first)
    return out
