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
from functools import cached_property
from typing import TYPE_CHECKING, Any

from assistant.config import Config, load_config
from assistant.errors import AssistantError, NotFoundError
from assistant.strategies import DESCRIPTIONS, AskOptions, Strategy, StrategyContext, get_strategy
from assistant.types import Answer, Source

if TYPE_CHECKING:
    from assistant.models import Generation, Generator
    from assistant.retrieval import Retriever


class Assistant:
    """Answers questions about one domain ("medical", "finance", or any configured one)."""

    def __init__(self, domain: str, config: Config | None = None) -> None:
        self.config = config or load_config()
        self.domain = self.config.domain(domain)  # unknown domain -> NotFoundError listing the known ones
        self._lock = threading.Lock()

    @classmethod
    def load(cls, domain: str = "medical", *, config: Config | None = None, **overrides: Any) -> Assistant:
        """An Assistant for `domain`; `overrides` replace top-level config fields (e.g. default_strategy)."""
        config = config or load_config()
        return cls(domain, config.replace(**overrides) if overrides else config)

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

    def _context(self) -> StrategyContext:
        return StrategyContext(
            config=self.config,
            domain=self.domain,
            get_generator=lambda: self.generator,
            get_retriever=lambda: self.retriever,
        )

    def warm_up(self, strategy: str | None = None) -> None:
        """Load now what the first question with `strategy` (default: config.default_strategy) would pay for:
        the model, and as the strategy needs them the index, an adapter, the few-shot pool, the router."""
        _, chosen, _, ctx = self._begin(strategy, AskOptions())
        warm = getattr(chosen, "warm_up", None)
        if warm is not None:
            with self._lock:
                warm(ctx)

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
    ) -> Answer:
        """Answer `question` with `strategy` (default: config.default_strategy) and say which and why.

        `adapter` names a trained adapter for the strategies "adapter" and "rag+adapter"; it is loaded
        onto the shared base model once and switched per question.
        """
        start = time.perf_counter()
        spec, chosen, options, ctx = self._begin(strategy, AskOptions(
            top_k=top_k, mode=mode, filters=filters, max_new_tokens=max_new_tokens, adapter=adapter))
        loaded = time.perf_counter() - start
        return self._finish(chosen.answer(ctx, question, options), strategy, spec, start, loaded)

    def _begin(self, strategy: str | None, options: AskOptions) -> tuple[str, Strategy, AskOptions, StrategyContext]:
        """The strategy spec and object, and a context with the model (and index) loaded."""
        spec = strategy or self.config.default_strategy
        chosen = get_strategy(spec)
        # cached_property is not thread-safe: load the model and index under one lock (once per Assistant)
        with self._lock:
            ctx = self._context()
            if chosen.uses_retrieval and spec != "auto":  # auto answers without an index (base), and says so
                _ = self.retriever
            _ = self.generator
        return spec, chosen, options, ctx

    def _finish(self, answer: Answer, requested: str | None, spec: str, start: float, loaded: float) -> Answer:
        """Name the strategy and why, the timings, and what the index searched does not hold yet."""
        if spec == "auto":  # the router set the strategy it chose and its reason
            answer.reason = f"auto -> {answer.reason}"
        else:
            why = "requested" if requested else "the configured default strategy (config: default_strategy)"
            answer.strategy = spec
            answer.reason = f"{spec}: {why}"
        if loaded > 0.05:  # the first question pays for loading the model and the index
            answer.timings["load"] = loaded
        answer.timings["total"] = time.perf_counter() - start
        if answer.sources:
            self._note_missing_corpora(answer)
        return answer

    def _note_missing_corpora(self, answer: Answer) -> None:
        """While the domain's index is still being built (or a corpus was added since), say what it lacks."""
        from assistant.corpus import corpora_for
        from assistant.index import index_status

        try:
            held = index_status(self.index_name, self.config).corpora
            missing = [c for c in corpora_for(self.domain.name, self.config) if c not in held]
        except AssistantError:
            return
        if missing:
            answer.warnings.append(
                f"the '{self.index_name}' index does not hold {', '.join(missing)} yet (still being built, or run "
                f"`assistant index build {self.index_name}`): this answer searched {', '.join(held)} only"
            )

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
    ) -> Iterator[str | Answer]:
        """`ask`, streamed: yields the reply's text pieces as the model writes them, then the final Answer.

        The strategy prepares the prompt (routing, retrieval) as in `ask`; the generation is streamed; then
        the strategy completes the answer from the streamed text (RAG checks and adds citation markers), so
        the final `Answer.text` may differ from the joined pieces. Input errors raise on the first `next()`.
        `usage["output_tokens"]` is the streamed text re-tokenized (the stream does not count its tokens),
        so it and the "cut at N tokens" warning may differ slightly from `ask`'s.
        """
        start = time.perf_counter()
        spec, chosen, options, ctx = self._begin(strategy, AskOptions(
            top_k=top_k, mode=mode, filters=filters, max_new_tokens=max_new_tokens, adapter=adapter))
        generator = self.generator
        loaded = time.perf_counter() - start
        prepared = chosen.prepare(ctx, question, options)
        streamed = 0.0
        if prepared.messages:
            max_new = options.max_new_tokens if options.max_new_tokens is not None else prepared.max_new_tokens
            gen_start = time.perf_counter()
            pieces: list[str] = []
            stream = generator.stream(prepared.messages, max_new_tokens=max_new, adapter=prepared.adapter)
            with contextlib.closing(stream):  # a consumer that stops early stops the generation
                for piece in stream:
                    pieces.append(piece)
                    yield piece
            streamed = time.perf_counter() - gen_start
            done = _streamed_generation(generator, prepared.messages, "".join(pieces), max_new, streamed)
            # `complete` generates through ctx: hand it the streamed text instead of generating again
            ctx = dataclasses.replace(ctx, get_generator=lambda: _Replay(generator, done))
        answer = chosen.complete(ctx, prepared, options)
        if prepared.messages:
            answer.timings["generate"] = streamed
        yield self._finish(answer, strategy, spec, start, loaded)

    def retrieve(
        self,
        question: str,
        *,
        top_k: int | None = None,
        mode: str | None = None,
        filters: Mapping[str, str | Sequence[str]] | None = None,
    ) -> list[Source]:
        """The passages the index returns for `question`, without generating an answer."""
        from assistant.strategies import check_question

        with self._lock:
            retriever = self.retriever
        return retriever.retrieve(check_question(question), top_k=top_k, mode=mode, filters=filters)


def _streamed_generation(
    generator: Generator, messages: list[dict[str, str]], text: str, max_new: int | None, seconds: float
) -> Generation:
    """The Generation that `generate` would have returned for a streamed reply (stream and generate share
    decoding and the visible-text rule, so the texts are equal)."""
    from assistant.models import Generation

    n_prompt = len(generator.prompt_ids(messages))
    wanted = max_new if max_new is not None else generator.config.max_new_tokens
    limit = max(1, min(wanted, generator.context_length - n_prompt))
    n_out = min(generator.count_tokens(text), limit)  # re-tokenized: the stream does not report its count
    return Generation(text, n_prompt, n_out, seconds, "length" if n_out >= limit else "stop")


class _Replay:
    """The generator as `Strategy.complete` sees it after streaming: `generate` returns the streamed reply;
    everything else (name, tokenizer, adapters) is the real generator's."""

    def __init__(self, generator: Generator, generation: Generation) -> None:
        self._generator = generator
        self._generation = generation

    def generate(self, messages: object, **kwargs: object) -> Generation:
        return self._generation

    def __getattr__(self, name: str) -> object:
        return getattr(self._generator, name)
