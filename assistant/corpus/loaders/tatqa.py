"""TAT-QA loader: hybrid table + text contexts from annual reports, with their questions.

    assistant corpus prepare tatqa                         # the shipped recipe (dev -> train, test_gold -> test)
    assistant corpus prepare tatqa --from FOLDER           # a folder of tatqa_dataset_*.json

Each context is one Document: the table rendered as a markdown table, then the paragraphs in their
`order`. Each question is one QAItem whose answer is a display string (a list answer joined with "; ",
numbers as text); the original value, derivation, scale and the rest stay in the item's metadata so that
scorers can apply TAT-QA's numeracy-aware metrics.

A file whose name contains "test" is the test split, any other (train, dev) is train. A context found in
several files is kept once (the first one seen).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.corpus.loaders import LoadResult, files_under, progress_bar, register_loader
from assistant.errors import InputError
from assistant.types import Document, QAItem, Split

if TYPE_CHECKING:
    from assistant.corpus.recipe import Recipe

TITLE_CHARS = 80


def _cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def markdown_table(rows: list[list[Any]]) -> str:
    """Rows of cells as a GitHub markdown table; the first row is the header, short rows are padded."""
    rows = [list(r) for r in rows if isinstance(r, list | tuple)]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    cells = [[_cell(c) for c in r] + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines)


def display_answer(value: Any) -> str:
    """TAT-QA's answer (a list of spans, a number or a string) as one display string."""
    if isinstance(value, list):
        return "; ".join(display_answer(v) for v in value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        # 1e-05 reads badly in an answer; fixed notation without trailing zeros does not
        return format(value, "f").rstrip("0").rstrip(".") if "e" in text else text
    return str(value).strip()


def _title(paragraphs: list[str], uid: str) -> str:
    if not paragraphs:
        return f"Annual report table {uid[:8]}"
    first = " ".join(paragraphs[0].split())
    if len(first) > TITLE_CHARS:
        first = first[:TITLE_CHARS].rsplit(" ", 1)[0] + "…"
    return f"Annual report excerpt: {first}"


def _split_of(path: Path) -> Split:
    return "test" if "test" in path.name.lower() else "train"


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a valid UTF-8 JSON file ({exc.__class__.__name__}); expected TAT-QA JSON") from None
    if not isinstance(data, list) or not all(isinstance(c, dict) and "table" in c for c in data):
        raise InputError(f"{path}: expected a JSON list of TAT-QA contexts (each with 'table', 'paragraphs', 'questions')")
    return data


@register_loader("tatqa")
def load_tatqa(sources: list[Path], recipe: Recipe, progress: bool) -> LoadResult:
    corpus = recipe.name
    files = files_under(sources, (".json",))
    if not files:
        raise InputError(f"no TAT-QA JSON file among {', '.join(str(s) for s in sources)}")
    result = LoadResult(documents=[], qa=[])
    documents: dict[str, Document] = {}
    qa: list[QAItem] = []
    # train files first, so that a context in both is attributed to train
    for path in sorted(files, key=lambda p: (_split_of(p) == "test", str(p))):
        split = _split_of(path)
        for context in progress_bar(_read(path), enabled=progress, desc=f"{corpus}: {path.name}", unit="context"):
            table = context.get("table") or {}
            uid = str(table.get("uid") or "")
            if not uid:
                result.skip("context_without_uid", f"{path.name}: a context without a table uid skipped")
                continue
            paragraphs = sorted(context.get("paragraphs") or [], key=lambda p: p.get("order", 0))
            texts = [" ".join(str(p.get("text", "")).split()) for p in paragraphs]
            texts = [t for t in texts if t]
            body = "\n\n".join(t for t in [markdown_table(table.get("table") or []), *texts] if t)
            doc_id = f"{corpus}:{uid}"
            doc = Document(
                id=doc_id,
                corpus=corpus,
                title=_title(texts, uid),
                text=body,
                locator=f"TAT-QA {split} context {uid}",
                metadata={"source": "tatqa", "split": split},
            )
            if doc_id in documents:
                result.skip("duplicate_context")
                if documents[doc_id].text != doc.text:
                    result.warnings.append(f"{path.name}: context {uid} differs from an earlier copy; kept the first")
            elif body:
                documents[doc_id] = doc
            else:
                result.skip("empty_context", f"{path.name}: context {uid} has no table and no text; skipped")
                continue
            for q in context.get("questions") or []:
                question = " ".join(str(q.get("question", "")).split())
                if not question or "answer" not in q:
                    result.skip("incomplete_question", f"{path.name}: a question of context {uid} lacks text or answer")
                    continue
                qa.append(
                    QAItem(
                        id=f"{corpus}:{q.get('uid')}",
                        corpus=corpus,
                        question=question,
                        answer=display_answer(q["answer"]),
                        split=split,
                        answer_type=str(q.get("answer_type") or "span"),
                        doc_ids=(doc_id,),
                        metadata={
                            "answer_raw": q["answer"],
                            "answer_from": q.get("answer_from", ""),
                            "derivation": q.get("derivation", ""),
                            "scale": q.get("scale", ""),
                            "rel_paragraphs": list(q.get("rel_paragraphs") or []),
                            "req_comparison": bool(q.get("req_comparison", False)),
                        },
                    )
                )
    if result.skipped["duplicate_context"]:
        result.warnings.append(f"{result.skipped['duplicate_context']} contexts appear in more than one file; kept once")
    result.documents, result.qa = list(documents.values()), qa
    return result
