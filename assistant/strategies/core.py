"""What every strategy shares: the options of one question, the context a strategy may use, the prepared
prompt, the Strategy protocol and the registry of strategies by name.

    from assistant.strategies import get_strategy, AskOptions
    strategy = get_strategy("fewshot:3")         # a spec: a name and an optional argument after a colon
    prepared = strategy.prepare(ctx, question, AskOptions())      # retrieval, the prompt (rendered, counted)
    generation = ctx.get_generator().generate(prepared.prompt, adapter=prepared.adapter, ...)
    answer = strategy.finish(ctx, prepared, generation)           # text, citations, warnings

A strategy prepares and finishes; it never generates itself: `Assistant` runs the one generation call
(plain or streamed) between the two, and the evaluation scores answer options on the prepared prompt.
"auto" is listed here as a spec users may pick, but it is not a strategy: the Assistant routes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from assistant.config import Config, DomainConfig
from assistant.errors import ConfigError, InputError, unknown
from assistant.types import Answer

if TYPE_CHECKING:  # only for types: strategies receive these objects, they never build them
    from assistant.models import EncodedPrompt, Generation, Generator
    from assistant.retrieval import Retriever

AUTO = "auto"
AUTO_DESCRIPTION = "the router picks base, RAG, an adapter or both per question, and says why"


@dataclass(frozen=True)
class AskOptions:
    top_k: int | None = None
    mode: str | None = None  # retrieval mode: dense, bm25, hybrid
    filters: Mapping[str, str | Sequence[str]] | None = None
    max_new_tokens: int | None = None
    adapter: str | None = None  # for the adapter strategies: a trained adapter's name
    choices: tuple[str, ...] = ()  # closed-label questions: the allowed answers (named in the CoT prompt)
    answer_mode: str | None = None  # retrieval strategies: generate | extractive | auto; None: generation.answer_mode
    scope: bool = True  # without filters, search the companies the question names (assistant/scope.py)


@dataclass
class StrategyContext:
    """What a strategy may use. Generator and retriever are loaded on first use, once per Assistant."""

    config: Config
    domain: DomainConfig
    get_generator: Callable[[], Generator]
    get_retriever: Callable[[], Retriever]
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """A question made ready for the model: the answer so far and the prompt, rendered and counted once."""

    answer: Answer  # question, strategy, domain; sources, warnings and timings gathered so far
    messages: list[dict[str, str]]  # empty: nothing to generate (answer.text already says why)
    strategy: Strategy
    prompt: EncodedPrompt | None = None  # `messages` rendered in the chat template, with its token ids
    adapter: str | None = None  # the generator's slot of the adapter to answer with (None: the base)
    max_new_tokens: int | None = None  # the strategy's own length (CoT); AskOptions.max_new_tokens wins
    answer_mode: str = "generate"  # what finish answers with (retrieval strategies, see strategies.modes)

    @property
    def has_prompt(self) -> bool:
        return self.prompt is not None

    def new_tokens(self, options: AskOptions) -> int | None:
        return options.max_new_tokens if options.max_new_tokens is not None else self.max_new_tokens


class Strategy(Protocol):
    name: str
    uses_retrieval: bool
    uses_adapter: bool
    adapter: str | None

    def warm_up(self, ctx: StrategyContext) -> None: ...

    def prepare(self, ctx: StrategyContext, question: str, options: AskOptions) -> Prepared: ...

    def finish(self, ctx: StrategyContext, prepared: Prepared, generation: Generation | None) -> Answer: ...


StrategyFactory = Callable[[str | None], Strategy]
STRATEGIES: dict[str, StrategyFactory] = {}
DESCRIPTIONS: dict[str, str] = {AUTO: AUTO_DESCRIPTION}


def register_strategy(name: str, description: str) -> Callable[[StrategyFactory], StrategyFactory]:
    def deco(factory: StrategyFactory) -> StrategyFactory:
        STRATEGIES[name] = factory
        DESCRIPTIONS[name] = description
        return factory

    return deco


def get_strategy(spec: str) -> Strategy:
    """The strategy for a spec such as "rag" or "fewshot:3" ("auto" is routed by the Assistant)."""
    name, _, arg = spec.strip().partition(":")
    if name == AUTO:
        raise ConfigError("'auto' is the router's choice, not a strategy: ask through Assistant.ask / prepare")
    if name not in STRATEGIES:
        raise unknown("strategy", spec, [*STRATEGIES, AUTO])
    return STRATEGIES[name](arg or None)


def check_spec(spec: str) -> str:
    """`spec` stripped, when it names a strategy or "auto"; a ConfigError listing the known ones otherwise."""
    spec = spec.strip()
    if spec != AUTO:
        get_strategy(spec)
    return spec


def check_question(question: str) -> str:
    """The question stripped; an InputError when nothing is left (the one check of every entry point)."""
    question = question.strip()
    if not question:
        raise InputError("the question is empty: type a question, e.g. \"What is glaucoma?\"")
    return question


__all__ = [
    "AUTO",
    "DESCRIPTIONS",
    "STRATEGIES",
    "AskOptions",
    "Prepared",
    "Strategy",
    "StrategyContext",
    "check_question",
    "check_spec",
    "get_strategy",
    "register_strategy",
]
