"""What the app shows, as plain functions of API objects: the answer with its unsupported numbers marked,
the evidence panel, source rows (the quoted span marked), notes, upload checks, index status and the
report view. app.py wires them to Gradio; nothing here imports gradio (tests: tests/test_app.py).

The upload check takes the file types the document jobs take (api.SUPPORTED_FILES) and adds what a
browser upload needs on top: a size limit and a look at the content.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Literal

import assistant as api

WHOLE = "(whole domain)"  # a company the question names still scopes it (assistant.scope); the reason says so
EVERYTHING = "(whole domain, names ignored)"
SOURCE_HEADERS = ["#", "title", "id", "page / URL", "score", "similarity", "snippet"]
SOURCE_TYPES: list[Literal["str", "number", "markdown"]] = ["number", "str", "str", "markdown", "number", "number", "markdown"]
CHARTS = {"accuracy.png": "Accuracy (95% CI)", "accuracy_latency.png": "Accuracy vs latency",
          "errors.png": "Error types", "data_size.png": "Accuracy vs training data"}
_MD = re.compile(r"([\\`*_\[\]<>#|])")


def _md(text: str) -> str:
    """Text shown as itself in markdown: its markup characters (and < >, so no HTML) backslash-escaped."""
    return _MD.sub(r"\\\1", text)


def scopes(status: api.IndexStatus | None) -> list[str]:
    """"corpus: X", "company: Y" and "document: Z" choices for scoping retrieval, from the index's facets."""
    facets = status.facets if status else {}
    return [WHOLE, EVERYTHING,
            *(f"{key}: {v}" for key in ("corpus", "company", "document") for v in facets.get(key, []))]


def auto_scope(scope: str | None) -> bool:
    """Whether a question may be scoped to the companies it names: not when the user chose to ignore them."""
    return scope != EVERYTHING


def scope_filters(scope: str | None) -> dict[str, str] | None:
    if scope and scope not in (WHOLE, EVERYTHING) and ": " in scope:
        key, value = scope.split(": ", 1)
        return {key: value}
    return None


def _snippet(text: str, question: str, width: int = 360, quote: tuple[int, int] | None = None) -> str:
    """The passage around the evidence quote (`quote`: its span, marked) or else around the first question
    word it contains, with the question's words in bold; the text is markdown-escaped, so only our own
    <mark> tags are HTML."""
    words = sorted({w for w in re.findall(r"[A-Za-z0-9$%.]{4,}", question)}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(w.strip(".")) for w in words if w.strip(".")) or "$^", re.I)
    hit = pattern.search(text)
    anchor = quote[0] if quote else (hit.start() if hit else 0)
    start = max(0, anchor - width // 3)
    stop = max(start + width, quote[1] if quote else 0)

    def show(part: str) -> str:
        escaped = _md(" ".join(part.split()) if part.strip() else part)
        return pattern.sub(lambda m: f"**{m.group(0)}**", escaped) if words else escaped

    lead, tail = "…" if start else "", "…" if stop < len(text) else ""
    if quote is None:
        return lead + show(text[start:stop]) + tail
    a, b = quote
    return f"{lead}{show(text[start:a])} <mark>{show(text[a:b])}</mark> {show(text[b:stop])}{tail}"


def source_rows(answer: api.Answer, question: str) -> list[list[Any]]:
    quotes = {e.source: (e.start, e.end) for e in reversed(answer.evidence)}  # the first quote of a source
    rows = []
    for i, s in enumerate(answer.sources, 1):
        url = s.locator.startswith(("http://", "https://"))
        text = _md(s.locator)
        where = f"[{text}]({s.locator.replace(' ', '%20').replace(')', '%29')})" if url else text
        sim = None if s.similarity is None else round(s.similarity, 3)
        rows.append([i, s.title, s.doc_id, where, round(s.score, 4), sim, _snippet(s.snippet, question, quote=quotes.get(i))])
    return rows


def answer_html(answer: api.Answer) -> str:
    """The answer for the chat: HTML-escaped (the text is the model's, untrusted), each number no source
    shows wrapped in <mark class="unsupported"> with a title saying so."""
    text, out, at = answer.text, [], 0
    for c in sorted((c for c in answer.checks if not c.supported), key=lambda c: c.start):
        if c.start < at or text[c.start:c.end] != c.claim:
            continue  # a check that no longer matches the text (edited after the check): not marked
        title = html.escape(f"{c.claim}: {c.note or 'no source shows it'}", quote=True)
        out += [html.escape(text[at:c.start]), f'<mark class="unsupported" title="{title}">{html.escape(c.claim)}</mark>']
        at = c.end
    out.append(html.escape(text[at:]))
    return "".join(out)


def evidence_markdown(answer: api.Answer) -> str:
    """The evidence panel: each cited source's quote, highlighted, under its number and page; then the
    numbers the sources do not show ('' when the answer has no evidence and nothing was checked)."""
    parts = []
    for e in answer.evidence:
        quote = _md(" ".join(e.quote.split()))
        where = _md(e.locator or e.doc_id)
        best = " _(best match: the answer cites no source)_" if not e.cited else ""
        parts.append(f"**\\[{e.source}\\]** {where}{best}\n\n> <mark>{quote}</mark>")
    if answer.checks:
        ok = sum(c.supported for c in answer.checks)
        parts.append(f"**Numbers checked:** {ok} of {len(answer.checks)} shown by the sources")
        parts += [f"- ⚠️ <mark class=\"unsupported\">{_md(c.claim)}</mark> — {_md(c.note)}"
                  for c in answer.checks if not c.supported]
    return ("### Evidence\n\n" + "\n\n".join(parts)) if parts else ""


def notes(answer: api.Answer) -> str:
    """Strategy and the router's reason, model, latency, then warnings (low relevance, citations)."""
    t = answer.timings
    parts = " · ".join(f"{k} {v:.2f} s" for k, v in t.items() if k != "total")
    lines = [f"**Strategy:** `{answer.strategy}` — {answer.reason}",
             f"**Latency:** {t.get('total', 0.0):.2f} s" + (f" ({parts})" if parts else "")
             + f" · **model** `{answer.model or '—'}`"]
    if not answer.sources:
        lines.append(f"_No sources: `{answer.strategy}` answers without retrieving passages._")
    lines += [f"> ⚠️ {_md(w)}" for w in answer.warnings]
    return "\n\n".join(lines)


def check_upload(path: Path, max_bytes: int) -> str | None:
    """What is wrong with an uploaded file (type, size, content), or None."""
    name, suffix = path.name, path.suffix.lower()
    if suffix not in api.SUPPORTED_FILES:
        return f"{name}: {suffix or 'a file without extension'} is not accepted ({api.SUPPORTED_LABEL} only)"
    size = path.stat().st_size
    if size == 0:
        return f"{name}: the file is empty"
    if size > max_bytes:
        return f"{name}: {size / 1e6:.2f} MB is over the {max_bytes / 1e6:.2f} MB limit"
    with path.open("rb") as f:
        head = f.read(4096)
    if suffix == ".pdf" and not head.startswith(b"%PDF-"):
        return f"{name}: not a PDF file (it does not start with %PDF-)"
    if suffix != ".pdf" and b"\x00" in head:
        return f"{name}: not a text file (binary content)"
    return None


def refused(problems: list[str]) -> str:
    return "**Nothing was added.**\n\n" + "\n".join(f"- {p}" for p in problems)


def added(paths: list[Path], before: api.IndexStatus | None, after: api.IndexStatus | None) -> str:
    docs = (after.n_documents if after else 0) - (before.n_documents if before else 0)
    chunks = (after.n_chunks if after else 0) - (before.n_chunks if before else 0)
    names = ", ".join(f"`{p.name}`" for p in paths)
    return f"Added {names}: {docs:+d} documents, {chunks:+d} chunks (stored under safe names)."


def index_markdown(domain: str, status: api.IndexStatus | None) -> str:
    if status is None:
        return f"**{domain}**: no index yet. Add documents here, or run `assistant index build {domain}`."
    return (f"**{domain}** index: **{status.n_documents}** documents, **{status.n_chunks}** chunks, last updated "
            f"{status.updated_at or '—'} · corpora: {', '.join(status.corpora) or '—'} · "
            f"embedding `{status.embedding_model}`")


STATES = {"waiting": "waiting", "preparing": "**reading the sources**", "indexing": "**indexing**",
          "ready": "ready ✓", "failed": "**failed**"}


def build_markdown(items: list[api.CorpusProgress], finished: bool) -> str:
    """The background build's banner: per domain and corpus, its state and progress ('' when none ran)."""
    if not items:
        return ""
    if finished and all(i.state == "ready" for i in items):
        return "All indexes are built: " + ", ".join(
            f"**{d}** ({', '.join(i.corpus for i in items if i.domain == d)})" for d in dict.fromkeys(i.domain for i in items))
    rows = ["| domain | corpus | state | progress |", "|---|---|---|---|"]
    for i in items:
        share = f"{i.done:,} / ~{i.total:,} chunks ({100 * i.done // max(i.total, 1)}%)" if i.total else ""
        detail = i.message if i.state in ("ready", "failed") or not share else share
        rows.append(f"| {i.domain} | {i.corpus} | {STATES[i.state]} | {detail} |")
    head = ("**Indexes are being built in the background.** Ask now: answers use the corpora marked ready and say "
            "which are missing." if not finished else "**The background build is over; some corpora failed** "
            "(see the log; fix them and run `assistant index build DOMAIN`).")
    return head + "\n\n" + "\n".join(rows)


def no_results(domain: str) -> str:
    return (f"No evaluation run for **{domain}** yet. Make one with "
            f"`assistant eval --domain {domain} --strategies base,rag --limit 50`, then refresh.")


def report_view(report: Path) -> tuple[str, list[Any]]:
    """The report's header and results table (its charts are shown as images, so their links are left out)."""
    from PIL import Image

    keep, section = [], ""
    for line in report.read_text(encoding="utf-8").splitlines():
        section = line[3:].strip() if line.startswith("## ") else section
        if section in ("", "Results"):
            keep.append("##" + line if line.startswith("#") else line)  # headings below the page's own
    keep.append(f"\n_Full report with error analysis: `{report}`_")
    charts = []
    for name, caption in CHARTS.items():
        if (report.parent / name).is_file():
            with Image.open(report.parent / name) as img:
                charts.append((img.copy(), caption))  # images, not paths: the runs folder need not be served
    return "\n".join(keep), charts
