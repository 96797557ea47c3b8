"""Pure evaluation metrics: answer-label parsing, accuracy, macro-F1, the official TAT-QA EM/F1, bootstrap
confidence intervals, retrieval recall@k and reciprocal rank, and latency percentiles.

    from assistant.evaluation.metrics import normalize_label, macro_f1, tatqa_em_f1, split_answer
    normalize_label("Final answer: Yes.", ["yes", "no", "maybe"])         # -> "yes"
    macro_f1(["yes", "no"], ["yes", "yes"], labels=["yes", "no", "maybe"])
    answer, scale = split_answer("$1.2 million")                          # -> ("$1.2", "million")
    tatqa_em_f1(answer, ["1.2"], pred_scale=scale, gold_scale="million")  # -> (1.0, 1.0)

The TAT-QA metric re-implements the official scorer: `tatqa_metric.py` (get_answer_str,
add_percent_pred, get_metrics, _align_bags, TaTQAEmAndF1.__call__) from NExTplusplus/TAT-QA, with the
normalization helpers of `tatqa_utils.py` as shipped by the same group in NamiKaze7/TAT-DQA (TAT-QA's
own copy is imported by its metric but was not available to read; the widespread copies agree). That
metric derives from DROP's `drop_eval.py`. Faithful details, quirks included:
- every answer (a list of spans) becomes ONE string: spans sorted and joined by spaces; a number
  becomes '%.4f' of its value rounded to 2 decimals times its scale ("1.2" + million -> 1200000.0000;
  a number that carries '%' is taken as is: "23.42%" -> 0.2342), a non-number gets the scale word
  appended ("Apple" + million -> "apple million"). So the scale is folded into the value: a wrong
  scale makes the numbers differ (EM 0, F1 0), while "1,200" thousand equals "1.2" million;
- a lone unscaled number prediction is also tried unrounded ("0.2342" matches 23.42 percent);
- tokens are normalized like DROP (lowercase, punctuation and articles removed) except numbers:
  "1,234" -> "1234", "(5)" -> "-5", "12%" -> "0.12";
- F1 is DROP's bag-of-tokens F1 after an optimal one-to-one alignment of spans, rounded to 2 decimals;
  TAT-QA turned DROP's rule "numbers must match or F1 is 0" off, and so does this;
- for gold answer types "arithmetic" and "count" F1 is set to EM.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Hashable, Sequence

import numpy as np

# ---------------------------------------------------------------------------------- classification


def _option_pattern(options: Sequence[str]) -> str:
    # longest first, so "not sure" wins over "not"; lookarounds instead of \b so options may end in
    # punctuation
    alts = "|".join(re.escape(o) for o in sorted(options, key=len, reverse=True))
    return rf"(?<!\w)({alts})(?!\w)"


_ANSWER_LINE = re.compile(r"\b(?:final\s+)?answer\b\s*(?:is\b)?\s*[:=\-]?\s*(?P<rest>.*)$", re.I)


def normalize_label(text: str, options: Sequence[str]) -> str | None:
    """The option a generated answer commits to, as spelled in `options`; None if none or ambiguous.

    Case-insensitive, whole words. In order: the last explicit answer line ("Answer: yes",
    "Final answer: no", "The answer is maybe") whose first word is an option; else an option opening
    the text ("No, because ..."); else the only option mentioned anywhere.
    """
    if not options:
        raise ValueError("normalize_label needs at least one option")
    canon = {o.lower(): o for o in options}
    opt = _option_pattern(list(canon))
    leading = re.compile(rf"^[\W_]*{opt}", re.I)
    found: str | None = None
    for line in text.splitlines():
        m = _ANSWER_LINE.search(line)
        if m and (hit := leading.match(m.group("rest"))):
            found = hit.group(1)
    if found is None and (hit := leading.match(text)):
        found = hit.group(1)
    if found is None:
        mentioned = {m.lower() for m in re.findall(opt, text, re.I)}
        found = mentioned.pop() if len(mentioned) == 1 else None
    return None if found is None else canon[found.lower()]


def _check_pair(pred: Sequence[object], gold: Sequence[object]) -> None:
    if len(pred) != len(gold):
        raise ValueError(f"{len(pred)} predictions for {len(gold)} gold labels")
    if not gold:
        raise ValueError("no predictions to score")


def accuracy(pred: Sequence[Hashable | None], gold: Sequence[Hashable]) -> float:
    """Fraction of predictions equal to the gold label (None, an unparsed answer, is always wrong)."""
    _check_pair(pred, gold)
    return sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)


def macro_f1(
    pred: Sequence[Hashable | None], gold: Sequence[Hashable], labels: Sequence[Hashable] | None = None
) -> float:
    """Unweighted mean of per-label F1, exactly sklearn's
    `f1_score(gold, pred, average="macro", labels=labels, zero_division=0)`.

    Labels are `labels` when given, else every value in gold ∪ pred (so an unparsed None prediction
    adds a label with F1 0: pass the options as `labels` to avoid that). A label's F1 is
    2·TP / (2·TP + FP + FN), and 0 when that is 0/0 (no support and never predicted). With `labels`,
    predictions of other values count only as misses (FN) of their gold label, and gold values outside
    `labels` only as false positives of what was predicted.
    """
    _check_pair(pred, gold)
    if labels is None:
        labels = list(dict.fromkeys([*gold, *pred]))
    if not labels:
        raise ValueError("macro_f1 needs at least one label")
    scores = []
    for label in labels:
        tp = sum(p == label and g == label for p, g in zip(pred, gold, strict=True))
        fp = sum(p == label and g != label for p, g in zip(pred, gold, strict=True))
        fn = sum(p != label and g == label for p, g in zip(pred, gold, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(scores) / len(scores)


# ---------------------------------------------------------------------------------- TAT-QA (official)

_SCALE_NUM: tuple[tuple[str, int | float], ...] = (
    ("hundred", 100),
    ("thousand", 1000),
    ("million", 1_000_000),
    ("billion", 1_000_000_000),
    ("percent", 0.01),
)
_EXCLUDE_IN_NUM = "'\"\\$€£¥%(),[]"
_FIRST_NUM = re.compile(r"([+-]?\d+(\.\d+)?)|([+-]?\.\d+)")
_PUNCT = set(string.punctuation)


def _scale_to_num(scale: str) -> int | float:
    # ints are load-bearing: str(round(-134 * 1, 4)) is "-134", with a float it would be "-134.0"
    scale = scale.lower()
    return next((num for word, num in _SCALE_NUM if word in scale), 1)


def _clean_num(text: str) -> str:
    return "".join(ch for ch in text if ch not in _EXCLUDE_IN_NUM)


def _extract_one_num(text: str) -> int | float | None:
    m = _FIRST_NUM.search(_clean_num(text))
    if m is None or not m.group(1):  # official quirk: a leading ".5" yields None
        return None
    return float(m.group(1)) if "." in m.group(1) else int(m.group(1))


def _is_number(text: str) -> bool:
    words = " ".join(_clean_num(w) for w in text.split()).split()
    if not words:
        return False
    try:
        num = float(words[0])
    except ValueError:
        return False
    return not math.isnan(num) and (len(words) < 2 or _scale_to_num(words[1]) != 1)


def _to_number(text: str) -> int | float | None:
    num = _extract_one_num(text)
    if num is None:
        return None
    word = re.search(r"[\d.]+\s?[a-zA-Z]+", text)
    scale = _scale_to_num(word.group(0)) if word else 1
    negative = -1 if re.search(r"\([\d.\s]+\)", text.strip()) else 1
    percent = 0.01 if re.search(r"[\d.\s]+%", text.strip()) else 1
    return round(num * scale * negative * percent, 4)


def _normalize_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token):
        token = "".join(ch for ch in token if ch not in _PUNCT)
    if _is_number(token):
        token = str(_to_number(token))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", token).split())


def _normalize_answer(text: str) -> str:
    """Official normalize_answer: per space-separated token, lowercase, strip punctuation from
    non-numbers, write numbers as their value, drop articles."""
    return " ".join(part for part in (_normalize_token(t) for t in text.split(" ")) if part.strip())


def _answer_str(answers: Sequence[str], scale: str) -> str:
    """Official get_answer_str: sorted spans, numbers as '%.4f' values with the scale applied."""
    out = []
    for ans in sorted(str(a) for a in answers):
        if _is_number(ans):
            num = _to_number(ans)
            if num is None:
                out.append(f"{ans} {scale}" if scale else ans)
            elif "%" in ans:
                out.append(f"{num:.4f}")
            else:
                out.append(f"{round(num, 2) * _scale_to_num(scale):.4f}")
        else:
            out.append(f"{ans} {scale}" if scale else ans)
    return " ".join(out)


def _bag_f1(predicted: set[str], gold: set[str]) -> float:
    inter = len(gold & predicted)
    precision = inter / len(predicted) if predicted else 1.0
    recall = inter / len(gold) if gold else 1.0
    return 0.0 if precision == 0.0 and recall == 0.0 else 2 * precision * recall / (precision + recall)


def _align_bags(predicted: list[set[str]], gold: list[set[str]]) -> list[float]:
    """DROP's _align_bags: F1 per gold span under the best one-to-one alignment (scipy's
    linear_sum_assignment, as the official script), padded with zeros to max(len(gold), len(predicted))
    so unmatched spans on either side count as 0. No span on one side: nothing to align, all zeros."""
    out = [0.0] * max(len(gold), len(predicted))
    if not gold or not predicted:
        return out
    from scipy.optimize import linear_sum_assignment

    scores = np.array([[_bag_f1(p, g) for p in predicted] for g in gold])
    for g, p in zip(*linear_sum_assignment(-scores), strict=True):
        out[g] = float(scores[g, p])
    return out


def span_em_f1(prediction: str | Sequence[str], gold: str | Sequence[str]) -> tuple[float, float]:
    """The official get_metrics (DROP's, with TAT-QA's normalization): EM when the normalized span sets
    are equal and equally long; F1 the mean aligned bag-of-tokens F1, rounded to 2 decimals."""
    pred_spans = [prediction] if isinstance(prediction, str) else list(prediction)
    gold_spans = [gold] if isinstance(gold, str) else list(gold)
    pred_norm = [_normalize_answer(s) for s in pred_spans]
    gold_norm = [_normalize_answer(s) for s in gold_spans]
    em = float(set(pred_norm) == set(gold_norm) and len(pred_norm) == len(gold_norm))
    if not pred_norm or not gold_norm:
        return em, 0.0
    f1 = np.mean(_align_bags([set(s.split()) for s in pred_norm], [set(s.split()) for s in gold_norm]))
    return em, float(np.round(f1, 2))


def tatqa_em_f1(
    prediction: str | list[str],
    gold: str | list[str],
    pred_scale: str = "",
    gold_scale: str = "",
    *,
    answer_type: str = "",
) -> tuple[float, float]:
    """Official TAT-QA (exact match, F1) of one prediction against one gold answer (see the module
    docstring). Scales are "", "thousand", "million", "billion" or "percent"; when the prediction text
    itself carries its scale word ("1.2 million"), either pass it with pred_scale="" or strip it with
    `split_answer` and pass the scale, never both (the value would be scaled twice). `answer_type` is
    the gold answer type; "arithmetic" and "count" score F1 = EM, as the official script does.
    """
    if not prediction or not gold:
        return 0.0, 0.0
    preds = [prediction] if isinstance(prediction, str) else list(prediction)
    golds = [gold] if isinstance(gold, str) else list(gold)
    pred_strings = [_answer_str(preds, pred_scale)]
    # official add_percent_pred: a lone unscaled number is also tried unrounded (0.2342 vs 23.42 percent)
    if len(preds) == 1 and not pred_scale and "%" not in preds[0] and _is_number(preds[0]):
        num = _to_number(preds[0])
        if num is not None:
            pred_strings.append(f"{num:.4f}")
    gold_string = _answer_str(golds, gold_scale)
    em, f1 = max(span_em_f1(p, gold_string) for p in pred_strings)
    return em, em if answer_type in ("arithmetic", "count") else f1


_SCALE_WORD = re.compile(r"%|(?<!\w)(thousand|million|billion|percent|per cent)s?(?!\w)", re.I)


def parse_scale(text: str) -> str:
    """The TAT-QA scale a generated answer states: "thousand", "million", "billion", "percent" (also
    from "%" or "per cent"), or "" when it states none; the first one mentioned wins."""
    m = _SCALE_WORD.search(text)
    if m is None:
        return ""
    word = (m.group(1) or "percent").lower()
    return "percent" if word == "per cent" else word


def split_answer(text: str) -> tuple[str, str]:
    """(answer without its scale words or % signs, scale) for `tatqa_em_f1(answer, ..., pred_scale=scale)`:
    "$1.2 million" -> ("$1.2", "million"), "12.5%" -> ("12.5", "percent")."""
    scale = parse_scale(text)
    if not scale:
        return " ".join(text.split()), ""
    kept = _SCALE_WORD.sub(lambda m: "" if parse_scale(m.group(0)) == scale else m.group(0), text)
    return " ".join(kept.split()), scale


# ---------------------------------------------------------------------------------- statistics


def bootstrap_ci(
    values: Sequence[float], n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the sample mean and a percentile-bootstrap confidence interval for it.

    Resamples with replacement `n_resamples` times (numpy's default_rng(seed): deterministic for a
    seed) and takes the (1 - confidence)/2 and (1 + confidence)/2 percentiles of the resampled means.
    One value gives (v, v, v).
    """
    if len(values) == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if n_resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"need n_resamples >= 1 and 0 < confidence < 1, got {n_resamples}, {confidence}")
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // len(data))  # bound memory: at most ~2M indices at a time
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        means[start:stop] = data[rng.integers(0, len(data), size=(stop - start, len(data)))].mean(axis=1)
    alpha = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [alpha, 100 - alpha])
    mean = float(data.mean())
    # clamp: float noise must not put the mean a hair outside its own interval
    return mean, min(float(low), mean), max(float(high), mean)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics (numpy's default:
    position (n - 1)·q/100 in the sorted values). For latency p50 / p95."""
    if len(values) == 0:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    return float(np.percentile(np.asarray(values, dtype=float), q))


# ---------------------------------------------------------------------------------- retrieval


def _check_retrieval(gold_ids: Sequence[str]) -> None:
    if not gold_ids:
        raise ValueError("retrieval metrics need at least one gold id")


def recall_at_k(retrieved_ids: Sequence[str], gold_ids: Sequence[str], k: int) -> float:
    """1.0 if any gold id is among the first k retrieved ids, else 0.0 (hit rate at k)."""
    _check_retrieval(gold_ids)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    gold = set(gold_ids)
    return float(any(r in gold for r in retrieved_ids[:k]))


def reciprocal_rank(retrieved_ids: Sequence[str], gold_ids: Sequence[str]) -> float:
    """1 / (1-based rank of the first gold id among the retrieved ids), 0.0 if none was retrieved."""
    _check_retrieval(gold_ids)
    gold = set(gold_ids)
    return next((1 / rank for rank, r in enumerate(retrieved_ids, 1) if r in gold), 0.0)
