"""Export an adapter and check that the export answers as the adapter does (`assistant adapters export`).

    from assistant import export_adapter, check_export, load_config
    export, check = export_adapter(load_config(), "medical-sft", "gguf", Path("exports/medical-sft-gguf"))
    check.passed, check.agreement, check.max_prob_diff      # also in exports/medical-sft-gguf/export_check.json
    check = check_export(load_config(), Path("exports/medical-sft-gguf"), n=20)   # again, on a folder

The check asks the same N test questions of the adapter's domain (the seeded sample `assistant eval
--limit N` draws, closed-label questions only when the domain has them) twice: through the original peft
adapter on its full-precision base (transformers, fp32) and through the exported artifact, each as the
engine that serves it would load it:
  - gguf, ollama: llama.cpp with the base GGUF and the exported GGUF LoRA (for ollama this stands in for
    Ollama, which runs the same two files through llama.cpp; the Modelfile's template is checked at export);
  - merged: transformers on the merged folder;
  - vllm: the folder's adapter files loaded with peft onto the base in transformers (a stand-in: vLLM needs
    a GPU and is not run here).
Closed-label questions (PubMedQA yes/no/maybe) are scored as the evaluation scores them: the
log-likelihood of each option as the reply, the best one is the answer; the check compares the chosen
options (agreement) and the options' probabilities (softmax over the options). Other questions are
answered greedily and compared by exact text. Beyond the tolerance the check fails and says why.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.atomic import atomic_write
from assistant.config import Config
from assistant.errors import InputError
from assistant.evaluation.runner import eval_items, sample
from assistant.evaluation.tasks import label_options, option_replies, score_item
from assistant.models.adapters import get_adapter
from assistant.prompts import base_messages
from assistant.training.adapters import base_folder
from assistant.training.export import Export, read_export, write_export
from assistant.types import QAItem

CHECK_FILE = "export_check.json"
CHECK_MAX_NEW_TOKENS = 48  # greedy replies compared by text (questions without closed labels)
REFERENCE, EXPORTED = "adapter", "export"


@dataclass(frozen=True)
class Tolerance:
    """How far an export may answer from its adapter: the share of questions with the same answer, and the
    largest difference in any option's probability."""

    min_agreement: float
    max_prob_diff: float

    def __post_init__(self) -> None:
        for name, value in (("--min-agreement", self.min_agreement), ("--max-prob-diff", self.max_prob_diff)):
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be between 0 and 1, got {value}")


# GGUF (and Ollama) runs the LoRA in llama.cpp on the base's quantized weights with 8-bit activations, so its
# option probabilities differ from transformers' fp32 even without an adapter: on 50 PubMedQA questions the
# bare embedded base agrees on 0.94 of them with a largest probability difference of 0.097, an export whose
# LoRA was zeroed on 0.64 with 0.54. Merged and vLLM files hold the same numbers and should not differ at all.
TOLERANCES = {
    "gguf": Tolerance(0.9, 0.2),
    "ollama": Tolerance(0.9, 0.2),
    "merged": Tolerance(0.98, 0.02),
    "vllm": Tolerance(0.98, 0.02),
}


@dataclass(frozen=True)
class Outcome:
    answer: str  # the chosen option, or the generated text
    correct: bool
    probs: tuple[float, ...] = ()  # over the options


@dataclass(frozen=True)
class CheckResult:
    """What `export_check.json` holds: both accuracies, the agreement, the largest probability difference."""

    adapter: str
    format: str
    path: str
    scoring: str  # "options" (closed labels) or "generation" (greedy text compared exactly)
    n: int
    accuracy_adapter: float
    accuracy_export: float
    agreement: float
    max_prob_diff: float | None
    tolerance: Tolerance
    failures: tuple[str, ...]
    reference: str
    exported: str
    seconds: float
    items: tuple[dict[str, Any], ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "passed": self.passed, "failures": list(self.failures),
                "items": list(self.items)}


def tolerance_for(to: str, min_agreement: float | None = None, max_prob_diff: float | None = None) -> Tolerance:
    """The format's default tolerance, with either bound replaced where given."""
    if to not in TOLERANCES:
        raise InputError(f"unknown export format '{to}' (known: {', '.join(TOLERANCES)})")
    default = TOLERANCES[to]
    return Tolerance(default.min_agreement if min_agreement is None else min_agreement,
                     default.max_prob_diff if max_prob_diff is None else max_prob_diff)


def _instruction(config: Config, domain: str) -> str:
    """The system message the adapter was trained with: its domain's instruction (a corpus: its domain's)."""
    if domain in config.domains:
        return config.domain(domain).instruction
    from assistant.corpus import get_recipe

    return config.domain(get_recipe(domain, config).domain).instruction


def check_items(config: Config, domain: str, n: int, seed: int = 0) -> tuple[str, list[QAItem]]:
    """("options" | "generation", the questions): closed-label test questions when the domain has them."""
    items = eval_items(domain, config)
    labels = [i for i in items if i.answer_type == "label"]
    return ("options", sample(labels, n, seed)) if labels else ("generation", sample(items, n, seed))


def _softmax(scores: Sequence[float]) -> tuple[float, ...]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    return tuple(e / sum(exps) for e in exps)


def answer_all(gen: Any, slot: str | None, items: Sequence[QAItem], instruction: str, scoring: str, config: Config,
               desc: str, progress: bool) -> list[Outcome]:
    """Each question through `gen` with adapter `slot`: the best option (and the options' probabilities),
    or the greedy reply."""
    from tqdm.auto import tqdm

    out = []
    for item in tqdm(items, desc=desc, unit="q", disable=not progress, dynamic_ncols=True):
        prompt = gen.encode_prompt(base_messages(instruction, item.question))
        if scoring == "options":
            options = label_options(item)
            probs = _softmax(gen.score_options(prompt, option_replies(options), adapter=slot))
            chosen = options[max(range(len(options)), key=probs.__getitem__)]
            verdict = score_item(item, "", chosen, config.evaluation)
            out.append(Outcome(chosen, verdict.correct, tuple(round(p, 5) for p in probs)))
        else:
            text = gen.generate(prompt, max_new_tokens=CHECK_MAX_NEW_TOKENS, temperature=0.0, adapter=slot).text
            out.append(Outcome(text, score_item(item, text, None, config.evaluation).correct))
    return out


def _transformers(folder: Path, name: str, config: Config) -> Any:
    from assistant.models.hf import TransformersGenerator
    from assistant.models.loading import load_folder

    model, tokenizer = load_folder(folder, "float32")
    return TransformersGenerator(name, model, tokenizer, config.generation, path=folder)


def _exported(export: Export, config: Config, reference: Any) -> tuple[Any, str | None, str]:
    """The generator that serves the export as its engine would, the adapter slot to ask it with (None: the
    merged model itself), and a description."""
    if export.format == "merged":
        merged = _transformers(export.path, f"{export.adapter} (merged)", config)
        return merged, None, "transformers (fp32) on the merged folder"
    if export.format == "vllm":
        reference.load_adapter(export.path, EXPORTED)
        return reference, EXPORTED, ("peft on transformers (fp32) loading the vLLM folder's adapter files: a "
                                     "stand-in, vLLM itself is not run here")
    from assistant.models.llamacpp import LlamaCppGenerator

    if not export.base_gguf:
        raise InputError(f"{export.path}/export.json names no base GGUF for its GGUF LoRA")
    llama = LlamaCppGenerator(export.base_spec, Path(export.base_gguf), config.generation)
    llama.load_gguf_adapter(export.lora_gguf, EXPORTED)
    how = "llama.cpp with the base GGUF and the exported GGUF LoRA"
    return llama, EXPORTED, how + (" (the files the Modelfile names: a stand-in for Ollama)" if export.format == "ollama" else "")


def _compare(a: Sequence[Outcome], b: Sequence[Outcome], scoring: str) -> tuple[float, float | None]:
    agreement = sum(x.answer == y.answer for x, y in zip(a, b, strict=True)) / len(a)
    if scoring != "options":
        return agreement, None
    return agreement, max(abs(p - q) for x, y in zip(a, b, strict=True) for p, q in zip(x.probs, y.probs, strict=True))


def check_export(config: Config, export: Export | Path, *, n: int = 50, tolerance: Tolerance | None = None,
                 seed: int = 0, progress: bool = True) -> CheckResult:
    """Check an export (or the export folder) against its adapter on `n` test questions; the result is also
    written to `export_check.json` in the export's folder."""
    export = export if isinstance(export, Export) else read_export(export)
    tolerance = tolerance or TOLERANCES[export.format]
    if n < 1:
        raise InputError(f"--check takes a number of questions >= 1 (0 skips the check), got {n}")
    info = get_adapter(config, export.adapter)
    if not info.domain:
        raise InputError(f"adapter '{info.name}' names no domain in its training.json, so it has no test questions "
                         "to check on: export with --check 0")
    scoring, items = check_items(config, info.domain, n, seed)
    instruction = _instruction(config, info.domain)
    start = time.perf_counter()
    reference = _transformers(base_folder(config, info), info.base_spec, config)  # where the adapter's base is now
    reference.load_adapter(info.path, REFERENCE)
    ours = answer_all(reference, REFERENCE, items, instruction, scoring, config, "adapter (peft)", progress)
    if export.format != "vllm":
        del reference  # one model in memory at a time
        gc.collect()
        reference = None
    gen, slot, how = _exported(export, config, reference)
    theirs = answer_all(gen, slot, items, instruction, scoring, config, f"export ({export.format})", progress)
    agreement, diff = _compare(ours, theirs, scoring)
    failures = []
    if agreement < tolerance.min_agreement:
        failures.append(f"agreement {agreement:.2f} is below {tolerance.min_agreement:.2f}")
    if diff is not None and diff > tolerance.max_prob_diff:
        failures.append(f"largest option-probability difference {diff:.3f} is above {tolerance.max_prob_diff:.3f}")
    result = CheckResult(
        adapter=export.adapter, format=export.format, path=str(export.path), scoring=scoring, n=len(items),
        accuracy_adapter=sum(o.correct for o in ours) / len(items),
        accuracy_export=sum(o.correct for o in theirs) / len(items),
        agreement=agreement, max_prob_diff=diff, tolerance=tolerance, failures=tuple(failures),
        reference="the peft adapter on its full-precision base, transformers (fp32)", exported=how,
        seconds=round(time.perf_counter() - start, 1),
        items=tuple({"id": i.id, "gold": i.answer, "adapter": a.answer, "export": b.answer,
                     **({"adapter_probs": list(a.probs), "export_probs": list(b.probs)} if a.probs else {})}
                    for i, a, b in zip(items, ours, theirs, strict=True)),
    )
    atomic_write(Path(export.path) / CHECK_FILE, json.dumps(result.to_dict(), indent=2))
    return result


def export_adapter(config: Config, name: str, to: str, out: Path, *, check: int = 50,
                   tolerance: Tolerance | None = None, overwrite: bool = False, base_gguf: Path | None = None,
                   progress: bool = True, log: Callable[[str], None] | None = None) -> tuple[Export, CheckResult | None]:
    """Write the export (training/export.py), then check it on `check` questions (0: no check)."""
    if check < 0:
        raise InputError(f"--check takes a number of questions (0 skips the check), got {check}")
    info = get_adapter(config, name)
    instruction = _instruction(config, info.domain) if info.domain else ""
    export = write_export(config, name, to, out, overwrite=overwrite, gguf=base_gguf, instruction=instruction)
    if log is not None:
        log(f"exported {name} ({to}) -> {export.path}")
    if not check:
        return export, None
    return export, check_export(config, export, n=check, tolerance=tolerance, progress=progress)


__all__ = ["CHECK_FILE", "TOLERANCES", "CheckResult", "Outcome", "Tolerance", "check_export", "check_items",
           "export_adapter", "tolerance_for"]
