"""Speed measurements kept per machine (the dtype check, the engines' rates), and whether other processes
disturbed them.

    with OtherLoad() as load:
        seconds = time_it()
    record(cache_dir, "dtype.json", key, {"dtype": "bfloat16", **load.fields()})
    recorded(cache_dir, "dtype.json", key)     # None when missing, or measured while the machine was busy

A measurement taken while other processes kept the cores busy can be far off (a reader prefill of 47
tokens/s recorded during a training run, against ~2,000 quiet; fp32 chosen over bf16), and it is kept per
machine: it is still used by the load that made it, but `recorded` does not return it, so the next load
measures again, until one is taken on a quiet enough machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from assistant.atomic import atomic_write

# other processes' share of all cores' time above which a measurement is taken again: quiet ones on the
# 2-core reference machine saw 0-5%; at 13% and at 23% (the app warming up beside the child measuring the
# engines' rates) transformers' prefill came out 2-4x slower than quiet
BUSY = 0.1
MIN_TICKS = 20  # per core: a block shorter than ~0.2 s is not judged


def _ticks() -> tuple[int, int, int] | None:
    """(all cores' ticks, their busy ticks, this process's ticks) from /proc; None where there is no /proc."""
    try:
        cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    total = sum(cpu)  # user nice system idle iowait irq softirq steal
    return total, total - cpu[3] - cpu[4], int(own[11]) + int(own[12])  # utime + stime, every thread


class OtherLoad:
    """The share of all cores' time that other processes (and other virtual machines: steal) used during
    the block; None where it cannot be read."""

    share: float | None = None

    def __enter__(self) -> OtherLoad:
        self._start = _ticks()
        return self

    def __exit__(self, *exc: object) -> None:
        end = _ticks()
        if self._start is None or end is None:
            return
        total, busy, own = (b - a for a, b in zip(self._start, end, strict=True))
        if total < MIN_TICKS * (os.cpu_count() or 1):
            return  # too short to tell (ticks are 1/100 s)
        self.share = round(min(1.0, max(0.0, (busy - own) / total)), 3)

    def fields(self) -> dict[str, Any]:
        """What a record keeps of it."""
        return {} if self.share is None else {"others_cpu": self.share}


def recorded(cache_dir: Path, file: str, key: str, *, busy_too: bool = False) -> dict[str, Any] | None:
    """The record under `key`, unless it is missing or (without `busy_too`) was measured on a busy machine."""
    try:
        found = json.loads((cache_dir / file).read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(found, dict):
        return None
    return found if busy_too or not busy(found) else None


def in_child(module: str, *args: str) -> bool:
    """`python -m module ARGS`, a measurement that records its own result; whether it finished. Measurements
    run in children so that what they load or page in never stays in a long-lived process's memory."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", module, *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False)
    return done.returncode == 0


def busy(record: dict[str, Any]) -> bool:
    """Whether `record` was measured while other processes kept the cores busy (it is measured again)."""
    return float(record.get("others_cpu") or 0.0) > BUSY


def record(cache_dir: Path, file: str, key: str, value: dict[str, Any]) -> None:
    path = cache_dir / file
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    known[key] = value
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(known, indent=2))
    except OSError:
        pass  # a read-only cache only means the measurement runs again next time


__all__ = ["BUSY", "OtherLoad", "busy", "in_child", "record", "recorded"]
