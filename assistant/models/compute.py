"""One thread runs the in-process engines' computations: llama.cpp's evaluations and transformers' prompt reads.

    logits = on_compute_thread(llm.eval, ids)      # from any thread: runs on the compute thread, waits

llama.cpp (built with OpenMP) and torch spread each computation over an OpenMP thread team, and libgomp
keeps one team per calling thread. A web server answers each question on one of its worker threads, so
the teams pile up; once libgomp manages more threads than the machine has cores it stops spin-waiting at
its barriers (its "throttled" spin), and llama.cpp, which meets a barrier at every operation of every
token, slows down several times: a 123-token reply took 4.0 s from a worker thread against 1.6 s from the
thread that loaded the model (2 cores, tests/test_compute.py measures the difference). Calls into the
engines are serialised by their locks anyway, so one thread that runs them all loses no parallelism; the
hand-over costs two thread switches per call (~0.1 ms).

What runs here must not wait for anything another caller could hold (a lock, a queue): it only computes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
NAME = "assistant-compute"
_POOL: list[ThreadPoolExecutor] = []
_MAKING = threading.Lock()


def on_compute_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` on the compute thread (directly when called from it); its result or exception."""
    if threading.current_thread().name.startswith(NAME):
        return fn(*args, **kwargs)
    if not _POOL:
        with _MAKING:
            if not _POOL:
                _POOL.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix=NAME))
    return _POOL[0].submit(fn, *args, **kwargs).result()


__all__ = ["NAME", "on_compute_thread"]
