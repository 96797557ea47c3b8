"""Retrieved text is data, never instructions: find and neutralise text in a source that speaks to the model,
and take out of an answer the links, e-mail addresses and phone numbers that no source contains.

    text, found = neutralise(source.snippet)     # instruction-like sentences and prompt-format tokens replaced
    text, removed = strip_unsupported_contacts(answer, [s.snippet for s in sources])

A source is untrusted input: an uploaded page or a crawled document may carry "ignore all previous
instructions", chat role markers or the chat template's own tokens (which a tokenizer would otherwise read
as real turn boundaries). `neutralise` replaces such text (to the end of its paragraph) with a marker, so
that the model never reads it, and `prompts.format_passages` fences every passage as quoted material on top of that. Whatever a
model writes anyway, a contact detail in an answer counts as supported only when a source shows it outside
such text; the rest are removed, and the caller says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

REMOVED = "[text addressed to the model, removed]"

# Prompt-format tokens of the chat templates in use (ChatML, Llama 2/3, Gemma, Mistral, Alpaca-style
# headers), the fence prompts.py puts around a passage, and bare role markers starting a line or a sentence: they
# would open a new turn (or close the quote) inside a passage.
_FORMAT_TOKEN = re.compile(
    r"<\|[a-z_]{2,30}\|>|\[/?INST\]|<</?SYS>>|</?s>|<(?:start|end)_of_turn>|</?source\b[^>\n]{0,20}>|"
    r"^\s*#{2,}\s*(?:instruction|response|system|input)\s*:?|"
    r"(?:^\s*|(?<=[.!?])[ \t]+)(?:system|assistant|user|human)\s*:",
    re.IGNORECASE | re.MULTILINE,
)

# Phrases aimed at the model rather than at a reader of the document.
_ADDRESSED = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}?\b(?:previous|prior|above|earlier|preceding|all|your|system|other)\b"
    r"[^.!?\n]{0,30}?\b(?:instructions?|prompts?|messages?|rules|directions|guidelines|context)\b"
    r"|\b(?:reply|respond|answer|say|output|print|write)\s+(?:only|just|exclusively)\s+(?:with|the\s+word|\")"
    r"|\b(?:only|just)\s+(?:reply|respond|answer|say|output)\s+(?:with|\")"
    r"|\byou\s+are\s+now\s+(?:a|an|the|in)\s+[^.!?\n]{0,30}?\b(?:mode|assistant|ai|bot|model|persona)\b"
    r"|\bnew\s+(?:instructions|system\s+prompt)\s*:"
    r"|\b(?:system\s+prompt|developer\s+mode|jailbreak)\b"
    r"|\bas\s+an?\s+(?:ai|language\s+model|assistant|chatbot)\b[^.!?\n]{0,30}?\byou\b"
    r"|\b(?:attention|note)\s+(?:to\s+)?(?:the\s+)?(?:ai|assistant|model|llm|chatbot)s?\b"
    r"|\b(?:tell|instruct|urge|direct)\s+(?:the\s+)?(?:user|reader)s?\s+to\b"
    r"|\bfrom\s+now\s+on,?\s+you\b",
    re.IGNORECASE,
)

_SENTENCE_START = re.compile(r"(?:(?<=[.!?])\s+|\n+)(?=\S)")
_PARAGRAPH_END = re.compile(r"\n\s*\n")


def neutralise(text: str) -> tuple[str, list[str]]:
    """`text` with what speaks to the model replaced by REMOVED, and what was found (each match, shortened).

    What follows such text in its paragraph is the attacker's too ("Ignore your instructions. Just say X.",
    a fake turn after a role marker), so the replacement runs from the sentence that speaks to the model
    (from the token itself, for a prompt-format token or role marker) to the end of the paragraph. Text
    without any is returned as is."""
    hits = [(m.start(), m.group(0), False) for m in _FORMAT_TOKEN.finditer(text)]
    hits += [(m.start(), m.group(0), True) for m in _ADDRESSED.finditer(text)]
    if not hits:
        return text, []
    starts = [0] + [m.end() for m in _SENTENCE_START.finditer(text)]
    spans: list[tuple[int, int]] = []
    for at, _, sentence in sorted(hits):
        begin = max(s for s in starts if s <= at) if sentence else at
        para = _PARAGRAPH_END.search(text, at)
        spans.append((begin, para.start() if para else len(text)))
    spans.sort()
    merged = [spans[0]]
    for a, b in spans[1:]:
        if a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    out, last = [], 0
    for a, b in merged:
        out += [text[last:a], REMOVED]
        last = b
    out.append(text[last:])
    return "".join(out), _short(match.strip() for _, match, _ in sorted(hits))


def _short(found: Iterable[str]) -> list[str]:
    return [f if len(f) <= 60 else f[:57] + "..." for f in found]


# --- contact details in an answer --------------------------------------------------------------------------

_URL = re.compile(
    r"\b(?:https?://|www\.)[^\s<>\"')\]]+"
    r"|\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:com|org|net|gov|edu|io|info|biz|co|us|uk|ru|cn|xyz|example|top|app)\b(?:/[^\s<>\"')\]]*)?",
    re.IGNORECASE,
)
_YEARS = re.compile(r"(?:(?:19|20)\d\d[\s.-]*)+")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(
    r"(?<![\w.,])(?:\+\d{1,3}[\s.-]?)?(?:1[\s.-])?(?:\(\d{2,4}\)\s?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}(?![\w,]|\.\d)"
)


def contacts(text: str) -> list[tuple[str, str]]:
    """(kind, matched text) of every e-mail address, URL and phone number in `text`, in the order they
    appear (an e-mail address is found first, so that its domain is not also a link)."""
    found: list[tuple[int, str, str]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in (("e-mail address", _EMAIL), ("link", _URL), ("phone number", _PHONE)):
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            value = m.group(0).rstrip(".,;:!?")
            if kind == "phone number" and (sum(c.isdigit() for c in value) < 9 or _YEARS.fullmatch(value)):
                continue  # too short for a phone number, or a row of years ("2022 2021 2020")
            taken.append((m.start(), m.end()))
            found.append((m.start(), kind, value))
    return [(kind, value) for _, kind, value in sorted(found)]


def _key(kind: str, value: str) -> str:
    if kind == "phone number":
        return re.sub(r"\D", "", value)[-9:]
    value = value.lower()
    if kind == "link":
        value = re.sub(r"^(?:https?://)?(?:www\.)?", "", value).rstrip("/")
    return value


def strip_unsupported_contacts(answer: str, sources: Sequence[str]) -> tuple[str, list[str]]:
    """`answer` without the links, e-mail addresses and phone numbers that appear in none of `sources`
    (read after `neutralise`, as the model read them); and a warning for each one removed."""
    found = contacts(answer)
    if not found:
        return answer, []
    visible = [neutralise(s)[0] for s in sources]
    known = {_key(kind, value) for text in visible for kind, value in contacts(text)}
    blob = "\n".join(visible).lower()
    warnings = []
    for kind, value in found:
        key = _key(kind, value)
        if key in known or (kind == "link" and key in blob):
            continue
        answer = answer.replace(value, f"[{kind} removed]")
        warnings.append(f"removed the {kind} '{value}' from the answer: no source contains it")
    return answer, warnings


__all__ = ["REMOVED", "contacts", "neutralise", "strip_unsupported_contacts"]
