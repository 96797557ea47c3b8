"""What keeps a long-lived process's memory down: weights read from a copy already in the dtype wanted
(never through a float copy), the C heap's freed pages given back after each reply, and oneDNN's kernel
caches kept small (a new prompt length is a new set of shapes)."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
from pathlib import Path

import pytest

from assistant.errors import ModelUnavailableError
from assistant.models import loading
from assistant.models.generator import trim_heap
from assistant.models.loading import load_folder


def test_bf16_weights_are_read_from_a_cached_bf16_copy_made_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch

    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    cache = tmp_path / "cache"
    model, tokenizer = load_folder(folder, "bfloat16", cache)
    (copy,) = (cache / "models").iterdir()
    assert copy.name.endswith("-bfloat16")
    assert json.loads((copy / "config.json").read_text())["dtype"] == "bfloat16"  # stored narrow
    assert model.config._name_or_path == str(folder)  # still the folder's model, wherever it was read from
    assert model.dtype == torch.bfloat16 and tokenizer("a b").input_ids
    # the same model as one cast while reading the fp32 folder (rotary frequencies in fp32 both ways)
    direct, _ = load_folder(folder, "bfloat16")
    ids = torch.tensor([[1, 5, 9, 2, 7]])
    with torch.inference_mode():
        assert torch.equal(model(ids).logits, direct(ids).logits)
    made = (copy / "source.json").stat().st_mtime_ns
    load_folder(folder, "bfloat16", cache)
    assert (copy / "source.json").stat().st_mtime_ns == made  # kept
    load_folder(folder, "float32", cache)
    assert list((cache / "models").iterdir()) == [copy]  # fp32 is read from the folder itself
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-5}))
    load_folder(folder, "bfloat16", cache)
    assert json.loads((copy / "config.json").read_text())["rms_norm_eps"] == 1e-5  # the folder changed: made again
    assert list((cache / "models").iterdir()) == [copy]  # in place, no temp folder left


def test_a_copy_that_cannot_be_made_falls_back_to_reading_the_folder(tiny_model_dir: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    def fails(args: list[str], failure: str) -> None:
        raise ModelUnavailableError(f"{failure}: disk full")

    monkeypatch.setattr(loading, "_run_child", fails)
    model, _ = load_folder(tiny_model_dir, "bfloat16", tmp_path / "cache")
    assert str(model.dtype) == "torch.bfloat16"
    assert "disk full; reading the fp32 weights instead" in capsys.readouterr().err


def rss_anon_mb() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("RssAnon"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_trim_heap_gives_freed_heap_pages_back() -> None:
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "malloc_trim"):
        pytest.skip("no glibc malloc_trim here")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(64 * 1024) for _ in range(2000)]  # ~125 MB in the heap (below the mmap threshold)
    for block in blocks:
        ctypes.memset(block, 1, 64 * 1024)
    for block in blocks[:-1]:  # the last one pins the heap's top: free pages below it stay mapped
        libc.free(block)
    before = rss_anon_mb()
    trim_heap()
    assert before - rss_anon_mb() > 60
    libc.free(blocks[-1])


def test_importing_assistant_caps_onednn_kernel_caches_and_keeps_a_users_setting() -> None:
    import subprocess
    import sys

    code = ("import os; os.environ['LRU_CACHE_CAPACITY'] = '7'; import assistant; "
            "print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'], os.environ['LRU_CACHE_CAPACITY'])")
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.split() == ["16", "7"]
