"""Signals: the question-type heuristic on real-looking questions, domains, retrieval signals, features."""

from __future__ import annotations

import pytest

from assistant.router.signals import (
    FEATURES,
    MISSING_DEFAULTS,
    Signals,
    domain_of,
    question_type,
    retrieval_signals,
)

QUESTIONS = [
    # PubMedQA-style yes/no research questions
    ("Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?", "label"),
    ("Is laparoscopic cholecystectomy safe and acceptable as a day case procedure?", "label"),
    ("Are the elderly with oropharyngeal carcinoma undertreated?", "label"),
    ("Does the sex of the surgeon affect patient outcomes after cardiac surgery?", "label"),
    ("Can tailored interventions increase mammography use among HMO women?", "label"),
    ("Should elderly patients with hip fractures be operated on within 48 hours?", "label"),
    ("Has the incidence of tuberculosis in children decreased since 2000?", "label"),
    ("Sublingual varices: are they a marker of portal hypertension?", "label"),
    ("In patients with septic shock, does early goal-directed therapy reduce mortality?", "label"),
    ("Aspirin in the elderly: beneficial or not?", "label"),
    # MedQuAD-style questions
    ("What are the symptoms of Marfan syndrome?", "free"),
    ("What are the genetic changes related to cystic fibrosis?", "free"),
    ("What is (are) Parkinson's disease?", "free"),
    ("What is the outlook for people with Guillain-Barré syndrome?", "free"),
    ("What is the difference between type 1 and type 2 diabetes?", "free"),
    ("How to diagnose Lyme disease?", "free"),
    ("Who is at risk for glaucoma?", "free"),
    ("How many people are affected by sickle cell disease?", "numeric"),
    # TAT-QA / filings-style questions
    ("What was the percentage change in revenue from 2018 to 2019?", "numeric"),
    ("How much did operating income change from 2018 to 2019?", "numeric"),
    ("What was Boeing's total revenue in 2022?", "numeric"),
    ("What is the average net debt for 2018 and 2019?", "numeric"),
    ("What was the change in the EBITDA margin between 2018 and 2019?", "numeric"),
    ("In 2019, what was the ratio of current assets to current liabilities?", "numeric"),
    ("What is the company's net income in 2019?", "numeric"),
    ("What percentage of total revenue came from the Americas in 2019?", "numeric"),
    ("By how much did cash and cash equivalents increase?", "numeric"),
    ("What was the difference in employee benefits between 2019 and 2018?", "numeric"),
    ("What does the company's revenue consist of?", "free"),
    ("In which year was the operating income higher?", "free"),
    ("Which segment contributed the most to revenue?", "free"),
    ("How is goodwill tested for impairment?", "free"),
    ("Did the revenue increase from 2018 to 2019?", "label"),
    ("Was the company's debt to equity ratio above 1 in 2019?", "label"),
    ("  “Is the dividend covered by free cash flow?”", "label"),
]


@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_question_type(question: str, expected: str) -> None:
    assert question_type(question) == expected


def test_question_type_empty_is_free() -> None:
    assert question_type("") == "free"


@pytest.mark.parametrize(
    ("similarities", "threshold", "expected"),
    [
        ({"medical": 0.62, "finance": 0.18}, 0.3, ("medical", 0.62)),
        ({"medical": 0.21, "finance": 0.12}, 0.3, (None, 0.21)),
        ({"medical": 0.30}, 0.3, ("medical", 0.30)),  # at the threshold: in domain
        ({"medical": 0.5, "finance": 0.5}, 0.3, ("finance", 0.5)),  # ties: alphabetical, not dict order
        ({}, 0.3, (None, 0.0)),
    ],
)
def test_domain_of(similarities: dict[str, float], threshold: float, expected: tuple[str | None, float]) -> None:
    assert domain_of(similarities, threshold) == pytest.approx(expected)


def test_retrieval_signals() -> None:
    dense = [("d1", 0.71), ("d2", 0.52), ("d1", 0.50), ("d3", 0.40), ("d4", 0.30), ("d5", 0.2), ("d6", 0.1)]
    bm25 = [("d2", 12.0), ("d9", 9.0), ("d1", 7.5), ("d8", 3.0), ("d7", 1.0)]
    top, gap, agreement = retrieval_signals(dense, bm25, k=5)
    assert top == pytest.approx(0.71)
    assert gap == pytest.approx(0.19)
    # dense top-5 distinct ids: d1 d2 d3 d4 d5; BM25: d2 d9 d1 d8 d7 -> 2 shared of 5
    assert agreement == pytest.approx(0.4)


def test_retrieval_signals_missing_and_unsorted() -> None:
    assert retrieval_signals([], [("a", 1.0)]) == (None, None, None)
    top, gap, agreement = retrieval_signals([("a", 0.6)], [])
    assert (top, gap, agreement) == (pytest.approx(0.6), None, None)
    top, gap, agreement = retrieval_signals([("b", 0.3), ("a", 0.8)], [("a", 2.0)], k=1)
    assert (top, gap, agreement) == (pytest.approx(0.8), pytest.approx(0.5), pytest.approx(1.0))
    with pytest.raises(ValueError, match="k must be"):
        retrieval_signals([], [], k=0)


def test_features_order_defaults_and_round_trip() -> None:
    full = Signals("medical", 0.62, 0.71, 0.1, 0.6, "label", ("medical-sft", "medical-raft"),
                   {"rag": 0.55, "rag+adapter:medical-raft": 0.62, "adapter:medical-sft": 0.5})
    values = dict(zip(FEATURES, full.to_features(), strict=True))
    assert len(full.to_features()) == len(FEATURES)
    assert values["top_score"] == pytest.approx(0.71) and values["top_score_missing"] == 0.0
    assert (values["type_label"], values["type_numeric"], values["type_free"]) == (1.0, 0.0, 0.0)
    assert values["n_adapters"] == 2.0 and values["has_adapter"] == 1.0
    assert values["rag_accuracy"] == pytest.approx(0.55)
    assert values["best_adapter_accuracy"] == pytest.approx(0.62)
    assert Signals.from_dict(full.to_dict()) == full

    bare = Signals(None, 0.21)
    values = dict(zip(FEATURES, bare.to_features(), strict=True))
    assert len(values) == len(FEATURES)
    assert values["in_domain"] == 0.0 and values["type_free"] == 1.0
    for name, default in MISSING_DEFAULTS.items():
        assert values[name] == default and values[f"{name}_missing"] == 1.0
    assert Signals.from_dict(bare.to_dict()) == bare
    assert hash(bare) == hash(Signals(None, 0.21))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"question_type": "yesno"}, "question_type"),
        ({"agreement": 1.5}, "agreement"),
        ({"top_score": float("nan")}, "top_score"),
        ({"adapters": "medical-sft"}, "adapters"),
        ({"adapter_accuracy": {"rag": 2.0}}, "adapter_accuracy"),
    ],
)
def test_signals_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Signals("medical", 0.5, **kwargs)  # type: ignore[arg-type]


def test_from_dict_needs_domain() -> None:
    with pytest.raises(ValueError, match="domain"):
        Signals.from_dict({"top_score": 0.5})
