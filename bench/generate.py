"""Generation speed per phase: the project's default engine against each engine measured in the same run.

The embedded SmolLM2-135M, one RAG prompt built as the `rag` strategy builds it (a PubMedQA test question and
the abstracts of four other questions, ~1,100 tokens), greedy decoding, on the cores at hand. Measured:
  - prefill (tokens/s): a whole prompt read, as option scoring and the first step of a RAG answer need;
    transformers fp32 and bf16 (one forward pass), raw llama-cpp-python (`Llama.eval`), and the project's
    `score_options` on the default engine (a new prompt each time, so nothing is reused from a cache);
  - decode (tokens/s): new tokens after a short prompt; transformers fp32 / bf16 `generate`, raw
    llama-cpp-python (`Llama.generate`, greedy, until N tokens) and the project's `Generator.generate`.
Each figure is the best of --reps runs after a warm-up; every prefill run reads a prompt of a length not
read before (one token shorter for the raw engines, another first line for the project's), as questions do. Prints both ratios the issue sets targets for:
decode vs raw llama-cpp-python (>= 0.8) and prefill vs the fastest engine measured (>= 0.8).

    .venv/bin/python bench/generate.py              # ~2 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.config import EMBEDDED_GENERATOR, ENV_DATA, load_config
from assistant.corpus import read_sources
from assistant.models import describe_backend, embedded_gguf, load_generator, resolve_model
from assistant.models.dtype import cpu_model_and_flags
from assistant.prompts import rag_messages
from assistant.types import Source

RESULTS = Path(__file__).resolve().parent / "results"


def rag_prompt(config: Any) -> list[dict[str, str]]:
    read = read_sources("pubmedqa", config)
    docs = {d.id: d for d in read.documents}
    tests = [q for q in read.qa if q.split == "test"]
    question = tests[0]
    others = [docs[q.doc_ids[0]] for q in tests[1:5] if q.doc_ids and q.doc_ids[0] in docs]
    sources = [Source(d.id, d.title, "", 1.0, d.text) for d in others]
    return rag_messages(config.domain("medical").instruction, question.question, sources,
                        lambda text, n: text, config.generation.passage_tokens)


def best(fn: Any, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def transformers_rates(folder: Path, dtype: str, ids: list[int], short: list[int], new: int, reps: int) -> dict:
    import torch

    from assistant.models.loading import load_folder

    model, _ = load_folder(folder, dtype)
    short_ids = torch.tensor([short])
    # a prompt one token shorter each time, as questions differ: torch's CPU kernels are slower on a
    # shape they have not seen, and a real prompt is rarely the length of the one before
    cut = iter(range(1, 10**6))
    with torch.inference_mode():
        prefill = best(lambda: model(input_ids=torch.tensor([ids[next(cut):]]), logits_to_keep=1), reps)
        total = best(lambda: model.generate(input_ids=short_ids, attention_mask=torch.ones_like(short_ids),
                                            max_new_tokens=new, min_new_tokens=new, do_sample=False), reps)
        first = best(lambda: model(input_ids=short_ids, logits_to_keep=1), reps)
    return {"prefill": len(ids) / prefill, "decode": new / max(total - first, 1e-9)}


def llama_rates(gguf: Path, threads: int | None, ids: list[int], short: list[int], new: int, reps: int) -> dict:
    """Raw llama-cpp-python: `threads` for both phases, or None for its defaults (half the cores decode)."""
    from llama_cpp import Llama

    chosen = {"n_threads": threads, "n_threads_batch": threads} if threads else {}
    llm = Llama(model_path=str(gguf), n_ctx=len(ids) + new + 8, n_batch=512, verbose=False, **chosen)

    def prefill() -> None:
        llm.reset()
        llm.eval(ids)

    def decode() -> None:
        llm.reset()
        for n, _ in enumerate(llm.generate(short, temp=0.0, repeat_penalty=1.0), 1):
            if n >= new:
                break

    def first() -> None:
        llm.reset()
        llm.eval(short)

    rates = {"prefill": len(ids) / best(prefill, reps)}
    rates["decode"] = new / max(best(decode, reps) - best(first, reps), 1e-9)
    return rates


def project_rates(config: Any, messages: list[dict[str, str]], new: int, reps: int) -> dict:
    gen = load_generator(config)
    counter = iter(range(10**6))
    short = [{"role": "user", "content": "What is hypertension? Answer in detail."}]

    def prefill() -> None:  # a different system line each time: nothing is reused from the prompt cache
        msgs = [{"role": "system", "content": f"Run {next(counter)}. {messages[0]['content']}"}, *messages[1:]]
        gen.score_options(msgs, ["Yes."])

    n_long = len(gen.prompt_ids(messages))
    prefill_s = best(prefill, reps)
    runs = [gen.generate(short, max_new_tokens=new) for _ in range(reps + 1)][1:]
    first = best(lambda: gen.score_options(
        [{"role": "system", "content": f"Run {next(counter)}."}, *short], ["Yes."]), reps)
    decode = max(r.output_tokens / max(r.seconds - first, 1e-9) for r in runs)
    return {"prefill": n_long / prefill_s, "decode": decode, "engine": gen.describe(),
            "tokens": runs[0].output_tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens decoded per run (default 64)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None, help="shipped data folder (default: ../shared/data)")
    parser.add_argument("--json", type=Path, default=RESULTS / "generate.json")
    args = parser.parse_args()
    if args.data:
        os.environ[ENV_DATA] = str(args.data)
    config = load_config()
    config = config.replace(generation=config.generation.__class__(
        **{**config.generation.__dict__, "max_new_tokens": args.new_tokens}))
    messages = rag_prompt(config)
    project = project_rates(config, messages, args.new_tokens, args.reps)
    gen = load_generator(config)
    ids = gen.prompt_ids(messages)
    short = gen.prompt_ids([{"role": "user", "content": "What is hypertension? Answer in detail."}])
    folder = resolve_model(EMBEDDED_GENERATOR, config)
    cores = os.cpu_count() or 1
    gguf = embedded_gguf("SmolLM2-135M-Instruct")
    engines = {
        "transformers fp32": transformers_rates(folder, "float32", ids, short, args.new_tokens, args.reps),
        "transformers bf16": transformers_rates(folder, "bfloat16", ids, short, args.new_tokens, args.reps),
        "llama-cpp-python (raw)": llama_rates(gguf, None, ids, short, args.new_tokens, args.reps),
        f"llama-cpp-python ({cores} thr)": llama_rates(gguf, cores, ids, short, args.new_tokens, args.reps),
    }
    fastest_prefill = max(engines, key=lambda e: engines[e]["prefill"])
    decode_ratio = project["decode"] / engines["llama-cpp-python (raw)"]["decode"]
    fastest_decode = max(engines, key=lambda e: engines[e]["decode"])
    decode_vs_fastest = project["decode"] / engines[fastest_decode]["decode"]
    prefill_ratio = project["prefill"] / engines[fastest_prefill]["prefill"]
    cpu = cpu_model_and_flags()[0]
    print(f"SmolLM2-135M-Instruct, a {len(ids)}-token RAG prompt, {args.new_tokens} new tokens, "
          f"{os.cpu_count()} cores ({cpu})")
    print(f"project default: {project['engine']}  [{describe_backend(config)}]")
    print(f"{'engine':<26}{'prefill tok/s':>15}{'decode tok/s':>14}")
    for name, rates in [*engines.items(), ("project default", project)]:
        print(f"{name:<26}{rates['prefill']:>15.0f}{rates['decode']:>14.1f}")
    print(f"decode:  project / raw llama-cpp-python (its default threads, as the project's) = {decode_ratio:.2f}x "
          f"(target >= 0.8); / fastest ({fastest_decode}) = {decode_vs_fastest:.2f}x")
    print(f"prefill: project / fastest ({fastest_prefill}) = {prefill_ratio:.2f}x (target >= 0.8)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "model": EMBEDDED_GENERATOR, "prompt_tokens": len(ids), "new_tokens": args.new_tokens,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu}", "engines": engines,
        "project": project, "decode_ratio": decode_ratio, "prefill_ratio": prefill_ratio,
        "decode_vs_fastest": decode_vs_fastest, "fastest_decode": fastest_decode,
        "fastest_prefill": fastest_prefill,
    }, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
