"""Answer strategies, the rungs of the ladder: base, fewshot:K, cot, rag, adapter:NAME, rag+adapter:NAME.

A strategy turns a question into an Answer using what the StrategyContext offers (the domain's
instruction, a generator, a retriever). Strategies register by name in `STRATEGIES`; a spec may carry an
argument after a colon ("fewshot:3", "adapter:medical-sft"), passed to the factory.

    from assistant.strategies import get_strategy
    answer = get_strategy("rag").answer(ctx, "Do statins reduce mortality?", AskOptions())

`answer` is `prepare` (adapter, retrieval, the prompt) then `complete` (generation, citations); the
evaluation scores closed-label options on the prepared prompt before completing it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from assistant.config import Config, DomainConfig
from assistant.errors import ConfigError, InputError, unknown
from assistant.prompts import base_messages, cot_messages, fewshot_messages, rag_messages, target_answer
from assistant.types import Answer, Source

if TYPE_CHECKING:  # only for types: strategies receive these objects, they never build them
    from assistant.models import Generator
    from assistant.retrieval import Retriever


@dataclass(frozen=True)
class AskOptions:
    top_k: int | None = None
    mode: str | None = None  # retrieval mode: dense, bm25, hybrid
    filters: Mapping[str, str | Sequence[str]] | None = None
    max_new_tokens: int | None = None
    adapter: str | None = None  # for the adapter strategies: a trained adapter's name
    choices: tuple[str, ...] = ()  # closed-label questions: the allowed answers (named in the CoT prompt)


@dataclass
class StrategyContext:
    """What a strategy may use. Generator and retriever are loaded on first use, once per Assistant."""

    config: Config
    domain: DomainConfig
    get_generator: Callable[[], Generator]
    get_retriever: Callable[[], Retriever]
    extras: dict[str, Any] = field(default_factory=dict)


class Strategy(Protocol):
    name: str
    uses_retrieval: bool

    def prepare(self, ctx: StrategyContext, question: str, options: AskOptions) -> Prepared: ...

    def complete(self, ctx: StrategyContext, prepared: Prepared, options: AskOptions) -> Answer: ...

    def answer(self, ctx: StrategyContext, question: str, options: AskOptions) -> Answer: ...


StrategyFactory = Callable[[str | None], Strategy]
STRATEGIES: dict[str, StrategyFactory] = {}
DESCRIPTIONS: dict[str, str] = {}


def register_strategy(name: str, description: str) -> Callable[[StrategyFactory], StrategyFactory]:
    def deco(factory: StrategyFactory) -> StrategyFactory:
        STRATEGIES[name] = factory
        DESCRIPTIONS[name] = description
        return factory

    return deco


def get_strategy(spec: str) -> Strategy:
    """The strategy for a spec such as "rag" or "fewshot:3"."""
    name, _, arg = spec.strip().partition(":")
    if name not in STRATEGIES:
        raise unknown("strategy", spec, list(STRATEGIES))
    return STRATEGIES[name](arg or None)


# --- prompts --------------------------------------------------------------------------------------


def rag_prompt(domain: DomainConfig, question: str, sources: Sequence[Source], generator: Generator, passage_tokens: int) -> list[dict[str, str]]:
    return rag_messages(domain.instruction, question, sources, generator.truncate, passage_tokens)


def fit_sources(
    domain: DomainConfig, question: str, sources: list[Source], generator: Generator, config: Config
) -> list[Source]:
    """Drop the lowest-ranked sources until the prompt fits the model's input budget."""
    budget = config.generation.max_input_tokens
    kept = list(sources)
    while kept:
        prompt = generator.render(rag_prompt(domain, question, kept, generator, config.generation.passage_tokens))
        if generator.count_tokens(prompt) <= budget:
            return kept
        kept.pop()
    return kept


# --- citations ------------------------------------------------------------------------------------

_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_WORDS = re.compile(r"[a-z0-9][a-z0-9\-\.%]*[a-z0-9%]|[a-z0-9]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOP = frozenset(
    "the a an and or of to in on for with by is are was were be been it its this that these those as at from "
    "which who what when where how not no yes can may also than then there their they has have had do does".split()
)


def _content_words(text: str) -> set[str]:
    return {w for w in _WORDS.findall(text.lower()) if w not in _STOP and len(w) > 2}


def check_citations(text: str, n_sources: int) -> tuple[str, list[int], list[str]]:
    """Keep citation markers that name a real source; drop the others and say so."""
    cited: set[int] = set()
    dropped: set[int] = set()

    def repl(match: re.Match[str]) -> str:
        nums = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        good = [n for n in nums if 1 <= n <= n_sources]
        dropped.update(n for n in nums if n not in good)
        cited.update(good)
        return f"[{', '.join(map(str, good))}]" if good else ""

    cleaned = _CITE.sub(repl, text)
    warnings = [f"removed citation [{n}]: there is no source {n}" for n in sorted(dropped)]
    return re.sub(r"[ \t]+([.,;:])", r"\1", cleaned).strip(), sorted(cited), warnings


def attribute(text: str, sources: Sequence[Source], min_overlap: float = 0.35) -> tuple[str, list[int]]:
    """Post-hoc attribution for answers that cite nothing: mark each sentence with the source that shares
    the largest share of its content words, when that share reaches `min_overlap`."""
    source_words = [_content_words(s.snippet + " " + s.title) for s in sources]
    out, cited = [], set()
    for sentence in _SENTENCE.split(text.strip()):
        words = _content_words(sentence)
        best, share = 0, 0.0
        for i, sw in enumerate(source_words, 1):
            if words:
                overlap = len(words & sw) / len(words)
                if overlap > share:
                    best, share = i, overlap
        if best and share >= min_overlap:
            cited.add(best)
            stripped = sentence.rstrip()
            end = stripped[-1] if stripped and stripped[-1] in ".!?" else ""
            sentence = f"{stripped[: len(stripped) - len(end)]} [{best}]{end}"
        out.append(sentence)
    return " ".join(out), sorted(cited)


# --- built-in strategies --------------------------------------------------------------------------


def check_question(question: str) -> str:
    question = question.strip()
    if not question:
        raise InputError("the question is empty: type a question, e.g. \"What is glaucoma?\"")
    return question


@dataclass
class Prepared:
    """A strategy's prompt before generation: the evaluation scores options on it, `complete` generates."""

    answer: Answer  # question, strategy, domain; sources, warnings and timings gathered so far
    messages: list[dict[str, str]]  # empty: nothing to generate (answer.text already says why)
    adapter: str | None = None
    max_new_tokens: int | None = None
    delegate: Strategy | None = None  # "auto": the strategy the router chose, which completes the answer


def _generate(ctx: StrategyContext, prepared: Prepared, options: AskOptions) -> None:
    answer = prepared.answer
    generator = ctx.get_generator()
    start = time.perf_counter()
    max_new = options.max_new_tokens if options.max_new_tokens is not None else prepared.max_new_tokens
    gen = generator.generate(prepared.messages, max_new_tokens=max_new, adapter=prepared.adapter)
    answer.timings["generate"] = time.perf_counter() - start
    answer.text = gen.text.strip()
    if prepared.adapter:
        from assistant.training.adapters import slot_name

        answer.model = f"{generator.name} + adapter {slot_name(prepared.adapter)}"
    else:
        answer.model = generator.name
    answer.usage = {"prompt_tokens": gen.prompt_tokens, "output_tokens": gen.output_tokens}
    if gen.finish_reason == "length":
        answer.warnings.append(f"the answer was cut at {gen.output_tokens} tokens (generation.max_new_tokens)")


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
        from assistant.training.adapters import attach, get_adapter

        trained_on = get_adapter(ctx.config, name).record.get("data", {}).get("domain")
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
            from assistant.training.adapters import attach

            attach(generator, self.adapter, ctx.config)

    def prepare(self, ctx: StrategyContext, question: str, options: AskOptions) -> Prepared:
        """Everything up to generation: the adapter, retrieved sources (RAG) and the prompt."""
        question = check_question(question)
        answer = Answer(question=question, text="", strategy=self.name, domain=ctx.domain.name)
        adapter = self._adapter(ctx, options, answer)
        return Prepared(answer, self.messages(ctx, question, options, answer), adapter)

    def complete(self, ctx: StrategyContext, prepared: Prepared, options: AskOptions) -> Answer:
        """Generate from a prepared prompt and post-process (citations for RAG)."""
        if prepared.messages:
            _generate(ctx, prepared, options)
        return prepared.answer

    def answer(self, ctx: StrategyContext, question: str, options: AskOptions) -> Answer:
        return self.complete(ctx, self.prepare(ctx, question, options), options)


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


class RagStrategy(BaseStrategy):
    """Retrieve passages from the domain's index, answer from them and cite them as [1], [2]."""

    name = "rag"
    uses_retrieval = True

    def prepare(self, ctx: StrategyContext, question: str, options: AskOptions) -> Prepared:
        question = check_question(question)
        answer = Answer(question=question, text="", strategy=self.name, domain=ctx.domain.name)
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
        from assistant.retrieval import merge_by_document

        chunks = ctx.get_retriever().retrieve(question, top_k=options.top_k, mode=options.mode, filters=options.filters)
        sources = merge_by_document(chunks)
        answer.timings["retrieve"] = time.perf_counter() - start
        if not sources:
            answer.text = "No passage in the index matches this question (check the scope filters), so there is nothing to answer from."
            answer.warnings.append("no sources retrieved")
            return Prepared(answer, [], adapter)
        sources = fit_sources(ctx.domain, question, sources, generator, ctx.config)
        answer.sources = sources
        best = max((s.similarity for s in sources if s.similarity is not None), default=None)
        threshold = ctx.config.retrieval.low_relevance
        if best is not None and best < threshold:
            answer.warnings.append(
                f"low relevance: the best source's similarity is {best:.2f} (below {threshold:.2f}); "
                "the index may not cover this question"
            )
        messages = rag_prompt(ctx.domain, question, sources, generator, ctx.config.generation.passage_tokens)
        return Prepared(answer, messages, adapter)

    def complete(self, ctx: StrategyContext, prepared: Prepared, options: AskOptions) -> Answer:
        answer = super().complete(ctx, prepared, options)
        if not prepared.messages:
            return answer
        answer.text, answer.citations, dropped = check_citations(answer.text, len(answer.sources))
        answer.warnings.extend(dropped)
        if not answer.citations and answer.text:
            answer.text, answer.citations = attribute(answer.text, answer.sources)
            if answer.citations:
                answer.warnings.append("the model cited no source; citations were added by word overlap")
        return answer


class AdapterStrategy(BaseStrategy):
    """The base prompt answered by the base model with a trained adapter (`assistant train sft|cpt`)."""

    name = "adapter"
    uses_adapter = True


class RagAdapterStrategy(RagStrategy):
    """RAG with an adapter, best one trained on retrieved passages (`assistant train sft --with-context`)."""

    name = "rag+adapter"
    uses_adapter = True


class AutoStrategy:
    """The router picks the strategy per question (`assistant.router`); the answer says which and why."""

    name = "auto"
    uses_retrieval = True  # it probes the index to decide
    uses_adapter = False

    def warm_up(self, ctx: StrategyContext) -> None:
        """Load the model and what routing reads once (index, policy, the other domains' indexes)."""
        from assistant.routing import warm_up

        ctx.get_generator()
        warm_up(ctx)

    def prepare(self, ctx: StrategyContext, question: str, options: AskOptions) -> Prepared:
        from assistant.routing import route

        if options.adapter:
            raise ConfigError(f"strategy 'auto' chooses adapters itself; for --adapter {options.adapter} choose "
                              "--strategy adapter or rag+adapter")
        start = time.perf_counter()
        decision, signals = route(ctx, question, options.filters)
        routed = time.perf_counter() - start
        chosen = get_strategy(decision.strategy)
        prepared = chosen.prepare(ctx, question, options)
        prepared.delegate = chosen
        prepared.answer.strategy = decision.strategy
        prepared.answer.reason = decision.reason
        prepared.answer.timings["route"] = routed
        if "index is not built" in decision.reason:
            prepared.answer.warnings.append(f"no index for '{ctx.domain.name}': answered without retrieval")
        prepared.answer.details["signals"] = signals.to_dict()
        return prepared

    def complete(self, ctx: StrategyContext, prepared: Prepared, options: AskOptions) -> Answer:
        assert prepared.delegate is not None
        return prepared.delegate.complete(ctx, prepared, options)

    def answer(self, ctx: StrategyContext, question: str, options: AskOptions) -> Answer:
        return self.complete(ctx, self.prepare(ctx, question, options), options)


def _no_arg(cls: type) -> StrategyFactory:
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
register_strategy("auto", "the router picks base, RAG, an adapter or both per question, and says why")(
    _no_arg(AutoStrategy)
)
register_strategy("fewshot", "K nearest training QA pairs as demonstrations (fewshot:K, K = 1..6; default 3)")(
    lambda arg: FewShotStrategy(_fewshot_k(arg))
)
register_strategy("cot", "chain of thought: reasoning, then a final 'Answer:' line")(_no_arg(CotStrategy))
register_strategy("rag", "retrieve from the domain's index and answer with cited sources")(_no_arg(RagStrategy))
register_strategy("adapter", "the base prompt with a trained adapter (--adapter NAME)")(_with_adapter(AdapterStrategy))
register_strategy(
    "rag+adapter", "retrieval and cited sources, answered with an adapter (best: one trained --with-context)"
)(_with_adapter(RagAdapterStrategy))
