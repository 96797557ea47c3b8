"""The data check (`assistant data check`): each check on hand-made items that trigger it and clean items
that do not, the text measures behind them, the report, the API on a prepared corpus in a temp home, the
CLI's exit codes, and one run on the shipped PubMedQA (skipped without ../shared/data).

    .venv/bin/pytest tests/corpus/test_check.py -q
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.config import Config
from assistant.corpus import prepare
from assistant.corpus import quality as q
from assistant.corpus.check import (
    THRESHOLDS,
    DataCheckReport,
    TokenCounter,
    check_data,
    estimated_tokens,
    tokenizer_tokens,
)
from assistant.errors import InputError, NotFoundError
from assistant.types import Document, QAItem
from tests.corpus.conftest import write_recipe

TOPICS = ("aspirin", "statins", "insulin", "asthma", "malaria", "sleep", "coffee", "vitamin", "salt", "walking")
INSTRUCTION = "Answer."


def words_tokens() -> TokenCounter:
    """One token per word, no template: lengths a test can count by eye."""
    return TokenCounter(lambda texts: [len(t.split()) for t in texts], 0, "words", exact=True)


SENTENCES = (
    "The {t} trial enrolled adults in spring.", "Results for {t} appeared robust overall.",
    "Reviewers found {t} effects modest but consistent.", "Follow up of {t} users lasted several years.",
    "Side effects of {t} were rare and mild.", "Costs of {t} programs stayed within budgets.",
)


def clean_text(topic: str) -> str:
    """A text of 40 words with no repetition, no noise and no rare near-misspellings."""
    return " ".join(s.format(t=topic) for s in SENTENCES)


def random_text(seed: int, n: int) -> str:
    rng = random.Random(seed)
    return " ".join(f"term{rng.randrange(400)}" for _ in range(n))


def clean_items() -> tuple[list[QAItem], list[QAItem], list[Document]]:
    docs = [Document(f"d:{t}", "c", f"About {t}", clean_text(t)) for t in TOPICS]
    train = [QAItem(f"q:{t}", "c", f"How does {t} affect health?", f"{t.capitalize()} affects health in studied ways.",
                    "train", doc_ids=(f"d:{t}",)) for t in TOPICS[:8]]
    test = [QAItem(f"t:{t}", "c", f"Is {t} linked to longer lives?", "yes", "test", answer_type="label",
                   options=("yes", "no", "maybe"), long_answer=f"{t} was linked to longer lives.",
                   doc_ids=(f"d:{t}",)) for t in TOPICS[8:]]
    return train, test, docs


def run_check(train: Sequence[QAItem], test: Sequence[QAItem], docs: Sequence[Document], **kw: object) -> DataCheckReport:
    options: dict = {"instruction": INSTRUCTION, "seq_len": 64, "tokens": words_tokens(), **kw}
    return check_data(train, test, docs, **options)


# ------------------------------------------------------------------ the text measures
def test_repeated_share_counts_trigrams_seen_before() -> None:
    assert q.repeated_share("a b c d e f".split()) == 0.0
    assert q.repeated_share("the cat sat the cat sat the cat sat".split()) == pytest.approx(4 / 7)
    assert q.repeated_share(["a", "b"]) == 0.0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Patients were given the treat- ment twice a day for a week.", "hyphen_break"),
        ("The results were hospital-\nized cases only, in all the cohorts.", "hyphen_break"),
        ("The pati\ufffdnts were followed for two years after surgery.", "control"),
        ("■■ ¬¬ ▒▒ The study ■ followed ¬ patients ▒ for ■ two ¬ years ▒▒ ■■", "symbols"),
        ("... ;;; ,,, ((( ))) --- !!! ??? ::: ... ;;; abc", "non_letters"),
        ("t h e p a t i e n t s w e r e s e e n t w i c e", "spaced_letters"),
    ],
)
def test_garble_reasons_find_each_kind_of_noise(text: str, reason: str) -> None:
    assert reason in q.garble_reasons(text)


@pytest.mark.parametrize(
    "text",
    [
        "Pre- and post-operative care differed; low- to moderate-risk patients did well.",
        "Revenue | $1,234 | (56) | 7.8% | 2019 | 2018 | $ 987,654 | 12.5%",  # a table row is not garbled
        "A follow-up of 5-year survival in non-small-cell lung cancer, as I said.",
        "Short.",
    ],
)
def test_garble_reasons_leave_clean_text_alone(text: str) -> None:
    assert q.garble_reasons(text) == []


def test_within_one_edit() -> None:
    assert q.within_one_edit("symtpoms", "symptoms")  # transposition
    assert q.within_one_edit("wheter", "whether")  # deletion
    assert q.within_one_edit("defferent", "different")  # substitution
    assert not q.within_one_edit("symptoms", "symptoms")
    assert not q.within_one_edit("abcde", "bcdae")  # a letter moved: two edits
    assert not q.within_one_edit("treat", "treatment")


def test_misspellings_are_rare_words_one_edit_from_a_frequent_one() -> None:
    counts = Counter({"treatment": 30, "symptoms": 25, "patients": 40, "treatmnet": 1, "symtpoms": 1,
                      "treatments": 1,  # another ending of a frequent word: not a misspelling
                      "patient": 1, "zygote": 1, "aspirin": 1, "petients": 1, "ymptoms": 1})
    assert q.misspellings(counts) == {"treatmnet": "treatment", "symtpoms": "symptoms", "petients": "patients"}
    assert q.misspellings(Counter({"treatmnet": 2, "treatment": 30})) == {}  # seen twice: taken as a word


def _brute_pairs(sets: list[frozenset[str]], threshold: float, weighted: bool) -> dict[int, float]:
    import math

    df = Counter(f for s in sets for f in s)
    idf = {f: math.log((len(sets) + 1) / (c + 1)) + 1.0 if weighted else 1.0 for f, c in df.items()}
    best: dict[int, float] = {}
    for i, s in enumerate(sets):
        for j in range(i):
            inter = sum(idf[f] for f in s & sets[j])
            union = sum(idf[f] for f in s | sets[j])
            if union and inter / union >= threshold:
                best[i] = max(best.get(i, 0.0), round(inter / union, 4))
    return best


@pytest.mark.parametrize("weighted", [True, False])
def test_similar_pairs_misses_no_pair_the_brute_force_finds(weighted: bool) -> None:
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(40)]
    sets: list[frozenset[str]] = []
    for _ in range(120):
        if sets and rng.random() < 0.3:  # a near copy of an earlier set
            base = set(rng.choice(sets))
            base.discard(rng.choice(sorted(base)))
            base.add(rng.choice(vocab))
            sets.append(frozenset(base))
        else:
            sets.append(frozenset(rng.sample(vocab, rng.randint(3, 10))))
    for threshold in (0.6, 0.8):
        found = {i: s for i, _, s in q.similar_pairs(sets, threshold, weighted=weighted)}
        assert found == pytest.approx(_brute_pairs(sets, threshold, weighted), abs=1e-4)


def test_shingles_are_the_same_in_every_run_and_sample_long_texts() -> None:
    text = random_text(2, 200).split()
    assert q.shingles(text) == q.shingles(text, {})
    assert 8 <= len(q.shingles(text)) < len(text) - 2
    assert q.shingles(["one", "two"]) and q.shingles([]) == frozenset()


# ------------------------------------------------------------------ each check on hand-made items
def test_clean_items_pass_every_check() -> None:
    train, test, docs = clean_items()
    report = run_check(train, test, docs)
    assert [(c.name, c.count) for c in report.checks if c.count] == []
    assert report.failed == [] and "all checks pass" in report.summary()
    assert {c.name for c in report.checks} == set(THRESHOLDS)


def test_duplicate_and_near_duplicate_questions() -> None:
    train, test, docs = clean_items()
    question = "Does long term daily aspirin use reduce the risk of stroke in older adults with diabetes?"
    train += [
        QAItem("dup", "c", "how does ASPIRIN affect health", "Other words here.", "train"),  # exact after normalising
        QAItem("base", "c", question, "Likely so, in trials.", "train"),
        QAItem("near", "c", question.replace("?", " today?"), "More words here.", "train"),
    ]
    report = run_check(train, test, docs)
    exact, near = report.check("duplicate_questions"), report.check("near_duplicate_questions")
    assert exact.count == 1 and exact.examples[0]["id"] == "dup" and exact.examples[0]["same_as"] == "q:aspirin"
    assert near.count == 1 and near.examples[0]["id"] == "near" and near.examples[0]["like"] == "base"
    assert not exact.passed and "duplicate_questions" in report.summary()


def test_duplicate_and_near_duplicate_documents() -> None:
    train, test, docs = clean_items()
    long = random_text(1, 200)
    docs += [
        Document("copy", "c", "Copy", docs[0].text.upper()),  # the same words
        Document("long", "c", "Long", long),
        Document("long-edit", "c", "Long edited", long.rsplit(" ", 3)[0] + " term401 term402 term403"),
    ]
    report = run_check(train, test, docs)
    assert report.check("duplicate_documents").count == 1
    near = report.check("near_duplicate_documents")
    assert near.count == 1 and near.examples[0]["id"] == "long-edit" and near.examples[0]["like"] == "long"


def test_leakage_is_the_training_leakage_check() -> None:
    train, test, docs = clean_items()
    train.append(QAItem("leak", "c", "is SALT linked to longer lives", "Yes, it is.", "train", doc_ids=("d:salt",)))
    check = run_check(train, test, docs).check("leakage")
    assert check.count == 1 and check.examples[0]["train"] == "leak" and check.examples[0]["test"] == "t:salt"
    assert check.details["train_citing_a_test_document"] == 1 and check.total == len(train)


def test_too_long_counts_the_tokens_cut_and_the_examples_dropped() -> None:
    train, test, docs = clean_items()
    train += [
        QAItem("long-answer", "c", "Why?", " ".join(["because"] * 100), "train"),  # 1 + 1 + 101 = 103 tokens
        QAItem("long-question", "c", " ".join(["why"] * 60), "Because of it.", "train"),  # prompt 61 of 64
    ]
    check = run_check(train, test, docs, seq_len=64, min_answer_tokens=16).check("too_long")
    assert check.count == 2 and check.details["dropped"] == 1
    assert check.details["tokens_cut"] == (103 - 64) + 4 and check.details["longest"] == 103
    assert check.examples[0]["id"] == "long-answer" and check.examples[0]["cut"] == 39
    assert run_check(train, test, docs, seq_len=200).check("too_long").count == 0


def test_repetitive_text() -> None:
    train, test, docs = clean_items()
    docs.append(Document("rep", "c", "Rep", "buy now and save " * 12))
    train.append(QAItem("rep-q", "c", "What to do?", "Call us today please. " * 10, "train"))
    check = run_check(train, test, docs).check("repetitive")
    assert {(e["kind"], e["id"]) for e in check.examples} == {("document", "rep"), ("answer", "rep-q")}


def test_garbled_text() -> None:
    train, test, docs = clean_items()
    docs.append(Document("ocr", "c", "OCR", "The treat- ment of pati\ufffdnts was ■■ ¬¬ ▒▒ ■■ ¬¬ described."))
    check = run_check(train, test, docs).check("garbled")
    assert check.count == 1 and check.examples[0]["id"] == "ocr"
    assert check.details["reasons"] == {"control": 1, "hyphen_break": 1, "symbols": 1}
    assert check.examples[0]["text"] == "treat- ment"


def test_short_answers_spare_closed_labels_and_numbers() -> None:
    train, test, docs = clean_items()
    train += [
        QAItem("empty", "c", "What is it?", "  ", "train"),
        QAItem("one", "c", "What treats it?", "Rest.", "train"),
        QAItem("bad-label", "c", "Does it work?", "perhaps", "train", answer_type="label", options=("yes", "no", "maybe")),
        QAItem("label", "c", "Does it help?", "Maybe", "train", answer_type="label", options=("yes", "no", "maybe")),
        QAItem("number", "c", "What was revenue in 2019?", "1,496.5", "train", answer_type="span"),
        QAItem("count", "c", "How many years?", "2", "train", answer_type="count"),
    ]
    check = run_check(train, test, docs).check("short_answers")
    assert {e["id"]: e["why"] for e in check.examples} == {"empty": "empty", "one": "one_word", "bad-label": "label_not_in_options"}
    assert check.details["reasons"] == {"empty": 1, "label_not_in_options": 1, "one_word": 1}


def test_misspellings_against_the_corpus_vocabulary() -> None:
    train, test, docs = clean_items()
    docs.append(Document("typo", "c", "Typo", " ".join(["treatment works"] * 25) + " the treatmnet failed"))
    check = run_check(train, test, docs).check("misspellings")
    assert check.count == 1 and check.examples == ({"word": "treatmnet", "likely": "treatment", "in": "document typo"},)


# ------------------------------------------------------------------ the report
def test_report_thresholds_json_and_summary() -> None:
    train, test, docs = clean_items()
    train.append(QAItem("one", "c", "What treats it?", "Rest.", "train"))
    report = run_check(train, test, docs, thresholds={"short_answers": 0.5})
    assert report.check("short_answers").passed and report.failed == []
    strict = run_check(train, test, docs)
    assert [c.name for c in strict.failed] == ["short_answers"]
    data = json.loads(json.dumps(strict.to_dict()))
    assert data["passed"] is False and data["failed"] == ["short_answers"] and data["tokens"] == "words"
    assert {c["name"]: c["count"] for c in data["checks"]}["short_answers"] == 1
    assert "FAIL  short_answers" in strict.summary() and "thresholds crossed: short_answers" in strict.summary()
    with pytest.raises(ValueError, match="unknown check"):
        run_check(train, test, docs, thresholds={"typos": 0.1})


def test_token_counters(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    est = estimated_tokens("no tokenizer")
    assert est.count(["abcdefgh", ""]) == [2, 1] and not est.exact and "no tokenizer" in est.label
    tok = tokenizer_tokens(AutoTokenizer.from_pretrained(tiny_model_dir), "tiny")
    assert tok.exact and tok.label == "exact (tiny tokenizer)" and tok.overhead > 0
    assert tok.count(["abc", "hello world"]) == [3, 11]  # the byte tokenizer: one token per byte


# ------------------------------------------------------------------ through the API and the CLI
@pytest.fixture
def mini(config: Config, tmp_path: Path) -> Config:
    """A prepared PubMedQA-format corpus 'mini' (domain medical) in the temp home, with a defect or two."""
    from tests.test_cli_train import pubmedqa_like

    paths: list[str | Path] = list(pubmedqa_like(tmp_path / "src", n=24))
    source = Path(paths[0])
    raw = json.loads(source.read_text())
    raw["1001"]["QUESTION"] = raw["1000"]["QUESTION"]  # an exact duplicate question
    source.write_text(json.dumps(raw))
    write_recipe(config, "mini", "pubmedqa", paths)
    prepare("mini", config, progress=False)
    return config


def test_api_checks_one_corpus_of_a_domain(mini: Config) -> None:
    from assistant import check_data as api_check

    report = api_check("medical", mini, corpus="mini", exact_tokens=False, progress=False)
    assert report.corpora == ("mini",) and (report.n_train, report.n_test, report.n_documents) == (16, 8, 24)
    assert report.check("duplicate_questions").count == 1 and "estimated" in report.tokens
    assert report.check("short_answers").count == 0  # yes / no / maybe are closed labels
    with pytest.raises(InputError, match="not in 'medical'"):
        api_check("medical", mini, corpus="tatqa", exact_tokens=False)
    with pytest.raises(NotFoundError):
        api_check("nowhere", mini, exact_tokens=False)


def test_api_counts_with_the_models_tokenizer(mini: Config, tiny_model_dir: Path) -> None:
    from dataclasses import replace

    from assistant import check_data as api_check

    config = mini.replace(generation=replace(mini.generation, model=str(tiny_model_dir)))
    report = api_check("medical", config, corpus="mini", progress=False)
    assert report.tokens.startswith("exact (") and report.check("too_long").details["longest"] > 0


def test_cli_data_check_exit_codes(mini: Config, tmp_path: Path) -> None:
    from assistant.cli import app

    runner = CliRunner()
    base = ["data", "check", "--domain", "medical", "--corpus", "mini", "--estimate-tokens"]
    result = runner.invoke(app, base)
    assert result.exit_code == 0, result.output
    assert "FAIL  duplicate_questions" in result.stdout and "thresholds crossed" in result.stdout
    result = runner.invoke(app, [*base, "--strict"])
    assert result.exit_code == 1 and "thresholds crossed: duplicate_questions" in result.output
    result = runner.invoke(app, [*base, "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["failed"] == ["duplicate_questions"]
    result = runner.invoke(app, ["data", "check", "--domain", "medical", "--corpus", "nope", "--strict"])
    assert result.exit_code == 2 and "error: corpus 'nope' is not in 'medical'" in result.output


def test_cli_strict_passes_on_clean_data(config: Config, tmp_path: Path) -> None:
    from assistant.cli import app
    from tests.test_cli_train import pubmedqa_like

    write_recipe(config, "mini", "pubmedqa", [*pubmedqa_like(tmp_path / "src", n=12)])
    result = CliRunner().invoke(app, ["data", "check", "-d", "medical", "-c", "mini", "--strict", "--estimate-tokens"])
    assert result.exit_code == 0, result.output  # prepared on the way, then every check passes
    assert "all checks pass" in result.stdout


# ------------------------------------------------------------------ the shipped data
def test_pubmedqa_real_data(config: Config, shared_data: Path) -> None:
    """PubMedQA as shipped: clean but for a few hyphenation breaks and typos; nothing crosses a threshold."""
    from assistant import check_data as api_check

    report = api_check("medical", config, corpus="pubmedqa", exact_tokens=False, progress=False)
    assert (report.n_train, report.n_test, report.n_documents) == (500, 500, 1000)
    assert report.failed == []
    counts = {c.name: c.count for c in report.checks}
    assert counts["duplicate_questions"] == counts["leakage"] == counts["short_answers"] == 0
    assert 0 < counts["garbled"] < 20 and 0 < counts["misspellings"] < 200
    assert report.check("too_long").details["longest"] < 384
