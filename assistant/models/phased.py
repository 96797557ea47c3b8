"""One model on two engines, each call on the one measured faster for it: the default for a GGUF model.

    gen = PhasedGenerator(llama, torch_gen, rates)      # see registry: backend auto, a GGUF, both installed

Reading a prompt (prefill) and writing a reply (decode) favour different engines on a CPU: transformers in
bf16 reads ~5x faster than llama.cpp on a CPU with AMX, llama.cpp writes ~5x faster (a small model's
decode step is Python overhead in transformers). So a generation takes the best of both: transformers reads
the prompt and llama.cpp writes the reply from the keys and values transformers computed
(assistant.models.kv_handoff; used only where the two caches are checked to agree at load); option
scoring, all prefill, goes the same way, so that the reply generated after it finds the prompt cached. Without that handoff, each generation runs where
`prompt / prefill rate + new tokens / decode rate` is smaller: a RAG prompt of ~1,200 tokens with a short
answer on transformers, a short prompt on llama.cpp.
The rates are measured once per machine, model and library versions (`measure_rates`, kept in
`<cache>/engine-rates.json`; again at the next load when other processes kept the cores busy meanwhile)
and shown by `assistant config show`. Both engines run the same weights (the
GGUF's, dequantized for transformers) and tokenize identically (tests/test_llamacpp.py holds them
together); an adapter is attached to both.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.models import measured
from assistant.models.generator import Done, Generator, Job, Message, Prompt
from assistant.models.streaming import Generation, GenerationStream

RATES_FILE = "engine-rates.json"
MARGIN = 1.5  # the prefill engine must read this much faster to be worth its memory


class PhasedGenerator(Generator):
    """`decoder` (llama.cpp) for short prompts, `reader` (transformers) for scoring and long prompts."""

    backend = "llamacpp+transformers"

    def __init__(self, decoder: Generator, reader: Generator, rates: dict[str, dict[str, float]],
                 handoff: bool = False) -> None:
        super().__init__(decoder.name, decoder.config, path=decoder.path,
                         context_length=min(decoder.context_length, reader.context_length))
        self.decoder, self.reader, self.rates = decoder, reader, rates
        self.lock = decoder.lock
        # the prompt read by transformers and written into llama.cpp's cache, which writes the reply; only
        # where the two engines' caches are checked to agree (assistant.models.kv_handoff); the registry builds
        # this engine only where the reader reads faster (worth_it)
        if handoff:
            from assistant.models.gguf_rows import EmbeddingRows
            from assistant.models.kv_handoff import KVHandoff

            # the prompts' embedding rows from the GGUF (the reader's own, checked): its matrix stays unread
            reader.prompt_rows = EmbeddingRows.matching(decoder.path, reader.model)  # type: ignore[attr-defined]
            decoder.handoff = KVHandoff.check(decoder, reader)  # type: ignore[attr-defined]
        # replies are usually shorter than max_new_tokens: the estimate uses the recent mean length
        self.typical_new = 64.0
        self._estimate_lock = threading.Lock()

    # ---------------------------------------------------------------- identity and tokens (the decoder's)
    @property
    def handoff(self) -> bool:
        return getattr(self.decoder, "handoff", None) is not None

    def engine(self) -> dict[str, Any]:
        # scores come from llama.cpp's logits with the handoff, from transformers' without: a run records which
        return {"decode": self.decoder.identity(), "prefill": self.reader.identity(), "handoff": self.handoff,
                "scoring": "decode" if self.handoff else "prefill",
                "rates": {k: {p: round(v) for p, v in r.items()} for k, r in self.rates.items()}}

    def describe(self) -> str:
        dtype = self.reader.engine().get("dtype", "")
        if self.handoff:
            return (f"{self.name}: prompts read by transformers ({dtype}), replies written by llama.cpp from its "
                    "keys and values; short prompts on llama.cpp alone")
        return f"{self.name} on llama.cpp for short prompts, transformers ({dtype}) for option scoring and long prompts"

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        return self.decoder.render(messages, add_generation_prompt=add_generation_prompt)

    def encode(self, text: str) -> list[int]:
        return self.decoder.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self.decoder.decode(ids)

    # ---------------------------------------------------------------- adapters: on both engines
    @property
    def adapters(self) -> list[str]:
        return self.decoder.adapters

    def load_adapter(self, path: Path, name: str) -> None:
        with self.decoder.lock, self.reader.lock:  # both engines change together
            self.decoder.load_adapter(path, name)
            try:
                self.reader.load_adapter(path, name)
            except BaseException:
                self.decoder.delete_adapter(name)
                raise

    def delete_adapter(self, name: str) -> None:
        with self.decoder.lock, self.reader.lock:
            self.decoder.delete_adapter(name)
            if name in self.reader.adapters:
                self.reader.delete_adapter(name)
            self.adapter_sources.pop(name, None)

    # ---------------------------------------------------------------- the calls
    def engine_for(self, n_prompt: int, max_new_tokens: int | None) -> Generator:
        """The engine expected to answer an `n_prompt`-token prompt sooner, for a reply of the recent mean
        length (at most `max_new_tokens`)."""
        new = min(self.max_new(n_prompt, max_new_tokens), self.typical_new)

        def seconds(kind: str) -> float:
            return n_prompt / self.rates[kind]["prefill"] + new / self.rates[kind]["decode"]

        if self.handoff:  # the decoder reads long prompts at the reader's rate
            read = max(self.rates["reader"]["prefill"], self.rates["decoder"]["prefill"])
            if n_prompt / read + new / self.rates["decoder"]["decode"] <= seconds("reader"):
                return self.decoder
        return self.reader if seconds("reader") < seconds("decoder") else self.decoder

    def generate(self, messages: Prompt, *, max_new_tokens: int | None = None, temperature: float | None = None,
                 stop: Sequence[str] = (), adapter: str | None = None) -> Generation:
        prompt = self.encode_prompt(messages)
        out = self.engine_for(len(prompt.ids), max_new_tokens).generate(
            prompt, max_new_tokens=max_new_tokens, temperature=temperature, stop=stop, adapter=adapter)
        self._observe(out)
        return out

    def _observe(self, out: Generation) -> None:
        with self._estimate_lock:
            self.typical_new = 0.8 * self.typical_new + 0.2 * max(out.output_tokens, 1)

    def stream(self, messages: Prompt, *, max_new_tokens: int | None = None, temperature: float | None = None,
               stop: Sequence[str] = (), adapter: str | None = None) -> GenerationStream:
        prompt = self.encode_prompt(messages)
        return self.engine_for(len(prompt.ids), max_new_tokens).stream(
            prompt, max_new_tokens=max_new_tokens, temperature=temperature, stop=stop, adapter=adapter
        ).on_result(self._observe)

    def score_options(self, messages: Prompt, options: Sequence[str], *, normalize: bool = False,
                      adapter: str | None = None) -> list[float]:
        """With the handoff, on llama.cpp: transformers reads the prompt into its cache, the options' few
        tokens are read there, and the reply that usually follows (evaluation scores a prompt's options,
        then generates to it) finds the prompt cached instead of having it read a second time."""
        prompt = self.encode_prompt(messages)
        scorer = self.decoder if self.handoff and self.engine_for(len(prompt.ids), None) is self.decoder else self.reader
        return scorer.score_options(prompt, options, normalize=normalize, adapter=adapter)


    def run_jobs(self, jobs: Sequence[Job]) -> list[Done]:
        """With the handoff, the jobs that `generate` and `score_options` would give the decoder go to it
        together (llama.cpp scores them and writes their replies in batches, prompts read by transformers);
        the others one by one, as those calls would."""
        if not self.handoff:
            return super().run_jobs(jobs)
        together: dict[int, Job] = {}
        for i, job in enumerate(jobs):
            try:
                prompt = self.encode_prompt(job.prompt)
            except AssistantError:
                continue  # its own error, from run_job
            n = len(prompt.ids)
            if self.engine_for(n, job.max_new_tokens) is self.decoder and (
                    not job.options or self.engine_for(n, None) is self.decoder):
                together[i] = dataclasses.replace(job, prompt=prompt)
        done = dict(zip(together, self.decoder.run_jobs(list(together.values())), strict=True))
        for d in done.values():
            if d.generation is not None:
                self._observe(d.generation)
        return [done[i] if i in done else self.run_job(job) for i, job in enumerate(jobs)]


# ---------------------------------------------------------------- measuring the engines
def _rate_of(fn: Any, amount: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return amount / best


def measure_rates(decoder: Any, reader: Any, tokens: int = 384, new: int = 16) -> dict[str, dict[str, float]]:
    """Prefill and decode tokens/s of both engines on this machine (a few seconds)."""
    text = " ".join(["The patient was treated with aspirin and monitored for bleeding."] * 64)
    ids = decoder.encode(text)[: max(16, min(tokens, decoder.context_length - new - 8))]
    short = ids[:8]

    def llama_prefill() -> None:
        with decoder.lock:
            decoder.llm.n_tokens = 0
            decoder.llm.eval(ids)

    def torch_prefill() -> None:
        import torch

        with reader.lock, torch.inference_mode():
            reader.read_prompt(ids)  # as the handoff reads prompts: the LM head's weights stay unread

    produced: dict[str, int] = {}

    def decode_with(gen: Any) -> Any:
        def run() -> None:  # the rate counts what was decoded (an early end-of-sequence makes fewer)
            produced[gen.backend] = len(gen.decode_tokens(short, new, 0.0, ()))
        return run

    with decoder.lock, reader.lock:
        decoder.activate(None)
        reader.activate(None)
        rates = {"decoder": {"prefill": _rate_of(llama_prefill, len(ids))},
                 "reader": {"prefill": _rate_of(torch_prefill, len(ids))}}
        for kind, gen in (("decoder", decoder), ("reader", reader)):
            rate = _rate_of(decode_with(gen), new)
            rates[kind]["decode"] = rate * produced[gen.backend] / new
        return rates


def rates_key(gguf: Path, threads: int, dtype: str) -> str:
    """Rates hold for this CPU, model file, thread count, llama.cpp and torch versions and dtype setting."""
    from importlib.metadata import version

    from assistant.models.dtype import cpu_model_and_flags

    size = gguf.stat().st_size if gguf.exists() else 0
    return (f"{cpu_model_and_flags()[0]} | {gguf.resolve()} ({size} bytes) | threads {threads or 'auto'} | "
            f"llama-cpp-python {version('llama-cpp-python')} | torch {version('torch')} {dtype}")


def recorded_rates(cache_dir: Path, key: str, *, busy_too: bool = False) -> dict[str, dict[str, float]] | None:
    """The rates kept for `key`; None when there are none or (without `busy_too`) they were measured on a
    busy machine (then they are measured again: models/measured.py)."""
    found = measured.recorded(cache_dir, RATES_FILE, key, busy_too=busy_too)
    if found is None or not {"decoder", "reader"} <= set(found):
        return None
    return {"decoder": found["decoder"], "reader": found["reader"]}


def measure_and_record_rates(cache_dir: Path, key: str, decoder: Any, reader: Any) -> dict[str, dict[str, float]]:
    """`measure_rates`, kept under `key` with how busy other processes kept the cores meanwhile. In a child
    process on the same files and settings where it can: the reader's decode rate needs its LM head, for
    tied embeddings the whole embedding matrix (57 MB in bf16 for the embedded model), which nothing else
    here reads (KVHandoff reads prompts without it), and the pages a measurement touches would stay in the
    app's resident memory for good."""
    import json
    from dataclasses import asdict

    if decoder.path is not None and reader.path is not None and measured.in_child(
            "assistant.models.phased", str(cache_dir), key, str(decoder.path), str(reader.path),
            reader.engine()["dtype"], json.dumps(asdict(decoder.config))):
        rates = recorded_rates(cache_dir, key, busy_too=True)
        if rates is not None:
            return rates
    return _measure_and_record(cache_dir, key, decoder, reader)  # the child failed: here


def _measure_and_record(cache_dir: Path, key: str, decoder: Any, reader: Any) -> dict[str, dict[str, float]]:
    with measured.OtherLoad() as others:
        rates = measure_rates(decoder, reader)
    record_rates(cache_dir, key, rates, others)
    return rates


def _measure_here(cache_dir: Path, key: str, gguf: Path, folder: Path, dtype: str, settings: str) -> None:
    """The child of `measure_and_record_rates`: both engines loaded as the parent has them, measured, kept."""
    import json

    from assistant.config import GenerationConfig
    from assistant.models.hf import TransformersGenerator
    from assistant.models.llamacpp import LlamaCppGenerator
    from assistant.models.loading import load_folder

    config = GenerationConfig(**json.loads(settings))
    decoder = LlamaCppGenerator(config.model, gguf, config)
    model, tokenizer = load_folder(folder, dtype, cache_dir)  # the parent's copy in that dtype, as it loaded it
    reader = TransformersGenerator(config.model, model, tokenizer, config, path=folder)
    _measure_and_record(cache_dir, key, decoder, reader)


def record_rates(cache_dir: Path, key: str, rates: dict[str, dict[str, float]],
                 others: measured.OtherLoad | None = None) -> None:
    """Keep `rates`, with how busy other processes kept the cores while they were measured (`others`)."""
    measured.record(cache_dir, RATES_FILE, key, {**rates, **(others.fields() if others else {})})


def worth_it(rates: dict[str, dict[str, float]]) -> bool:
    """Whether the prefill engine reads enough faster to keep it loaded beside the decoder."""
    return rates["reader"]["prefill"] > MARGIN * rates["decoder"]["prefill"]


__all__ = ["MARGIN", "PhasedGenerator", "measure_and_record_rates", "measure_rates", "rates_key", "record_rates",
           "recorded_rates", "worth_it"]


if __name__ == "__main__":  # the child: python -m assistant.models.phased CACHE KEY GGUF FOLDER DTYPE SETTINGS
    import sys

    _measure_here(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5], sys.argv[6])
