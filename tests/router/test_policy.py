"""The rule policy on hand-made signals: every branch, the strategy and the reason text."""

from __future__ import annotations

from typing import Any

import pytest

from assistant.router.policy import Decision, RulePolicy
from assistant.router.signals import Signals

SFT = ("medical-sft",)
BOTH = ("medical-sft", "medical-raft")


def sig(**kw: Any) -> Signals:
    base: dict[str, Any] = dict(domain="medical", domain_similarity=0.62, top_score=0.71, score_gap=0.1,
                                agreement=0.6, question_type="label", adapters=())
    return Signals(**(base | kw))


CASES = [
    # (name, signals, policy, strategy, text the reason must contain)
    ("confident, no adapter", sig(), RulePolicy(), "rag",
     "rag: top retrieval score 0.71 is above 0.55"),
    ("confident, label, adapter", sig(adapters=SFT), RulePolicy(), "rag+adapter:medical-sft",
     "rag: top retrieval score 0.71 is above 0.55; adapter medical-sft added: question is a yes/no research "
     "question"),
    ("confident, label, raft preferred", sig(adapters=BOTH, context_adapters=("medical-raft",)), RulePolicy(),
     "rag+adapter:medical-raft",
     "adapter medical-raft added"),
    ("confident, numeric: no adapter", sig(question_type="numeric", adapters=SFT), RulePolicy(), "rag",
     "no adapter: question is a numeric question"),
    ("at the threshold", sig(top_score=0.55), RulePolicy(), "rag", "0.55 reaches 0.55"),
    ("evaluated adapter beats rag", sig(question_type="free", adapters=SFT,
                                        adapter_accuracy={"rag": 0.55, "rag+adapter:medical-sft": 0.62}),
     RulePolicy(), "rag+adapter:medical-sft", "rag+adapter:medical-sft scored 0.62 vs rag 0.55"),
    ("evaluated adapter loses to rag", sig(adapters=SFT,
                                           adapter_accuracy={"rag": 0.60, "rag+adapter:medical-sft": 0.50}),
     RulePolicy(), "rag", "scored 0.50, not above rag's 0.60"),
    ("adapter within the margin", sig(adapters=SFT,
                                      adapter_accuracy={"rag": 0.60, "rag+adapter:medical-sft": 0.62}),
     RulePolicy(adapter_margin=0.05), "rag", "not above rag's 0.60 (+0.05)"),
    ("weak retrieval, adapter", sig(top_score=0.41, adapters=SFT), RulePolicy(), "adapter:medical-sft",
     "top retrieval score 0.41 is below 0.55"),
    ("weak retrieval, non-raft adapter preferred", sig(top_score=0.41, adapters=("medical-raft", "medical-sft"),
                                                               context_adapters=("medical-raft",)),
     RulePolicy(), "adapter:medical-sft", "is below 0.55"),
    ("weak retrieval, no adapter", sig(top_score=0.41), RulePolicy(), "base",
     "base: top retrieval score 0.41 is below 0.55 and medical has no adapter"),
    ("nothing retrieved", sig(top_score=None, score_gap=None, agreement=None, adapters=SFT), RulePolicy(),
     "adapter:medical-sft", "nothing was retrieved"),
    ("small gap", sig(score_gap=0.01, adapters=SFT), RulePolicy(min_gap=0.05), "adapter:medical-sft",
     "gap between the first two retrieval scores 0.01 is below 0.05"),
    ("disagreement", sig(agreement=0.2), RulePolicy(min_agreement=0.4), "base", "agree on 0.20"),
    ("weak, evaluated adapter", sig(top_score=0.3, adapters=BOTH,
                                    adapter_accuracy={"adapter:medical-sft": 0.4, "adapter:medical-raft": 0.5}),
     RulePolicy(), "adapter:medical-raft", "adapter:medical-raft scored 0.50"),
    ("weak, base scored better", sig(top_score=0.3, adapters=SFT,
                                     adapter_accuracy={"adapter:medical-sft": 0.4, "base": 0.45}),
     RulePolicy(), "base", "not above base's 0.45"),
    ("out of domain", sig(domain=None, domain_similarity=0.21), RulePolicy(), "base",
     "question is outside the known domains (best similarity 0.21 < 0.30): base model, no retrieval"),
    ("domain below the policy's threshold", sig(domain_similarity=0.25, adapters=SFT), RulePolicy(), "base",
     "(best similarity 0.25 < 0.30)"),
    ("custom top score threshold", sig(top_score=0.71), RulePolicy(min_top_score=0.8), "base",
     "0.71 is below 0.80"),
]


@pytest.mark.parametrize(("name", "signals", "policy", "strategy", "reason"), CASES, ids=[c[0] for c in CASES])
def test_rule_policy(name: str, signals: Signals, policy: RulePolicy, strategy: str, reason: str) -> None:
    decision = policy.decide(signals)
    assert decision.strategy == strategy, decision.reason
    assert reason in decision.reason


def test_out_of_domain_reason_is_exact() -> None:
    decision = RulePolicy().decide(Signals(None, 0.21, top_score=0.9, adapters=SFT))
    assert decision == Decision(
        "base", "question is outside the known domains (best similarity 0.21 < 0.30): base model, no retrieval")


def test_thresholds_validated_and_described() -> None:
    with pytest.raises(ValueError, match="min_top_score"):
        RulePolicy(min_top_score=5)
    with pytest.raises(ValueError, match="strategy"):
        Decision("", "no strategy")
    assert Decision("rag+adapter:medical-sft", "why").adapter == "medical-sft"
    assert Decision("fewshot:3", "why").adapter is None and Decision("rag", "why").adapter is None
    shown = RulePolicy().describe()
    assert shown["thresholds"]["min_top_score"] == 0.55 and shown["rules"]
