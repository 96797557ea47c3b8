"""The lock (constraints.txt) pins every dependency pyproject.toml declares, at a version it allows;
`tools/deps.py check` (run by `make setup`) names the package and `make lock` when it does not."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

import assistant

ROOT = assistant.PROJECT_ROOT


def deps_module():
    spec = importlib.util.spec_from_file_location("deps", ROOT / "tools" / "deps.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_lock_pins_every_declared_dependency() -> None:
    assert deps_module().check() == 0


def test_torch_is_pinned_without_a_local_label() -> None:
    """`torch==2.13.0+cpu` would not install on a GPU machine; the same pin must fit both."""
    pins = deps_module().read_lock(ROOT / "constraints.txt")
    assert pins["torch"] and "+" not in pins["torch"]
    assert "assistant" not in pins  # the project itself is never in its own lock


def test_a_dependency_added_without_relocking_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deps = deps_module()
    shutil.copy(ROOT / "constraints.txt", tmp_path / "constraints.txt")
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    text = text.replace('  "numpy>=1.26",', '  "numpy>=1.26",\n  "left-pad>=1",\n  "peft>=99",', 1)
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    assert deps.check(tmp_path) == 2
    err = capsys.readouterr().err
    assert "'left-pad' (left-pad>=1) is in pyproject.toml but not pinned in constraints.txt" in err
    assert "which pyproject.toml's 'peft>=99' does not allow" in err and "make lock" in err
