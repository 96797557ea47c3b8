"""Closed-label scoring: the log-likelihood of each answer option as the model's reply to a prompt.

    gen.score_options(prompt, ["yes", "no", "maybe"])     # Generator's method calls score_options here

The prompt is run once; its KV cache is copied across a batch of the options, so scoring k options costs
about one prompt pass plus k short continuations.
"""

from __future__ import annotations

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


__all__ = ["score_options"]
