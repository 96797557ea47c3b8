"""atomic_write and atomic_dir: the old version or the new one, never half; no temp left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.atomic import atomic_dir, atomic_write


def test_atomic_write_replaces_and_keeps_plain_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    atomic_write(target, "one")
    atomic_write(target, b"two")
    assert target.read_text() == "two" and sorted(p.name for p in target.parent.iterdir()) == ["a.json"]
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_atomic_dir_swaps_on_success_and_keeps_the_old_one_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "w.bin").write_bytes(b"1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "w.bin").write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert (target / "w.bin").read_bytes() == b"1"
    with atomic_dir(target) as tmp:
        (tmp / "w.bin").write_bytes(b"2")
    assert (target / "w.bin").read_bytes() == b"2" and os.listdir(tmp_path) == ["model"]
