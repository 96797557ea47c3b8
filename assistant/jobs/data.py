"""The data jobs behind `assistant data check` and `assistant data export`: pick a domain's corpora (one with
--corpus), prepare what is missing, then run the data check (`corpus.check`) or write the SFT examples as
chat JSONL (`training.export_chat`).

    from assistant import check_data, export_data, load_config
    report = check_data("medical", load_config(), corpus="pubmedqa")
    print(report.summary()); report.failed
    result = export_data("medical", load_config(), out=Path("sft.jsonl"), validation=0.1)
    print(result.summary())
"""

from __future__ import annotations

from pathlib import Path

from assistant.config import Config
from assistant.corpus import corpora_for, load_documents, load_qa
from assistant.corpus.check import DataCheckReport, TokenCounter, estimated_tokens, tokenizer_tokens
from assistant.corpus.check import check_data as run_checks
from assistant.errors import InputError
from assistant.jobs.documents import ensure_prepared
from assistant.training.entry import domain_instruction
from assistant.training.export_chat import ChatExport, check_options, export_chat


def _corpora(domain: str, config: Config, corpus: str | None) -> list[str]:
    corpora = corpora_for(domain, config)  # an unknown domain fails here, listing the known ones
    if corpus is None:
        return corpora
    if corpus not in corpora:
        raise InputError(f"corpus '{corpus}' is not in '{domain}' (its corpora: {', '.join(corpora) or 'none'})")
    return [corpus]


def model_tokens(config: Config) -> TokenCounter:
    """The generation model's tokenizer where it loads offline without converting a model (a model folder,
    a converted GGUF's cached folder, or the vocabulary read from the GGUF itself, ~10 s); else an estimate
    that says why."""
    spec = config.generation.model
    try:
        from transformers import AutoTokenizer

        from assistant import hub
        from assistant.models.loading import find_gguf, gguf_cache_folder

        gguf = find_gguf(spec)
        with hub.quiet_transformers():
            if gguf is None:
                folder = hub.resolve_path_or_hub(spec, what="generation model")
                tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            elif (gguf_cache_folder(gguf, config.cache_dir) / "tokenizer_config.json").is_file():
                tokenizer = AutoTokenizer.from_pretrained(gguf_cache_folder(gguf, config.cache_dir), local_files_only=True)
            else:
                tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A fallback, not an error: whatever keeps the tokenizer from loading (a package, a file), the check
    # still runs on the estimate, and its report says so.
    except Exception as exc:
        return estimated_tokens(f"the tokenizer of {spec} did not load: {type(exc).__name__}")
    return tokenizer_tokens(tokenizer, spec.removeprefix("embedded:"))


def check_data(
    domain: str,
    config: Config,
    *,
    corpus: str | None = None,
    thresholds: dict[str, float] | None = None,
    exact_tokens: bool = True,
    progress: bool = True,
) -> DataCheckReport:
    """The data check on `domain`'s prepared QA items and documents (only `corpus`'s, when given).

    `exact_tokens` counts with the generation model's tokenizer (see `model_tokens`), else estimates;
    `thresholds` overrides the largest passing share of named checks (corpus.check.THRESHOLDS).
    """
    corpora = _corpora(domain, config, corpus)
    ensure_prepared(corpus or domain, config, progress=progress)
    items = [q for c in corpora for q in load_qa(c, config)]
    docs = [d for c in corpora for d in load_documents(c, config)]
    # the model and instruction `train sft --domain DOMAIN` would use
    tokens = model_tokens(config.for_domain(domain)) if exact_tokens else estimated_tokens("--estimate-tokens")
    try:
        return run_checks(
            [q for q in items if q.split == "train"], [q for q in items if q.split == "test"], docs,
            instruction=domain_instruction(domain, config), seq_len=config.training.seq_len, tokens=tokens,
            thresholds=thresholds, leakage_threshold=config.training.leakage_threshold, domain=domain, corpora=corpora,
        )
    except ValueError as exc:  # an unknown check name in `thresholds`
        raise InputError(str(exc)) from None


def export_data(
    domain: str,
    config: Config,
    *,
    out: Path,
    format: str = "openai-chat",
    corpus: str | None = None,
    validation: float = 0.1,
    with_context: bool = False,
    progress: bool = True,
) -> ChatExport:
    """Write `domain`'s SFT examples as chat JSONL: `out` and, for the `validation` share, `out`'s
    `.validation.jsonl` sibling. With `corpus`, that corpus's examples, as `train sft --domain CORPUS`
    makes them (its leakage check compares with that corpus's test split). `with_context` adds the
    retrieved passages RAFT trains on (`train sft --with-context`; needs the index)."""
    check_options(format, validation)
    _corpora(domain, config, corpus)
    name = corpus or domain
    ensure_prepared(name, config, progress=progress)
    passages_for = None
    if with_context:
        from assistant.jobs.train import index_passages

        passages_for = index_passages(name, config, config.training.passages)
    return export_chat(name, config, Path(out), format=format, validation=validation, passages_for=passages_for)


__all__ = ["check_data", "export_data", "model_tokens"]
