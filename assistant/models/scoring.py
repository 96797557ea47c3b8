"""Closed-label scoring: the log-likelihood of each answer option as the model's reply to a prompt.

    gen.score_options(prompt, ["yes", "no", "maybe"])     # Generator's method calls score_options here

The prompt is run once; its KV cache is copied across a batch of the options, so scoring k options costs
about one prompt pass plus k short continuations. A served model is scored from the top log-probs of its
reply's first token instead (`first_token_scores`), or by the option its reply starts with (`reply_option`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from assistant.models.generator import check_options


class Scorer(Protocol):
    """What scoring needs of the Generator (assistant.models.generator)."""

    model: Any
    lock: threading.RLock
    context_length: int
    pad_token_id: int

    def option_ids(self, prompt: Any, options: Sequence[str]) -> tuple[list[int], list[list[int]]]: ...

    def activate(self, adapter: str | None) -> None: ...


def score_options(
    gen: Scorer, prompt: Any, options: Sequence[str], *, normalize: bool = False, adapter: str | None = None
) -> list[float]:
    """Log-likelihood of each option as the assistant's reply: the sum of its tokens' log-probs.

    `normalize` divides by the option's token count (for options of different lengths).
    """
    import torch

    check_options(options)
    if not options:
        return []
    ids, option_ids = gen.option_ids(prompt, options)
    longest = max(len(t) for t in option_ids)
    with gen.lock, torch.inference_mode():
        gen.activate(adapter)
        device = gen.model.device
        out = gen.model(input_ids=torch.tensor([ids], device=device), use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        scores = torch.stack([first[t[0]] for t in option_ids])
        if longest > 1:
            n = len(option_ids)
            # transformers 5.x renamed past_key_values to cache (the old name warns, and goes in 5.40)
            renamed = "cache" in out
            cache = out["cache"] if renamed else out.past_key_values
            cache.batch_repeat_interleave(n)
            batch = torch.full((n, longest), gen.pad_token_id, dtype=torch.long, device=device)
            mask = torch.zeros((n, len(ids) + longest), dtype=torch.long, device=device)
            mask[:, : len(ids)] = 1
            for row, toks in enumerate(option_ids):
                batch[row, : len(toks)] = torch.tensor(toks, device=device)
                mask[row, len(ids) : len(ids) + len(toks)] = 1
            # Right padding keeps every real token at its true position; padded logits are masked out.
            prefix = {"cache": cache} if renamed else {"past_key_values": cache}
            rest = gen.model(input_ids=batch, attention_mask=mask, use_cache=False, **prefix)
            logp = torch.log_softmax(rest.logits[:, :-1].float(), dim=-1)
            picked = logp.gather(-1, batch[:, 1:, None]).squeeze(-1)
            scores = scores + (picked * mask[:, len(ids) + 1 :].float()).sum(dim=1)
    values = scores.tolist()
    if normalize:
        values = [v / len(t) for v, t in zip(values, option_ids, strict=True)]
    return [float(v) for v in values]


# ------------------------------------------------- from logits computed elsewhere (assistant.models.llamacpp)
def log_softmax(logits: Any) -> Any:
    import numpy as np

    x = np.asarray(logits, dtype=np.float64)
    return x - (x.max() + np.log(np.exp(x - x.max()).sum()))


def option_log_likelihoods(first: Any, option_ids: list[list[int]], later: Any, *,
                           normalize: bool = False) -> list[float]:
    """Each option's log-likelihood after a prompt whose next-token logits are `first`; `later(toks)` gives
    the logits after each of the option's tokens but its last, read after the prompt."""
    head = log_softmax(first)
    scores: list[float] = []
    for toks in option_ids:
        total = float(head[toks[0]])
        for logits, token in zip(later(toks), toks[1:], strict=True):
            total += float(log_softmax(logits)[token])
        scores.append(total / len(toks) if normalize else total)
    return scores


# ------------------------------------------------- from a server's first-token log-probs (assistant.models.openai_api)
def norm(token: str) -> str:
    return token.strip().lower()


def logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def distinct(top: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Each token once: servers list the chosen token both on its own and among the top ones, and counting it
    twice would add ln 2 to the option the greedy reply starts with."""
    seen: dict[str, float] = {}
    for token, lp in top:
        seen.setdefault(token, lp)
    return list(seen.items())


def first_token_scores(top: Sequence[tuple[str, float]], keys: Sequence[str]) -> list[float]:
    """Each key's log-prob among the top tokens (case and spaces aside: "Yes", " yes" and "yes" together);
    a key not among them gets the lowest log-prob returned minus 1."""
    floor = min(lp for _, lp in top) - 1.0
    out = []
    for key in keys:
        hits = [lp for token, lp in top if norm(token) == key]
        out.append(logsumexp(hits) if hits else floor)
    return out


def reply_option(reply: str, options: Sequence[str]) -> int | None:
    """The index of the (longest) option that `reply` starts with, as a whole word, or None."""
    text, best = norm(reply), None
    for i, option in enumerate(options):
        key = norm(option)
        whole = text.startswith(key) and (len(text) == len(key) or not text[len(key)].isalnum())
        if whole and (best is None or len(key) > len(norm(options[best]))):
            best = i
    return best


__all__ = ["first_token_scores", "log_softmax", "option_log_likelihoods", "reply_option", "score_options"]
