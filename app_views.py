"""What the app shows, as plain functions of API objects: source rows, notes, upload checks, index status
and the report view. app.py wires them to Gradio; nothing here imports gradio (tests: tests/test_app.py).

The upload check takes the file types the document jobs take (api.SUPPORTED_FILES) and adds what a
browser upload needs on top: a size limit and a look at the content.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import assistant as api

WHOLE = "(whole domain)"
SOURCE_HEADERS = ["#", "title", "id", "page / URL", "score", "similarity", "snippet"]
SOURCE_TYPES: list[Literal["str", "number", "markdown"]] = ["number", "str", "str", "markdown", "number", "number", "markdown"]
CHARTS = {"accuracy.png": "Accuracy (95% CI)", "accuracy_latency.png": "Accuracy vs latency",
          "errors.png": "Error types", "data_size.png": "Accuracy vs training data"}
_MD = re.compile(r"([\\`*_\[\]<>#|])")


def scopes(status: api.IndexStatus | None) -> list[str]:
    """"corpus: X", "company: Y" and "document: Z" choices for scoping retrieval, from the index's facets."""
    facets = status.facets if status else {}
    return [WHOLE, *(f"{key}: {v}" for key in ("corpus", "company", "document") for v in facets.get(key, []))]


def scope_filters(scope: str | None) -> dict[str, str] | None:
    if scope and scope != WHOLE and ": " in scope:
        key, value = scope.split(": ", 1)
        return {key: value}
    return None


def _snippet(text: str, question: str, width: int = 360) -> str:
    """The passage around the first question word it contains, with the question's words in bold."""
    words = sorted({w for w in re.findall(r"[A-Za-z0-9$%.]{4,}", question)}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(w.strip(".")) for w in words if w.strip(".")) or "$^", re.I)
    hit = pattern.search(text)
    start = max(0, (hit.start() if hit else 0) - width // 3)
    part = ("…" if start else "") + text[start:start + width] + ("…" if start + width < len(text) else "")
    return pattern.sub(lambda m: f"**{m.group(0)}**", _MD.sub(r"\\\1", part)) if words else _MD.sub(r"\\\1", part)


def source_rows(answer: api.Answer, question: str) -> list[list[Any]]:
    rows = []
    for i, s in enumerate(answer.sources, 1):
        url = s.locator.startswith(("http://", "https://"))
        text = _MD.sub(r"\\\1", s.locator)
        where = f"[{text}]({s.locator.replace(' ', '%20').replace(')', '%29')})" if url else text
        sim = None if s.similarity is None else round(s.similarity, 3)
        rows.append([i, s.title, s.doc_id, where, round(s.score, 4), sim, _snippet(s.snippet, question)])
    return rows


def notes(answer: api.Answer) -> str:
    """Strategy and the router's reason, model, latency, then warnings (low relevance, citations)."""
    t = answer.timings
    parts = " · ".join(f"{k} {v:.2f} s" for k, v in t.items() if k != "total")
    lines = [f"**Strategy:** `{answer.strategy}` — {answer.reason}",
             f"**Latency:** {t.get('total', 0.0):.2f} s" + (f" ({parts})" if parts else "")
             + f" · **model** `{answer.model or '—'}`"]
    if not answer.sources:
        lines.append(f"_No sources: `{answer.strategy}` answers without retrieving passages._")
    lines += [f"> ⚠️ {w}" for w in answer.warnings]
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
