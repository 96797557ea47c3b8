"""The built-in strategies, the rungs of the ladder: base, fewshot:K, cot, rag, adapter:NAME, rag+adapter:NAME.

    from assistant.strategies import get_strategy
    prepared = get_strategy("rag").prepare(ctx, "Do statins reduce mortality?", AskOptions())

Each registers itself by name in `assistant.strategies.core.STRATEGIES`; a spec may carry an argument after
a colon ("fewshot:3", "adapter:medical-sft"), passed to the factory. `prepare` attaches the adapter, retrieves
(RAG) and renders the prompt; `finish` turns the model's reply into the Answer (RAG: checks and adds
citation markers, then answers in the answer mode, see strategies.modes: `extractive` generates nothing).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from assistant.config import Config, DomainConfig
from assistant.errors import ConfigError, InputError
from assistant.guard import neutralise, strip_unsupported_contacts
from assistant.prompts import base_messages, cot_messages, fewshot_messages, rag_messages, target_answer
from assistant.strategies.citations import attribute, check_citations
from assistant.strategies.core import (
    AskOptions,
    Prepared,
    Strategy,
    StrategyContext,
    StrategyFactory,
    register_strategy,
)
from assistant.strategies.modes import CLOSED, answer_extractively, answer_mode, finish_in_mode
from assistant.types import Answer, Source

if TYPE_CHECKING:
    from assistant.models import EncodedPrompt, Generation, Generator


def rag_prompt(domain: DomainConfig, question: str, sources: Sequence[Source], generator: Generator, passage_tokens: int) -> list[dict[str, str]]:
    return rag_messages(domain.instruction, question, sources, generator.truncate, passage_tokens)


def fit_sources(
    domain: DomainConfig, question: str, sources: list[Source], generator: Generator, config: Config
) -> tuple[list[Source], list[dict[str, str]], EncodedPrompt | None]:
    """Drop the lowest-ranked sources until the prompt fits the model's input budget; the sources kept, and
    their prompt as messages and rendered with its token ids (None when not even one source fits)."""
    budget = config.generation.max_input_tokens
    kept = list(sources)
    while kept:
        messages = rag_prompt(domain, question, kept, generator, config.generation.passage_tokens)
        prompt = generator.encode_prompt(messages, check=False)
        if len(prompt.ids) <= budget:
            return kept, messages, prompt
        kept.pop()
    return kept, [], None


class BaseStrategy:
    """Zero-shot: the domain's instruction and the question, no retrieval."""

    name = "base"
    uses_retrieval = False
    uses_adapter = False

    def __init__(self, adapter: str | None = None) -> None:
        self.adapter = adapter

    def _adapter(self, ctx: StrategyContext, options: AskOptions, answer: Answer) -> str | None:
        """The adapter to answer with, attached to the generator's base (loaded once, switched per call)."""
        if not self.uses_adapter:
            if options.adapter:
                raise ConfigError(
                    f"strategy '{self.name}' uses no adapter; for --adapter {options.adapter} choose "
                    "--strategy adapter or rag+adapter"
                )
            return None
        name = self.adapter or options.adapter
        if not name:
            raise ConfigError(
                f"strategy '{self.name}' needs an adapter: --adapter NAME (`assistant adapters list`), "
                f"or the spec '{self.name}:NAME'"
            )
        from assistant.models.adapters import attach, get_adapter

        trained_on = get_adapter(ctx.config, name).domain
        if trained_on and trained_on != ctx.domain.name:
            answer.warnings.append(f"adapter '{name}' was trained on the '{trained_on}' domain, not '{ctx.domain.name}'")
        return attach(ctx.get_generator(), name, ctx.config)

    def messages(self, ctx: StrategyContext, question: str, options: AskOptions, answer: Answer) -> list[dict[str, str]]:
        return base_messages(ctx.domain.instruction, question)

    def warm_up(self, ctx: StrategyContext) -> None:
        """Load what the first question would otherwise pay for (model, index, adapter), e.g. before timing."""
        generator = ctx.get_generator()
        if self.uses_retrieval:
            ctx.get_retriever()
        if self.uses_adapter and self.adapter:
            from assistant.models.adapters import attach

            attach(generator, self.adapter, ctx.config)

    def _answer(self, ctx: StrategyContext, question: str) -> Answer:
        return Answer(question=question, text="", strategy=self.name, domain=ctx.domain.name)

    def prepare(self, ctx: StrategyContext, question: str, options: AskOptions) -> Prepared:
        """Everything up to generation: the adapter, retrieved sources (RAG) and the prompt. `question` has
        been through `check_question` (the Assistant checks it once)."""
        answer = self._answer(ctx, question)
        adapter = self._adapter(ctx, options, answer)
        messages = self.messages(ctx, question, options, answer)
        prompt = ctx.get_generator().encode_prompt(messages)
        return Prepared(answer, messages, self, prompt, adapter)

    def finish(self, ctx: StrategyContext, prepared: Prepared, generation: Generation | None) -> Answer:
        """The Answer from the model's reply (None: nothing was generated, the answer already says why)."""
        answer = prepared.answer
        if generation is None:
            return answer
        generator = ctx.get_generator()
        # a link, e-mail address or phone number no source shows is taken out, whoever put it there
        answer.text, removed = strip_unsupported_contacts(
            generation.text.strip(), [f"{s.title} {s.locator}\n{s.snippet}" for s in answer.sources])
        answer.warnings.extend(removed)
        if prepared.adapter:
            from assistant.models.adapters import slot_name

            answer.model = f"{generator.name} + adapter {slot_name(prepared.adapter)}"
        else:
            answer.model = generator.name
        answer.prompt_tokens, answer.output_tokens = generation.prompt_tokens, generation.output_tokens
        answer.finish_reason = generation.finish_reason
        if generation.finish_reason == "length":
            answer.warnings.append(f"the answer was cut at {generation.output_tokens} tokens (generation.max_new_tokens)")
        return answer


class FewShotStrategy(BaseStrategy):
    """The base prompt after K demonstrations: the training QA pairs nearest the question by embedding."""

    name = "fewshot"

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.k = k

    def warm_up(self, ctx: StrategyContext) -> None:
        from assistant.fewshot import FewShotPool

        super().warm_up(ctx)
        FewShotPool.load(ctx.domain.name, ctx.config)

    def messages(self, ctx: StrategyContext, question: str, options: AskOptions, answer: Answer) -> list[dict[str, str]]:
        from assistant.fewshot import FewShotPool

        generator = ctx.get_generator()
        cfg = ctx.config.prompting
        start = time.perf_counter()
        demos = FewShotPool.load(ctx.domain.name, ctx.config).nearest(question, self.k, ctx.config)
        answer.timings["select"] = time.perf_counter() - start
        pairs = [(d.question, generator.truncate(target_answer(d), cfg.demo_answer_tokens)) for d in demos]
        # Trim to the token budget: drop the least similar demonstrations first.
        while pairs:
            demo_text = "".join(q + a for q, a in pairs)
            if generator.count_tokens(demo_text) <= cfg.fewshot_tokens:
                break
            pairs.pop()
        if len(pairs) < self.k:
            answer.warnings.append(f"{len(pairs)} of {self.k} demonstrations fit prompting.fewshot_tokens")
        answer.details["demonstrations"] = [d.id for d in demos[: len(pairs)]]
        # nearest last, right before the question
        return fewshot_messages(ctx.domain.instruction, question, list(reversed(pairs)))


class CotStrategy(BaseStrategy):
    """Chain of thought: reason step by step, then a final 'Answer:' line (parsed by the evaluation)."""

    name = "cot"

    def prepare(self, ctx: StrategyContext, question: str, options: AskOptions) -> Prepared:
        prepared = super().prepare(ctx, question, options)
        prepared.max_new_tokens = ctx.config.prompting.cot_max_new_tokens
        return prepared

    def messages(self, ctx: StrategyContext, question: str, options: AskOptions, answer: Answer) -> list[dict[str, str]]:
        return cot_messages(ctx.domain.instruction, question, options.choices)


def injection_warnings(sources: Sequence[Source]) -> list[str]:
    """One warning per source with text that speaks to the model (neutralised in the prompt, see assistant.guard)."""
    warnings = []
    for i, src in enumerate(sources, 1):
        found = neutralise(src.title)[1] + neutralise(src.snippet)[1]
        if found:
            quoted = "; ".join(f"'{f}'" for f in found[:3])
            warnings.append(f"source [{i}] ({src.title}) contains text addressed to the model ({quoted}): "
                            "it was treated as data and left out of the prompt")
    return warnings


class RagStrategy(BaseStrategy):
    """Retrieve passages from the domain's index, answer from them and cite them as [1], [2]."""

    name = "rag"
    uses_retrieval = True

    def prepare(self, ctx: StrategyContext, question: str, options: AskOptions) -> Prepared:
        answer = self._answer(ctx, question)
        generator = ctx.get_generator()
        adapter = self._adapter(ctx, options, answer)
        # fail on an over-long question before spending time on retrieval
        n = generator.count_tokens(question)
        if n > ctx.config.generation.max_input_tokens:
            raise InputError(
                f"the question is {n} tokens; the model reads at most {ctx.config.generation.max_input_tokens} "
                "(generation.max_input_tokens): shorten it"
            )
        start = time.perf_counter()
        from assistant.fusion import merge_by_document
        from assistant.strategies.scoping import retrieve_in_scope

        chunks, scope = retrieve_in_scope(ctx.get_retriever(), question, top_k=options.top_k, mode=options.mode,
                                          filters=options.filters, scope=options.scope)
        if scope:
            answer.details["scope"] = scope
        sources = merge_by_document(chunks)
        answer.timings["retrieve"] = time.perf_counter() - start
        if not sources:
            answer.text = "No passage in the index matches this question (check the scope filters), so there is nothing to answer from."
            answer.warnings.append("no sources retrieved")
            return Prepared(answer, [], self, None, adapter)
        asked, mode = answer_mode(ctx.config, options)
        answer.details["answer_mode"] = asked
        if asked != mode:
            answer.details["answered_with"] = CLOSED
        messages: list[dict[str, str]] = []
        prompt: EncodedPrompt | None = None
        if mode != "extractive":  # extractive answers with the sources' evidence: no prompt (see finish)
            sources, messages, prompt = fit_sources(ctx.domain, question, sources, generator, ctx.config)
        answer.sources = sources
        answer.warnings.extend(injection_warnings(sources))
        best = max((s.similarity for s in sources if s.similarity is not None), default=None)
        threshold = ctx.config.retrieval.low_relevance
        if best is not None and best < threshold:
            answer.warnings.append(
                f"low relevance: the best source's similarity is {best:.2f} (below {threshold:.2f}); "
                "the index may not cover this question"
            )
        if mode == "extractive":
            return Prepared(answer, [], self, None, adapter, answer_mode=mode)
        if prompt is None:  # not even one source fits: the same message as a too-long prompt
            messages = rag_prompt(ctx.domain, question, [], generator, ctx.config.generation.passage_tokens)
        return Prepared(answer, messages, self, generator.encode_prompt(messages) if prompt is None else generator.check_prompt(prompt), adapter,
                        answer_mode=mode)

    def finish(self, ctx: StrategyContext, prepared: Prepared, generation: Generation | None) -> Answer:
        answer = super().finish(ctx, prepared, generation)
        embedder = getattr(ctx.get_retriever(), "embedder", None) if answer.sources else None
        if generation is None:
            if prepared.answer_mode == "extractive" and answer.sources and not answer.text:
                start = time.perf_counter()
                if not answer_extractively(answer, embedder, short=ctx.domain.short_answers):
                    answer.text = "The sources hold no sentence or table cell to answer this with."
                answer.timings["check"] = time.perf_counter() - start
            return answer
        answer.text, answer.citations, dropped = check_citations(answer.text, len(answer.sources))
        answer.warnings.extend(dropped)
        if not answer.citations and answer.text:
            answer.text, answer.citations = attribute(answer.text, answer.sources)
            if answer.citations:
                answer.warnings.append("the model cited no source; citations were added by word overlap")
        # numbers checked against the sources (re-cited where another one shows them), evidence quoted; in
        # answer_mode auto, a reply stating a number no source shows gives way to the evidence
        return finish_in_mode(answer, prepared.answer_mode, embedder, short=ctx.domain.short_answers)


class AdapterStrategy(BaseStrategy):
    """The base prompt answered by the base model with a trained adapter (`assistant train sft|cpt`)."""

    name = "adapter"
    uses_adapter = True


class RagAdapterStrategy(RagStrategy):
    """RAG with an adapter, best one trained on retrieved passages (`assistant train sft --with-context`)."""

    name = "rag+adapter"
    uses_adapter = True


def _no_arg(cls: type[BaseStrategy]) -> StrategyFactory:
    def factory(arg: str | None) -> Strategy:
        if arg is not None:
            raise ConfigError(f"strategy '{cls.name}' takes no argument, got '{cls.name}:{arg}'")
        return cls()

    return factory


def _fewshot_k(arg: str | None) -> int:
    if arg is None:
        return 3
    if not arg.isdigit() or not 1 <= int(arg) <= 6:
        raise ConfigError(f"fewshot:K takes K from 1 to 6 demonstrations, got 'fewshot:{arg}'")
    return int(arg)


def _with_adapter(cls: type[BaseStrategy]) -> StrategyFactory:
    def factory(arg: str | None) -> Strategy:
        return cls(adapter=arg)

    return factory


register_strategy("base", "zero-shot with the domain's instruction, no retrieval")(_no_arg(BaseStrategy))
register_strategy("fewshot", "K nearest training QA pairs as demonstrations (fewshot:K, K = 1..6; default 3)")(
    lambda arg: FewShotStrategy(_fewshot_k(arg))
)
register_strategy("cot", "chain of thought: reasoning, then a final 'Answer:' line")(_no_arg(CotStrategy))
register_strategy("rag", "retrieve from the domain's index and answer with cited sources")(_no_arg(RagStrategy))
register_strategy("adapter", "the base prompt with a trained adapter (--adapter NAME)")(_with_adapter(AdapterStrategy))
register_strategy(
    "rag+adapter", "retrieval and cited sources, answered with an adapter (best: one trained --with-context)"
)(_with_adapter(RagAdapterStrategy))

__all__ = ["AdapterStrategy", "BaseStrategy", "CotStrategy", "FewShotStrategy", "RagAdapterStrategy",
           "RagStrategy", "fit_sources", "rag_prompt"]
