"""Routing policies: signals in, a strategy and the reason for it out.

    from assistant.router.policy import Decision, RulePolicy
    decision = RulePolicy().decide(signals)          # works with no evaluation data
    decision.strategy    # "rag+adapter:medical-sft"  (decision.adapter: "medical-sft")
    decision.reason      # "rag: top retrieval score 0.71 is above 0.55; adapter medical-sft added: ..."

RulePolicy is explainable thresholds (see its docstring for the rules). LearnedPolicy (assistant.router
.learned) is a small scikit-learn classifier trained on evaluation records. Both are pure functions of
`Signals`: deciding never touches a model or an index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from assistant.router.signals import Signals

TYPE_WORDS = {"label": "a yes/no research question", "numeric": "a numeric question", "free": "a free-form question"}


ADAPTER_STRATEGIES = ("adapter", "rag+adapter")


@dataclass(frozen=True)
class Decision:
    """What to answer with, and why.

    strategy: the strategy spec ("base", "rag", "fewshot:3", "adapter:NAME", "rag+adapter:NAME"), as
        `get_strategy` and the evaluation records name it; `adapter` is its adapter, if any.
    reason: the numbers and thresholds compared, in words, for the user.
    domain: the domain the question was routed in (None: outside every known domain).
    index_missing: the domain has no index yet, so nothing could be retrieved.
    """

    strategy: str
    reason: str
    domain: str | None = None
    index_missing: bool = False

    def __post_init__(self) -> None:
        if not self.strategy or not isinstance(self.strategy, str):
            raise ValueError(f"Decision.strategy must be a strategy spec, got {self.strategy!r}")

    @property
    def adapter(self) -> str | None:
        """The adapter of "adapter:NAME" and "rag+adapter:NAME", else None."""
        name, _, arg = self.strategy.partition(":")
        return arg if name in ADAPTER_STRATEGIES and arg else None


class Policy(Protocol):
    def decide(self, signals: Signals) -> Decision: ...


def _pick(s: Signals, *, with_context: bool) -> str:
    """The adapter to use when no evaluation says which is best: with retrieved context, the first RAFT
    adapter (trained to read retrieved passages, as its record says), else the first; without, the first
    non-RAFT one."""
    adapters = s.adapters
    raft = [a for a in adapters if a in s.context_adapters]
    other = [a for a in adapters if a not in s.context_adapters]
    preferred = raft if with_context else other
    return (preferred or list(adapters))[0]


def _best(accuracy: Mapping[str, float], specs: list[tuple[str, str]]) -> tuple[str, str, float] | None:
    """The (adapter name, spec, accuracy) with the best accuracy among `specs` that were evaluated;
    ties keep the order of the domain's adapters."""
    scored = [(name, spec, accuracy[spec]) for name, spec in specs if spec in accuracy]
    return max(scored, key=lambda t: t[2]) if scored else None


RULES = (
    "out of domain (no domain, or domain similarity < min_domain_similarity) -> base, no retrieval",
    "top_score >= min_top_score (and gap >= min_gap, agreement >= min_agreement) -> rag",
    "  + adapter when its evaluated rag+adapter accuracy beats rag's by more than adapter_margin",
    "  + adapter (RAFT first) when nothing was evaluated and the question is a closed (label) question",
    "weak retrieval -> adapter:NAME when the domain has one (unless base scored as well), else base",
)


@dataclass(frozen=True)
class RulePolicy:
    """Explainable thresholds that need no evaluation data. In order:

    1. Out of domain (no domain, or domain similarity < min_domain_similarity): "base", no retrieval.
    2. Confident retrieval (top_score >= min_top_score, score_gap >= min_gap and agreement >= min_agreement;
       an unknown gap or agreement does not count against it): "rag", plus an adapter
       - when evaluation accuracies are known for "rag" and some "rag+adapter:NAME" of the domain's
         adapters: the best of those, if it beats rag's accuracy by more than adapter_margin;
       - otherwise, when the question is a closed (label) question and the domain has an adapter: the first
         RAFT adapter (trained with retrieved context), else the first adapter. Closed questions are where
         a small model most needs the answer format an adapter learned; numeric and free-form answers are
         read from the sources.
    3. Weak retrieval: "adapter:NAME" when the domain has one (the best evaluated "adapter:NAME", unless
       "base" scored at least as well; with no accuracies the first non-RAFT adapter), else "base".
    Every reason names the numbers and the thresholds it compared.
    """

    min_top_score: float = 0.55
    min_gap: float = 0.0
    min_agreement: float = 0.0
    min_domain_similarity: float = 0.3
    adapter_margin: float = 0.0

    def __post_init__(self) -> None:
        for name in ("min_top_score", "min_gap", "min_agreement", "min_domain_similarity", "adapter_margin"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not -1.0 <= value <= 1.0:
                raise ValueError(f"RulePolicy.{name} must be a number in [-1, 1], got {value!r}")

    def describe(self) -> dict[str, Any]:
        """The thresholds and the rules, for `assistant router show`."""
        return {"policy": "rules", "thresholds": asdict(self), "rules": list(RULES)}

    def decide(self, signals: Signals) -> Decision:
        if signals.domain is None or signals.domain_similarity < self.min_domain_similarity:
            return Decision("base", "question is outside the known domains (best similarity "
                            f"{signals.domain_similarity:.2f} < {self.min_domain_similarity:.2f}): "
                            "base model, no retrieval")
        weak = self._weak_retrieval(signals)
        if weak is None:
            return self._with_retrieval(signals)
        return self._without_retrieval(signals, weak)

    def _weak_retrieval(self, s: Signals) -> str | None:
        """Why retrieval is not trusted, or None when it is."""
        if s.top_score is None:
            return "nothing was retrieved"
        if s.top_score < self.min_top_score:
            return f"top retrieval score {s.top_score:.2f} is below {self.min_top_score:.2f}"
        if s.score_gap is not None and s.score_gap < self.min_gap:
            return f"gap between the first two retrieval scores {s.score_gap:.2f} is below {self.min_gap:.2f}"
        if s.agreement is not None and s.agreement < self.min_agreement:
            return f"BM25 and dense retrieval agree on {s.agreement:.2f} of the top hits, below {self.min_agreement:.2f}"
        return None

    def _with_retrieval(self, s: Signals) -> Decision:
        verb = "is above" if s.top_score is not None and s.top_score > self.min_top_score else "reaches"
        reason = f"rag: top retrieval score {s.top_score:.2f} {verb} {self.min_top_score:.2f}"
        if not s.adapters:
            return Decision("rag", reason)
        rag = s.adapter_accuracy.get("rag")
        best = _best(s.adapter_accuracy, [(a, f"rag+adapter:{a}") for a in s.adapters])
        if rag is not None and best is not None:
            name, spec, acc = best
            if acc > rag + self.adapter_margin:
                return Decision(spec, f"{reason}; adapter {name} added: {spec} scored {acc:.2f} vs rag "
                                f"{rag:.2f} in evaluation")
            return Decision("rag", f"{reason}; no adapter: {spec} scored {acc:.2f}, not above rag's {rag:.2f} "
                            f"(+{self.adapter_margin:.2f}) in evaluation")
        if s.question_type == "label":
            name = _pick(s, with_context=True)
            return Decision(f"rag+adapter:{name}", f"{reason}; adapter {name} added: question is "
                            f"{TYPE_WORDS['label']}")
        return Decision("rag", f"{reason}; no adapter: question is {TYPE_WORDS[s.question_type]} and no "
                        "evaluation shows an adapter helping rag")

    def _without_retrieval(self, s: Signals, weak: str) -> Decision:
        if not s.adapters:
            return Decision("base", f"base: {weak} and {s.domain} has no adapter")
        best = _best(s.adapter_accuracy, [(a, f"adapter:{a}") for a in s.adapters])
        base = s.adapter_accuracy.get("base")
        if best is not None:
            name, spec, acc = best
            if base is not None and base >= acc:
                return Decision("base", f"base: {weak}; {spec} scored {acc:.2f}, not above base's {base:.2f} "
                                "in evaluation")
            return Decision(spec, f"{spec}: {weak}, so retrieval is not trusted; {spec} scored {acc:.2f} "
                            "in evaluation")
        name = _pick(s, with_context=False)
        return Decision(f"adapter:{name}", f"adapter:{name}: {weak}, so retrieval is not trusted; the "
                        f"{s.domain} adapter answers from what it learned")


__all__ = ["ADAPTER_STRATEGIES", "RULES", "TYPE_WORDS", "Decision", "Policy", "RulePolicy"]
