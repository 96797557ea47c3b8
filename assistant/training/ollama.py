"""Ollama's chat TEMPLATE (a Go template) and stop strings for the chat formats an exported Modelfile can
name, each matched against the model's own chat template before it is written.

    from assistant.training.ollama import match_chat_format
    fmt = match_chat_format(tokenizer.chat_template, tokenizer.apply_chat_template)   # None: unknown
    fmt.ollama_template, fmt.stops

A format is used only when the model's jinja template renders sample conversations exactly as the format
says it should (`render`, the Python twin of the Go template): a template that merely looks like ChatML
but differs (another default system message, other newlines) gets no TEMPLATE rather than a wrong one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Messages = Sequence[dict[str, str]]


@dataclass(frozen=True)
class ChatFormat:
    """A chat format: its marker in a jinja template, its Ollama TEMPLATE and stops, and a renderer."""

    name: str
    marker: str
    ollama_template: str
    stops: tuple[str, ...]
    render: Callable[[Messages], str]  # messages -> the prompt, generation prompt added, no BOS


def _chatml(messages: Messages) -> str:
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"


def _llama3(messages: Messages) -> str:
    turns = "".join(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>" for m in messages)
    return turns + "<|start_header_id|>assistant<|end_header_id|>\n\n"


def _gemma(messages: Messages) -> str:
    system = "".join(m["content"] + "\n\n" for m in messages if m["role"] == "system")
    out, first = "", True
    for m in messages:
        if m["role"] == "system":
            continue
        role = "model" if m["role"] == "assistant" else "user"
        out += f"<start_of_turn>{role}\n{system if first else ''}{m['content']}<end_of_turn>\n"
        first = False
    return out + "<start_of_turn>model\n"


# Ollama fills .System from the Modelfile's SYSTEM (or the request's system message) and lists the turns in
# .Messages; system entries there are skipped, .System already holds them.
FORMATS = (
    ChatFormat(
        "chatml", "<|im_start|>",
        '{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
        '{{ range .Messages }}{{ if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n<|im_start|>assistant\n'
        '{{ else if eq .Role "assistant" }}{{ .Content }}<|im_end|>\n{{ end }}{{ end }}',
        ("<|im_end|>", "<|im_start|>"), _chatml),
    ChatFormat(
        "llama3", "<|start_header_id|>",
        '{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}'
        '{{ range .Messages }}{{ if eq .Role "user" }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Content }}<|eot_id|>'
        '<|start_header_id|>assistant<|end_header_id|>\n\n'
        '{{ else if eq .Role "assistant" }}{{ .Content }}<|eot_id|>{{ end }}{{ end }}',
        ("<|eot_id|>", "<|start_header_id|>"), _llama3),
    ChatFormat(
        "gemma", "<start_of_turn>",
        '{{ $first := true }}{{ range .Messages }}{{ if eq .Role "user" }}<start_of_turn>user\n'
        '{{ if and $first $.System }}{{ $.System }}\n\n{{ end }}{{ $first = false }}{{ .Content }}<end_of_turn>\n'
        '<start_of_turn>model\n{{ else if eq .Role "assistant" }}{{ .Content }}<end_of_turn>\n{{ end }}{{ end }}',
        ("<end_of_turn>",), _gemma),
)

SAMPLES: tuple[list[dict[str, str]], ...] = (
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Is aspirin an NSAID?"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Is sleep good?"}],
)
BOS = ("<|begin_of_text|>", "<bos>", "<s>")


def match_chat_format(template: str | None, apply: Callable[..., Any]) -> ChatFormat | None:
    """The format whose rendering equals the model's own (`apply`: a tokenizer's apply_chat_template) on
    sample conversations, a leading BOS aside (llama.cpp and Ollama add it when tokenizing); else None."""
    from jinja2 import TemplateError

    if not template:
        return None
    for fmt in FORMATS:
        if fmt.marker not in template:
            continue
        try:
            rendered = [str(apply(list(s), tokenize=False, add_generation_prompt=True)) for s in SAMPLES]
        except (TemplateError, ValueError, TypeError, KeyError):  # a template may refuse a system turn: no TEMPLATE
            return None
        cleaned = [next((r.removeprefix(b) for b in BOS if r.startswith(b)), r) for r in rendered]
        if all(c == fmt.render(s) for c, s in zip(cleaned, SAMPLES, strict=True)):
            return fmt
    return None


__all__ = ["FORMATS", "ChatFormat", "match_chat_format"]
