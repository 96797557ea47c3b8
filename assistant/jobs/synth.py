"""`assistant data synth` with a model: the `llm` method asks the configured model (or a named one) about
the corpus's passages (assistant.corpus.synth_llm); `tables` needs none.

    from assistant.jobs.synth import synthesize
    report = synthesize("filings", config, method="llm", sample=100)                 # generation: model
    report = synthesize("mynotes", config, method="llm", model="big", sample=100)    # models: big
"""

from __future__ import annotations

from typing import Any

from assistant.config import Config
from assistant.corpus.synth import SynthReport
from assistant.corpus.synth import synthesize as synthesize_corpus

MAX_NEW_TOKENS = 96  # a question and a short answer


def synthesize(corpus: str, config: Config, *, method: str = "tables", model: str | None = None,
               **options: Any) -> SynthReport:
    """`assistant.corpus.synth.synthesize`, with the model the `llm` method asks loaded from `config`
    (`model`: a named model of config `models:`; default the domain's own generation model)."""
    if method != "llm":
        return synthesize_corpus(corpus, config, method=method, **options)
    from assistant.corpus import get_recipe
    from assistant.models import load_generator

    config = config.for_domain(get_recipe(corpus, config).domain)
    if model is not None:
        config = config.for_model(model)
    generator = load_generator(config)

    def ask(messages: list[dict[str, str]]) -> str:
        return generator.generate(messages, max_new_tokens=MAX_NEW_TOKENS, temperature=0.0).text

    name = f"{model + ': ' if model else ''}{config.generation.model} ({generator.backend})"
    return synthesize_corpus(corpus, config, method=method, ask=ask, model=name, **options)


__all__ = ["synthesize"]
