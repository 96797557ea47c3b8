"""Strategies with a fake generator and a fake retriever: prompts, citations, warnings, no model needed."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from assistant.config import Config, RetrievalConfig
from assistant.errors import ConfigError, InputError, NotFoundError
from assistant.models import EncodedPrompt
from assistant.strategies import (
    AskOptions,
    Strategy,
    StrategyContext,
    attribute,
    check_citations,
    check_question,
    fit_sources,
    get_strategy,
)
from assistant.types import Answer, Source


@dataclass
class Gen:
    text: str
    prompt_tokens: int
    output_tokens: int
    seconds: float = 0.01
    finish_reason: str = "stop"


@dataclass
class FakeGenerator:
    reply: str = "Yes, it does [1]."
    name: str = "fake"
    seen: list[list[dict[str, str]]] = field(default_factory=list)

    def render(self, messages: list[dict[str, str]]) -> str:
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def truncate(self, text: str, max_tokens: int) -> str:
        return " ".join(text.split()[:max_tokens])

    def encode_prompt(self, messages, *, check=True):
        text = self.render(messages)
        return self.check_prompt(FakePrompt(text, list(range(self.count_tokens(text))), messages)) if check else \
            FakePrompt(text, list(range(self.count_tokens(text))), messages)

    def check_prompt(self, prompt):
        if len(prompt.ids) > 4096:
            raise InputError(f"the prompt is {len(prompt.ids)} tokens")
        return prompt

    def generate(self, prompt, *, max_new_tokens=None, temperature=None, stop=(), adapter=None):
        self.seen.append(prompt.messages)
        return Gen(self.reply, len(prompt.ids), len(self.reply.split()))


@dataclass(frozen=True)
class FakePrompt(EncodedPrompt):
    messages: list[dict[str, str]] = field(default_factory=list)


@dataclass
class FakeRetriever:
    sources: list[Source]
    calls: list[dict] = field(default_factory=list)

    def retrieve(self, query, *, top_k=None, mode=None, filters=None, min_similarity=None):
        self.calls.append({"query": query, "top_k": top_k, "filters": filters})
        return self.sources[: top_k or len(self.sources)]

    def scope_of(self, question):
        return {}


def answer_with(strategy: Strategy, c: StrategyContext, question: str, options: AskOptions) -> Answer:
    """What Assistant.complete does around a strategy: prepare, one generation, finish."""
    prepared = strategy.prepare(c, check_question(question), options)
    if prepared.prompt is None:
        return strategy.finish(c, prepared, None)
    generation = c.get_generator().generate(prepared.prompt, max_new_tokens=prepared.new_tokens(options),
                                            adapter=prepared.adapter)
    prepared.answer.timings["generate"] = generation.seconds
    return strategy.finish(c, prepared, generation)


def src(i: int, text: str, sim: float = 0.8) -> Source:
    return Source(doc_id=f"d{i}", title=f"Doc {i}", locator=f"https://x/{i}", score=1 / i, snippet=text, similarity=sim)


def ctx(config: Config, gen: FakeGenerator, ret: FakeRetriever) -> StrategyContext:
    return StrategyContext(config=config, domain=config.domain("medical"), get_generator=lambda: gen, get_retriever=lambda: ret)


def test_unknown_strategy_lists_known() -> None:
    with pytest.raises(NotFoundError, match=r"unknown strategy 'magic' \(known: adapter, auto, base, cot, fewshot, rag, rag\+adapter\)"):
        get_strategy("magic")
    for bad in ("fewshot:0", "fewshot:7", "fewshot:x"):
        with pytest.raises(ConfigError, match="K from 1 to 6"):
            get_strategy(bad)
    assert get_strategy("fewshot:5").k == 5 and get_strategy("fewshot").k == 3
    with pytest.raises(ConfigError, match="takes no argument"):
        get_strategy("rag:3")


def test_base_uses_domain_instruction_and_no_retrieval(config: Config) -> None:
    gen, ret = FakeGenerator(reply="Glaucoma damages the optic nerve."), FakeRetriever([src(1, "x")])
    ans = answer_with(get_strategy("base"), ctx(config, gen, ret), "  What is glaucoma? ", AskOptions())
    assert ans.text == "Glaucoma damages the optic nerve." and ans.sources == [] and ret.calls == []
    assert gen.seen[0][0]["content"] == config.domain("medical").instruction
    assert gen.seen[0][1]["content"] == "What is glaucoma?"
    assert ans.output_tokens == 5 and ans.finish_reason == "stop"


def test_rag_numbers_sources_in_prompt_and_keeps_valid_citations(config: Config) -> None:
    sources = [src(1, "Mitochondria move during cell death."), src(2, "Leaves form holes.")]
    gen, ret = FakeGenerator(reply="Yes [1], see also [2] and [7]."), FakeRetriever(sources)
    ans = answer_with(get_strategy("rag"), ctx(config, gen, ret), "Do mitochondria matter?", AskOptions(filters={"corpus": "pubmedqa"}))
    prompt = gen.seen[0][1]["content"]
    assert "[1] Doc 1 (https://x/1)\n<source 1>\nMitochondria move" in prompt and "[2] Doc 2" in prompt
    assert ret.calls[0]["filters"] == {"corpus": "pubmedqa"}
    assert ans.sources == sources and ans.citations == [1, 2]
    assert "[7]" not in ans.text and any("[7]" in w for w in ans.warnings)
    assert "retrieve" in ans.timings and "generate" in ans.timings


def test_rag_warns_on_low_relevance(config: Config) -> None:
    config = config.replace(retrieval=RetrievalConfig(low_relevance=0.5))
    ans = answer_with(get_strategy("rag"), ctx(config, FakeGenerator(), FakeRetriever([src(1, "unrelated", sim=0.1)])), "q?", AskOptions()
    )
    assert any("low relevance" in w and "0.10" in w for w in ans.warnings)


def test_rag_with_no_sources_says_so(config: Config) -> None:
    gen = FakeGenerator()
    ans = answer_with(get_strategy("rag"), ctx(config, gen, FakeRetriever([])), "q?", AskOptions())
    assert ans.sources == [] and gen.seen == [] and "no sources retrieved" in ans.warnings


def test_empty_and_too_long_questions_are_input_errors(config: Config) -> None:
    c = ctx(config, FakeGenerator(), FakeRetriever([src(1, "x")]))
    with pytest.raises(InputError, match="question is empty"):
        answer_with(get_strategy("rag"), c, "   ", AskOptions())
    with pytest.raises(InputError, match="the question is 5000 tokens"):
        answer_with(get_strategy("rag"), c, "word " * 5000, AskOptions())


def test_fit_sources_drops_lowest_ranked_until_the_prompt_fits(config: Config) -> None:
    long = " ".join(["token"] * 300)
    sources = [src(i, long) for i in range(1, 9)]
    gen = FakeGenerator()
    kept, messages, prompt = fit_sources(config.domain("medical"), "q?", sources, gen, config.replace(
        generation=config.generation.__class__(max_input_tokens=1000, passage_tokens=300)))
    assert 1 <= len(kept) < 8 and kept == sources[: len(kept)]
    assert prompt is not None and len(prompt.ids) <= 1000 and prompt.text == gen.render(messages)


def test_check_citations() -> None:
    text, cited, warnings = check_citations("A [1, 3]. B [2][9]. C [4] .", 3)
    assert cited == [1, 2, 3] and text == "A [1, 3]. B [2]. C."
    assert warnings == ["removed citation [4]: there is no source 4", "removed citation [9]: there is no source 9"]


def test_attribute_marks_sentences_with_overlapping_sources() -> None:
    sources = [src(1, "Boeing total revenues were $66.6 billion in 2022."), src(2, "Verizon wireless subscribers grew.")]
    text, cited = attribute("Total revenues were $66.6 billion in 2022. The weather is nice.", sources)
    assert text == "Total revenues were $66.6 billion in 2022 [1]. The weather is nice."
    assert cited == [1]
