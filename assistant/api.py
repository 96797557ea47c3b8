"""The Assistant: one domain's model, index and strategies behind `ask()`.

    from assistant import Assistant
    a = Assistant.load("medical")
    ans = a.ask("Is aspirin effective for primary prevention?")                 # the default strategy
    ans = a.ask("What was Boeing's revenue?", strategy="rag", filters={"company": "BOEING"})
    ans = a.ask("Is aspirin effective?", strategy="adapter", adapter="medical-sft")   # assistant train sft
    print(ans.text); [print(s.title, s.locator, s.score) for s in ans.sources]
    for item in a.ask_stream("What is glaucoma?"):      # text pieces as they are generated, then the Answer
        print(item if isinstance(item, str) else "", end="")

The generator and the retriever load on first use and stay loaded for the Assistant's lifetime (the
generator is also shared by every Assistant in the process), so asking many questions costs one load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from assistant.config import Config, load_config
from assistant.coverage import IndexCoverage
from assistant.errors import AssistantError, ConfigError, InputError, NotFoundError
from assistant.generation_config import check_answer_mode
from assistant.scope import describe_scope
from assistant.strategies import (
    AUTO,
    DESCRIPTIONS,
    AskOptions,
    Prepared,
    StrategyContext,
    check_question,
    check_spec,
    get_strategy,
)
from assistant.strategies.scoping import retrieve_in_scope
from assistant.types import Answer, Source

if TYPE_CHECKING:
    from assistant.models import Done, Generation, Generator
    from assistant.retrieval import Retriever
    from assistant.router.policy import Decision
    from assistant.router.signals import Signals


@dataclass
class Question:
    """A question on its way through `Assistant`: prepared (routed, retrieved, prompt rendered), then
    generated once, then finished. `Assistant.prepare` makes it; `complete` ends it."""

    prepared: Prepared
    options: AskOptions
    ctx: StrategyContext
    start: float  # perf_counter() when it was asked
    loaded: float  # seconds spent loading the model and the index for it
    owner: Assistant  # the Assistant that prepared it: another domain's, when the router sent it there
    generation: Generation | None = None

    @property
    def has_prompt(self) -> bool:
        """False when there is nothing to generate (e.g. nothing retrieved: the answer says why)."""
        return self.prepared.has_prompt

    @property
    def answer(self) -> Answer:
        """The answer so far (sources, strategy, reason, warnings); complete() fills in the text."""
        return self.prepared.answer


def _options(top_k: int | None, mode: str | None, filters: Mapping[str, str | Sequence[str]] | None,
             max_new_tokens: int | None, adapter: str | None, answer_mode: str | None, scope: bool = True,
             ) -> AskOptions:
    """The per-question options of `ask`; an unknown answer mode fails here, before anything loads."""
    if answer_mode is not None:
        check_answer_mode(answer_mode, "answer_mode")
    return AskOptions(top_k=top_k, mode=mode, filters=filters, max_new_tokens=max_new_tokens, adapter=adapter,
                      answer_mode=answer_mode, scope=scope)


class Assistant:
    """Answers questions about one domain ("medical", "finance", or any configured one)."""

    def __init__(self, domain: str, config: Config | None = None, *, model: str | None = None) -> None:
        """`model`: a named model (config `models:`) to answer with instead of the domain's own."""
        config = config or load_config()
        self.domain = config.domain(domain)  # unknown domain -> NotFoundError listing the known ones
        self.config = config.for_domain(domain)  # with the domain's own generation model, if it has one
        if model is not None:
            self.config = self.config.for_model(model)
        self._base_config = config
        self._lock = threading.Lock()
        self._others: dict[str, Assistant] = {}  # the other domains' Assistants the router sent questions to
        self._coverage = IndexCoverage(self.domain.name, self.config)  # what the index lacks, said in answers

    @classmethod
    def load(cls, domain: str = "medical", *, config: Config | None = None, model: str | None = None,
             **overrides: Any) -> Assistant:
        """An Assistant for `domain`, answering with the named `model` (config `models:`) when given;
        `overrides` replace top-level config fields (e.g. default_strategy)."""
        config = config or load_config()
        return cls(domain, config.replace(**overrides) if overrides else config, model=model)

    @property
    def index_name(self) -> str:
        return self.domain.name

    @cached_property
    def generator(self) -> Generator:
        from assistant.models import load_generator

        return load_generator(self.config)

    @cached_property
    def retriever(self) -> Retriever:
        from assistant.index import list_indexes
        from assistant.retrieval import Retriever

        known = [s.name for s in list_indexes(self.config)]
        if self.index_name not in known:
            raise NotFoundError(
                f"the '{self.index_name}' index is not built yet: run `assistant index build {self.index_name}`"
            )
        return Retriever.open(self.index_name, self.config)

    def strategy_context(self) -> StrategyContext:
        """What strategies read: the config, the domain, and the model and index (loaded on first use)."""
        return StrategyContext(
            config=self.config,
            domain=self.domain,
            get_generator=lambda: self.generator,
            get_retriever=lambda: self.retriever,
        )

    def available_strategies(self) -> list[str]:
        """The strategy specs that can answer in this domain now ("auto" first): no RAG without an index,
        no few-shot without training questions, adapters that exist."""
        from assistant.strategies import available_strategies

        return available_strategies(self.domain.name, self.config)

    def warm_up(self, strategy: str | None = None) -> None:
        """Load now what the first question with `strategy` (default: config.default_strategy) would pay for:
        the model, and as the strategy needs them the index, an adapter, the few-shot pool, the router."""
        spec = check_spec(strategy or self.config.default_strategy)
        ctx = self.strategy_context()
        with self._lock:
            _ = self.generator
            if spec == AUTO:
                from assistant.routing import warm_up

                warm_up(ctx)
            else:
                get_strategy(spec).warm_up(ctx)

    @staticmethod
    def strategies() -> dict[str, str]:
        """Strategy names and what they do."""
        return dict(DESCRIPTIONS)

    def ask(
        self,
        question: str,
        *,
        strategy: str | None = None,
        top_k: int | None = None,
        mode: str | None = None,
        filters: Mapping[str, str | Sequence[str]] | None = None,
        max_new_tokens: int | None = None,
        adapter: str | None = None,
        answer_mode: str | None = None,
        scope: bool = True,
    ) -> Answer:
        """Answer `question` with `strategy` (default: config.default_strategy) and say which and why.

        `adapter` names a trained adapter for the strategies "adapter" and "rag+adapter"; it is loaded
        onto the shared base model once and switched per question. `answer_mode` (generate, extractive,
        auto; default generation.answer_mode) is what the retrieval strategies answer with. Without
        `filters`, retrieval searches the companies the question names (its reason says so; `scope=False`
        searches the whole index: assistant.scope).
        """
        options = _options(top_k, mode, filters, max_new_tokens, adapter, answer_mode, scope)
        return self.complete(self.prepare(question, strategy=strategy, options=options))

    def ask_stream(
        self,
        question: str,
        *,
        strategy: str | None = None,
        top_k: int | None = None,
        mode: str | None = None,
        filters: Mapping[str, str | Sequence[str]] | None = None,
        max_new_tokens: int | None = None,
        adapter: str | None = None,
        answer_mode: str | None = None,
        scope: bool = True,
    ) -> Iterator[str | Answer]:
        """`ask`, streamed: yields the reply's text pieces as the model writes them, then the final Answer.

        The same steps as `ask` (route, prepare, one generation, finish); the strategy finishes the answer
        from the streamed reply (RAG checks and adds citation markers), so the final `Answer.text` may differ
        from the joined pieces. Input errors raise on the first `next()`.
        """
        options = _options(top_k, mode, filters, max_new_tokens, adapter, answer_mode, scope)
        prepared = self.prepare(question, strategy=strategy, options=options)
        yield from self._generate(prepared, stream=True)
        yield self._finish(prepared)

    def prepare(self, question: str, *, strategy: str | None = None, options: AskOptions | None = None) -> Question:
        """Everything before generation: the question checked, the router's decision ("auto"), the model
        (and index) loaded, retrieval and the prompt. `complete` generates and finishes it; the evaluation
        scores answer options on it in between (`score_options`).

        With "auto", a question the router places in another domain is answered there (that domain's index,
        model and router), and the answer says so; one outside every domain is answered by the base model
        and marked unverified."""
        return self._prepare(question, strategy, options or AskOptions(), cross=True)

    def _prepare(self, question: str, strategy: str | None, options: AskOptions, *, cross: bool) -> Question:
        start = time.perf_counter()
        spec = check_spec(strategy or self.config.default_strategy)
        question = check_question(question)
        if spec == AUTO and options.adapter:
            raise ConfigError(f"strategy 'auto' chooses adapters itself; for --adapter {options.adapter} choose "
                              "--strategy adapter or rag+adapter")
        chosen = None if spec == AUTO else get_strategy(spec)
        ctx = self.strategy_context()
        # cached_property is not thread-safe: load the model and index under one lock (once per Assistant)
        with self._lock:
            if chosen is not None and chosen.uses_retrieval:  # auto answers without an index (base), and says so
                _ = self.retriever
            _ = self.generator
        loaded = time.perf_counter() - start
        decision = None
        if chosen is None:
            from assistant.routing import route

            decision, signals = route(ctx, question, options.filters)
            routed = time.perf_counter() - start - loaded
            if cross and decision.domain not in (None, self.domain.name):
                return self._elsewhere(decision.domain, decision.reason, question, options, start)
            if "@" in decision.strategy:  # a rung on another named model (a learned router may choose one)
                return self._on_model(decision, signals, question, options, start, routed)
            chosen = get_strategy(decision.strategy)
        prepared = chosen.prepare(ctx, question, options)
        answer = prepared.answer
        if decision is None:
            why = "requested" if strategy else "the configured default strategy (config: default_strategy)"
            answer.strategy, answer.reason = spec, f"{spec}: {why}"
        else:
            answer.strategy, answer.reason = decision.strategy, f"auto -> {decision.reason}"
            answer.timings["route"] = routed
            if decision.index_missing:
                answer.warnings.append(f"no index for '{self.domain.name}': answered without retrieval")
            elif decision.domain is None:
                answer.warnings.append("unverified: the question is outside every known domain, so the base model "
                                       "answered from its own knowledge and no source checks it")
            answer.details["signals"] = signals.to_dict()
        if answer.details.get("scope"):
            answer.reason += f"; {describe_scope(answer.details['scope'])}"
        return Question(prepared, options, ctx, start, loaded, self)

    def _on_model(self, decision: Decision, signals: Signals, question: str, options: AskOptions, start: float,
                  routed: float) -> Question:
        """The router's choice of a rung on a named model ("rag@big"): prepared by this domain's Assistant on
        that model, with a reason that names it."""
        spec, _, model = decision.strategy.partition("@")
        with self._lock:
            other = self._others.get(f"@{model}") or self._others.setdefault(
                f"@{model}", Assistant(self.domain.name, self._base_config, model=model))
        prepared = other._prepare(question, spec, options, cross=False)
        answer = prepared.answer
        answer.strategy = decision.strategy
        answer.reason = f"auto -> {decision.reason} [model {model}: {other.config.generation.model}]"
        answer.timings["route"] = routed
        answer.details["signals"] = signals.to_dict()
        prepared.start = start
        return prepared

    def _elsewhere(self, domain: str, why: str, question: str, options: AskOptions, start: float) -> Question:
        """`question`, placed by the router in `domain`, prepared by that domain's Assistant (its index, its
        model and adapters, its router), with the reason and a note naming the domain. The scope filters
        were meant for this domain's index and are dropped."""
        with self._lock:
            other = self._others.get(domain) or self._others.setdefault(domain, Assistant(domain, self._base_config))
        routed = other._prepare(question, AUTO, dataclasses.replace(options, filters=None), cross=False)
        answer = routed.answer
        answer.reason = f"auto -> {why}: answered in the {domain} domain; " \
                        f"{answer.reason.removeprefix('auto -> ')}"
        answer.warnings.insert(0, f"answered from the '{domain}' domain (asked in '{self.domain.name}'): "
                                  "the question looks like it belongs there")
        answer.details["asked_in"] = self.domain.name
        routed.start = start
        return routed

    def score_options(self, question: Question, replies: Sequence[str]) -> list[float]:
        """Log-likelihood of each reply as the model's answer to the prepared prompt (with its adapter)."""
        prepared = question.prepared
        if prepared.prompt is None:
            raise InputError("nothing to score: this question has no prompt (see the answer's warnings)")
        return question.owner.generator.score_options(prepared.prompt, replies, adapter=prepared.adapter)

    def complete_many(self, questions: Sequence[Question], replies: Sequence[Sequence[str]] | None = None
                      ) -> list[tuple[list[float] | None, Answer | AssistantError]]:
        """`complete` for many prepared questions, each one's `replies` scored first (as `score_options`), their
        replies written together where the model can (Generator.run_jobs: llama.cpp in batches, a server in
        parallel). For each question: its replies' scores (None: none asked, or no prompt) and its Answer, or
        its own error. Each answer's "generate" timing is its share of its model's time for them all."""
        from assistant.models import Job

        asked = list(replies) if replies is not None else [()] * len(questions)
        by_model: dict[int, list[int]] = {}  # one run_jobs per model (the router may send some elsewhere)
        for i, q in enumerate(questions):
            if q.has_prompt:
                by_model.setdefault(id(q.owner.generator), []).append(i)
        done: dict[int, Done] = {}
        for members in by_model.values():
            start = time.perf_counter()
            jobs = [Job(p.prompt, tuple(asked[i]), p.new_tokens(questions[i].options), p.adapter)
                    for i in members if (p := questions[i].prepared).prompt is not None]
            done |= dict(zip(members, questions[members[0]].owner.generator.run_jobs(jobs), strict=True))
            share = (time.perf_counter() - start) / len(members)
            for i in members:
                questions[i].generation = done[i].generation
                questions[i].prepared.answer.timings["generate"] = share
        out: list[tuple[list[float] | None, Answer | AssistantError]] = []
        for i, q in enumerate(questions):
            if i in done and (error := done[i].error) is not None:
                out.append((None, error))
                continue
            try:
                out.append((done[i].scores if i in done else None, self._finish(q)))
            except AssistantError as exc:
                out.append((None, exc))
        return out

    def complete(self, question: Question) -> Answer:
        """Generate the prepared question's reply (once) and finish the Answer."""
        for _ in self._generate(question, stream=False):
            pass
        return self._finish(question)

    def _generate(self, question: Question, *, stream: bool) -> Iterator[str]:
        """The one generation call: streamed pieces are yielded (plain: none); the Generation is kept."""
        prepared = question.prepared
        if prepared.prompt is None or question.generation is not None:  # generated already (complete_many)
            return
        generator = question.owner.generator  # another domain's model, when the question was answered there
        start = time.perf_counter()
        max_new, adapter = prepared.new_tokens(question.options), prepared.adapter
        if stream:
            pieces = generator.stream(prepared.prompt, max_new_tokens=max_new, adapter=adapter)
            with contextlib.closing(pieces):  # a consumer that stops early stops the generation
                yield from pieces
            question.generation = pieces.result
        else:
            question.generation = generator.generate(prepared.prompt, max_new_tokens=max_new, adapter=adapter)
        prepared.answer.timings["generate"] = time.perf_counter() - start

    def _finish(self, question: Question) -> Answer:
        """The strategy's finish (citations, warnings), the timings, and what the index does not hold yet."""
        prepared = question.prepared
        answer = prepared.strategy.finish(question.ctx, prepared, question.generation)
        if question.loaded > 0.05:  # the first question pays for loading the model and the index
            answer.timings["load"] = question.loaded
        answer.timings["total"] = time.perf_counter() - question.start
        if answer.sources:
            question.owner._coverage.note_missing(answer)
        return answer

    def retrieve(
        self,
        question: str,
        *,
        top_k: int | None = None,
        mode: str | None = None,
        filters: Mapping[str, str | Sequence[str]] | None = None,
        scope: bool = True,
    ) -> list[Source]:
        """The passages the index returns for `question`, without generating an answer; without `filters`,
        in the companies the question names (`scope=False`: the whole index; assistant.scope)."""
        with self._lock:
            retriever = self.retriever
        return retrieve_in_scope(retriever, check_question(question), top_k=top_k, mode=mode, filters=filters,
                                 scope=scope)[0]
