"""Summaries, Elo and the markdown report from hand-built records with planted correctness."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from assistant.evaluation.report import StrategySummary, elo_games, elo_table, summarize, write_report
from assistant.evaluation.store import Record, Run, Vote

PNG = b"\x89PNG\r\n\x1a\n"


def gold_of(i: int) -> str:
    return "yes" if i % 2 == 0 else "no"


def other(label: str) -> str:
    return "no" if label == "yes" else "yes"


def rec(strategy: str, i: int, correct: bool, **kw: Any) -> Record:
    gold = gold_of(i)
    base: dict[str, Any] = dict(
        run_id="run", item_id=f"q{i}", strategy=strategy, corpus="pubmedqa" if i < 6 else "medquad",
        answer_type="label", question=f"Question {i}?", gold=gold, answer=gold if correct else other(gold),
        parsed=gold if correct else other(gold), scored=gold if correct else other(gold), correct=correct,
        gold_ids=[f"d{i}"], prompt_tokens=100 + i, output_tokens=10, finish_reason="stop",
    )
    base.update(kw)
    return Record(**base)


def planted() -> list[Record]:
    """10 questions x 3 strategies:
    - good: always right, latency 1..10 s;
    - rag:  right on q0-q5, gold document at rank 1 (q0-q3), 2 (q4, q5), 6 (q6, q7), absent (q8, q9);
            only q0-q2 also parse right from the generated text; latency 2 s;
    - bad:  always wrong (q0 raised, q1 refused, q2 looped), no latency recorded.
    """
    records = []
    for i in range(10):
        records.append(rec("good", i, True, latency=float(i + 1)))
        ranked = {0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 6, 7: 6}.get(i)
        retrieved = [f"x{i}-{j}" for j in range(6)]
        if ranked:
            retrieved[ranked - 1] = f"d{i}"
        rag = rec("rag", i, i < 6, retrieved_ids=retrieved, latency=2.0, prompt_tokens=500)
        if 3 <= i < 6:
            rag.parsed = None
        records.append(rag)
        bad = rec("bad", i, False)
        if i == 0:
            bad.error, bad.answer, bad.parsed, bad.scored = "RuntimeError: boom", "", None, None
        elif i == 1:  # judged on the generated text (no option scoring): the text is why it is wrong
            bad.answer, bad.scored = "I'm sorry, the sources do not contain the answer.", None
        elif i == 2:
            bad.answer, bad.scored = "The answer is maybe. " * 6, None
        records.append(bad)
    return records


@pytest.fixture(scope="module")
def summaries() -> dict[str, StrategySummary]:
    return {s.strategy: s for s in summarize(planted())}


def test_summaries_in_first_appearance_order() -> None:
    assert [s.strategy for s in summarize(planted())] == ["good", "rag", "bad"]
    assert summarize([]) == []


def test_accuracy_and_ci(summaries: dict[str, StrategySummary]) -> None:
    good, rag, bad = summaries["good"], summaries["rag"], summaries["bad"]
    assert (good.n, good.accuracy, good.ci_low, good.ci_high) == (10, 1.0, 1.0, 1.0)
    assert rag.accuracy == pytest.approx(0.6)
    assert rag.ci_low < 0.6 < rag.ci_high
    assert bad.accuracy == 0.0
    assert summarize(planted())[1] == rag  # deterministic: the bootstrap is seeded


def test_label_scores(summaries: dict[str, StrategySummary]) -> None:
    assert summaries["good"].macro_f1 == 1.0
    assert summaries["bad"].macro_f1 == 0.0
    assert summaries["good"].generated_accuracy == 1.0
    assert summaries["rag"].generated_accuracy == pytest.approx(0.3)  # q0-q2 parse right, q3-q5 do not
    # option scoring only, nothing generated: no generated-parsed figure
    scored_only = [rec("score", i, True, answer="", parsed=None) for i in range(4)]
    (s,) = summarize(scored_only)
    assert s.generated_accuracy is None and s.macro_f1 == 1.0
    # no label questions: neither figure
    (span,) = summarize([rec("span", 0, True, answer_type="span", em=1.0, f1=1.0)])
    assert span.macro_f1 is None and span.generated_accuracy is None


def test_retrieval(summaries: dict[str, StrategySummary]) -> None:
    rag = summaries["rag"]
    assert rag.recall_at_k == pytest.approx(6 / 10)
    assert rag.mrr == pytest.approx((4 * 1 + 2 * 1 / 2 + 2 * 1 / 6 + 0) / 10)
    assert summaries["good"].recall_at_k is None and summaries["good"].mrr is None
    (k1,) = summarize([r for r in planted() if r.strategy == "rag"], k=1)
    assert k1.recall_at_k == pytest.approx(4 / 10)


def test_latency_tokens_cost(summaries: dict[str, StrategySummary]) -> None:
    good, rag, bad = summaries["good"], summaries["rag"], summaries["bad"]
    assert good.latency_p50 == pytest.approx(5.5)
    assert good.latency_p95 == pytest.approx(9.55)
    assert rag.latency_p50 == rag.latency_p95 == 2.0
    assert rag.cost_per_1000 == pytest.approx(2.0 * 1000 / 3600 * 0.10)
    assert bad.latency_p50 is None and bad.cost_per_1000 is None
    assert good.prompt_tokens == pytest.approx(104.5) and rag.prompt_tokens == 500 and good.output_tokens == 10
    (pricey,) = summarize([r for r in planted() if r.strategy == "rag"], usd_per_hour=3.6)
    assert pricey.cost_per_1000 == pytest.approx(2.0)


def test_em_f1_over_scored_items_only() -> None:
    records = [rec("s", 0, True, answer_type="span", em=1.0, f1=1.0),
               rec("s", 1, False, answer_type="span", em=0.0, f1=0.5),
               rec("s", 2, False, answer_type="free")]
    (s,) = summarize(records)
    assert s.em == pytest.approx(0.5) and s.f1 == pytest.approx(0.75)
    assert summarize(planted())[0].em is None


def test_errors_and_corpora(summaries: dict[str, StrategySummary]) -> None:
    assert summaries["good"].errors == {}
    assert summaries["rag"].errors == {"retrieval_miss": 2, "wrong_with_gold": 2}
    assert summaries["bad"].errors == {"error": 1, "refusal": 1, "repetitive": 1, "wrong": 7}
    assert summaries["rag"].by_corpus == {"pubmedqa": 1.0, "medquad": 0.0}
    assert list(summaries["good"].by_corpus) == ["pubmedqa", "medquad"]


def test_elo_always_right_outranks_always_wrong() -> None:
    rows = elo_table(planted())
    assert [r.name for r in rows] == ["good", "rag", "bad"]
    assert rows[0].rating > 1000 > rows[-1].rating
    good = rows[0]
    assert (good.games, good.wins, good.ties, good.losses) == (20, 14, 6, 0)  # vs bad: 10 wins; vs rag: 4 + 6 ties
    assert len(elo_games(planted())) == 30  # 3 pairs x 10 questions
    assert elo_table([r for r in planted() if r.strategy == "good"]) == []


def test_elo_counts_votes() -> None:
    votes = [Vote(0.0, "medical", "q?", "bad", "good", "A"), Vote(0.0, "medical", "q?", "bad", "good", "B"),
             Vote(0.0, "medical", "q?", "bad", "good", "both_bad"), Vote(0.0, "medical", "q?", "a", "b", "??")]
    games = elo_games(planted(), votes)
    assert len(games) == 33
    assert games[-3:] == [("bad", "good", 1.0), ("bad", "good", 0.0), ("bad", "good", 0.5)]
    only_votes = elo_table([], votes[:1])
    assert [r.name for r in only_votes] == ["bad", "good"]


def make_run(**kw: Any) -> Run:
    base: dict[str, Any] = dict(run_id="medical-20250101-000000-abcd", created=time.time(), domain="medical",
                                strategies=["good", "rag", "bad"], config={"generation": {"model": "smollm2-135m"}},
                                fingerprint={}, limit=10, seed=0, status="done")
    base.update(kw)
    return Run(**base)


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 5000, path


def test_write_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    votes = [Vote(0.0, "medical", "q?", "rag", "good", "A")]
    path = write_report(make_run(), planted(), out, votes=votes, command="assistant eval medical --limit 10")
    assert path == out / "report.md"
    assert sorted(p.name for p in out.iterdir()) == ["accuracy.png", "accuracy_latency.png", "errors.png",
                                                     "report.md"]
    for png in out.glob("*.png"):
        assert_png(png)
    md = path.read_text()
    assert md.startswith("# Evaluation report: medical — run `medical-20250101-000000-abcd`")
    assert "```\nassistant eval medical --limit 10\n```" in md
    assert "smollm2-135m" in md and "pubmedqa, medquad" in md and "limit 10, seed 0" in md
    assert "| good | 10 | 1.000 [1.000, 1.000] | 1.000 | 1.000 | — | — | — | — | 5.500 | 9.550 |" in md
    assert "| rag | 10 | 0.600 [" in md and "| 0.600 | 0.533 | 2.000 | 2.000 | 500.0 / 10.0 | 0.0556 |" in md
    assert "| strategy | pubmedqa (n=6) | medquad (n=4) |" in md and "| rag | 1.000 | 0.000 |" in md
    assert "31 games: 30 from gold-scored questions" in md and "1 from arena votes" in md
    assert "| 1 | good |" in md and "| 3 | bad |" in md
    assert "| wrong_with_gold | wrong | total wrong | n |" in md
    assert "| bad | 1 | 1 | 1 | 0 | 0 | 0 | 0 | 7 | 10 | 10 |" in md
    assert "### Examples: bad" in md and "> **answer:** error: RuntimeError: boom" in md
    assert "I'm sorry, the sources do not contain the answer." in md
    assert md.count("\n**wrong**\n") == 1 and md.count("> **Q**") == 2 + 2 + 1 + 1 + 1 + 2  # rag 2+2, bad 1+1+1+2
    for name in ("accuracy.png", "accuracy_latency.png", "errors.png"):
        assert f"]({name})" in md
    assert "data_size.png" not in md and "synthesised" not in md

    assert "Evidence from a gold document" not in md  # no record quoted evidence
    quoted = [rec("rag", i, True, gold_ids=[f"g{i}"], retrieved_ids=[f"g{i}", "x"],
                  extra={"evidence_ids": [f"g{i}" if i < 3 else "x"]}) for i in range(4)]
    summary = summarize(quoted)[0]
    assert (summary.evidence_gold, summary.evidence_n) == (0.75, 4)
    assert "rag 0.750 (n=4)." in write_report(make_run(), quoted, out).read_text()

    # answers stating a number no source shows, and the replies auto replaced, per rung
    assert "no source shows" not in md
    checked = [rec("rag/generate", i, False, extra={"unsupported": ["$79,368"] if i < 3 else []}) for i in range(4)]
    checked += [rec("rag/auto", i, i == 0, extra={"unsupported": [], **({"generated_answer": "x"} if i < 2 else {})})
                for i in range(4)]
    generate, auto = summarize(checked)
    assert (generate.unsupported, generate.checked_n, generate.replaced) == (0.75, 4, 0)
    assert (auto.unsupported, auto.replaced) == (0.0, 2)
    assert ("Answers stating a number or year that no source shows (of the answers with sources): rag/generate 0.750 "
            "(n=4), rag/auto 0.000 (n=4; 2 generated replies replaced by the sources' evidence).") in \
        write_report(make_run(), checked, out).read_text()

    made = {"filings": {"method": "llm", "model": "SmolLM2-135M (llamacpp)", "seed": 0}}
    md = write_report(make_run(meta={"synthesised": made}), planted(), out).read_text()
    assert ("- questions of `filings` were synthesised from its documents, not written by people: `assistant data "
            "synth --method llm` (SmolLM2-135M (llamacpp), seed 0)") in md


def test_write_report_with_sweep(tmp_path: Path) -> None:
    sweep: list[dict[str, Any]] = [
        {"strategy": f"adapter:medical-{recipe}-f{f}", "recipe": recipe, "examples": int(15000 * f), "fraction": f,
         "accuracy": acc, "ci_low": acc - 0.1, "ci_high": acc + 0.1}
        for recipe, accs in (("sft", (0.4, 0.5, 0.55)), ("raft", (0.45, 0.6, 0.7)))
        for f, acc in zip((0.01, 0.1, 1.0), accs, strict=True)
    ]
    sweep += [{"reference": "rag", "accuracy": 0.6}, {"reference": "base", "accuracy": 0.47}]
    path = write_report(make_run(), planted(), tmp_path, sweep=sweep)
    assert_png(tmp_path / "data_size.png")
    md = path.read_text()
    assert "## Accuracy vs training data" in md and "| adapter:medical-raft-f0.1 | raft | 1500 | 0.100 |" in md
    assert "| rag | reference | — | — | 0.600 |" in md and "](data_size.png)" in md


@pytest.mark.parametrize("case", ["one strategy, all correct, no latency, no retrieval", "sweep edge cases"])
def test_write_report_edge_cases(tmp_path: Path, case: str) -> None:
    records = [rec("base", i, True, gold_ids=[]) for i in range(3)]
    sweep: list[dict[str, Any]] | None = None
    if case == "sweep edge cases":
        sweep = [{"strategy": "adapter:x", "recipe": "sft", "examples": 0, "accuracy": 0.3},
                 {"strategy": "adapter:y", "recipe": "cpt", "examples": 100, "accuracy": 0.4}]
    path = write_report(make_run(config={}, limit=None), records, tmp_path, sweep=sweep)
    for png in tmp_path.glob("*.png"):
        assert_png(png)
    assert len(list(tmp_path.glob("*.png"))) == (4 if sweep else 3)
    md = path.read_text()
    assert "| base | 3 | 1.000 [1.000, 1.000] |" in md and "model: `unknown`" in md
    assert "_No games" in md and "### Examples" not in md
