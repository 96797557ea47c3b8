"""GPU memory for training: whether a batch's activations fit without gradient checkpointing.

    needs_checkpointing(model, tokens_per_batch=16 * 512, device=torch.device("cuda"))

On CUDA the trainer recomputes activations (gradient checkpointing, about half the speed) only when the
estimate below would not fit in 70% of the memory free once the model is on the GPU.
"""

from __future__ import annotations

from typing import Any


def activation_bytes(model_config: Any, tokens: int) -> int:
    """About what a batch of `tokens` tokens keeps for the backward pass without gradient checkpointing:
    ~34 x hidden bytes per token per decoder layer in 16-bit (SDPA attention keeps no seq x seq matrix),
    plus the logits in fp32 (4 x vocab bytes per token, twice: the loss makes a copy). Compared with 70% of
    the GPU memory free once the model is on the GPU."""
    text = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    per_token = 34 * int(text.hidden_size) * int(text.num_hidden_layers) + 8 * int(text.vocab_size)
    return per_token * max(1, tokens)


def free_after_loading(model: Any, device: Any) -> int:
    """The GPU memory free once the model is on it (a base loaded on the CPU moves there next)."""
    import torch

    free = int(torch.cuda.mem_get_info(device)[0])
    on_cpu = [p for p in model.parameters() if p.device.type != "cuda"]
    return free - sum(p.numel() * p.element_size() for p in on_cpu)


def needs_checkpointing(model: Any, tokens_per_batch: int, device: Any) -> bool:
    return activation_bytes(model.config, tokens_per_batch) > 0.7 * free_after_loading(model, device)


__all__ = ["activation_bytes", "free_after_loading", "needs_checkpointing"]
