"""PubMedQA loader: `ori_pqal.json` (+ the official `test_ground_truth.json`) -> abstracts and yes/no/maybe QA.

    assistant corpus prepare pubmedqa                      # the shipped recipe
    assistant corpus prepare pubmedqa --from DIR           # a folder holding both JSON files

One Document per PMID: the abstract's sections without the conclusion, each prefixed by its label
("BACKGROUND: ..."). Neither the question nor the conclusion (LONG_ANSWER) goes into the document: the
question is derived from the article's title and the conclusion states the answer, so either would leak
the label into retrieval. One QAItem per PMID: question -> final_decision, long_answer = the conclusion;
split "test" iff the PMID is in the ground-truth file (the official 500), else "train".

Files are recognised by content, not name: a JSON object of PMID -> record is data, one of PMID -> label
is a ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.corpus.loaders import LoadResult, files_under, progress_bar, register_loader
from assistant.errors import InputError
from assistant.types import Document, MetaValue, QAItem

if TYPE_CHECKING:
    from assistant.corpus.recipe import Recipe

OPTIONS = ("yes", "no", "maybe")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a valid UTF-8 JSON file ({exc.__class__.__name__}); expected PubMedQA JSON") from None


def _classify(sources: list[Path]) -> tuple[list[tuple[Path, dict[str, Any]]], dict[str, str]]:
    data: list[tuple[Path, dict[str, Any]]] = []
    truth: dict[str, str] = {}
    for path in files_under(sources, (".json",)):
        obj = _read_json(path)
        if not isinstance(obj, dict) or not obj:
            raise InputError(f"{path}: expected a JSON object keyed by PMID (PubMedQA format)")
        values = list(obj.values())
        if all(isinstance(v, str) for v in values):
            truth.update({str(k): v for k, v in obj.items()})
        elif all(isinstance(v, dict) for v in values):
            data.append((path, obj))
        else:
            raise InputError(f"{path}: expected PMID -> record (ori_pqal.json) or PMID -> label (test_ground_truth.json)")
    if not data:
        names = ", ".join(str(s) for s in sources)
        raise InputError(f"no PubMedQA data file (like ori_pqal.json) among {names}")
    return data, truth


def _year(value: Any) -> int | None:
    try:
        return int(str(value).strip()[:4])
    except ValueError:
        return None


@register_loader("pubmedqa")
def load_pubmedqa(sources: list[Path], recipe: Recipe, progress: bool) -> LoadResult:
    corpus = recipe.name
    data, truth = _classify(sources)
    result = LoadResult(documents=[], qa=[])
    documents: list[Document] = []
    qa: list[QAItem] = []
    seen_test: set[str] = set()
    disagree = 0
    for path, records in data:
        for pmid, rec in progress_bar(records.items(), enabled=progress, desc=f"{corpus}: {path.name}", unit="abstract"):
            contexts = [str(c).strip() for c in rec.get("CONTEXTS") or [] if str(c).strip()]
            if not contexts:
                result.skip("no_contexts", f"{path.name}: PMID {pmid} has no CONTEXTS")
                continue
            labels = list(rec.get("LABELS") or [])
            sections = []
            for i, text in enumerate(contexts):
                label = str(labels[i]).strip() if i < len(labels) and labels[i] else ""
                sections.append(f"{label}: {text}" if label else text)
            year = _year(rec.get("YEAR"))
            meta: dict[str, MetaValue] = {"pmid": str(pmid), "source": "pubmedqa"}
            if year is not None:
                meta["year"] = year
            meshes = [str(m) for m in rec.get("MESHES") or []]
            if meshes:
                meta["mesh"] = "; ".join(meshes)
            doc_id = f"{corpus}:{pmid}"
            documents.append(
                Document(
                    id=doc_id,
                    corpus=corpus,
                    title=f"PubMed {pmid}" + (f" ({year})" if year else ""),
                    text="\n\n".join(sections),
                    locator=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/",
                    metadata=meta,
                )
            )
            decision = str(rec.get("final_decision") or "").strip().lower()
            question = str(rec.get("QUESTION") or "").strip()
            if decision not in OPTIONS or not question:
                # PQA-U (unlabelled) records: the abstract is still a useful document
                result.skip("unlabelled_question", None)
                continue
            in_test = str(pmid) in truth
            if in_test:
                seen_test.add(str(pmid))
                if truth[str(pmid)].strip().lower() != decision:
                    disagree += 1
            qa.append(
                QAItem(
                    id=doc_id,
                    corpus=corpus,
                    question=question,
                    answer=decision,
                    split="test" if in_test else "train",
                    answer_type="label",
                    doc_ids=(doc_id,),
                    options=OPTIONS,
                    long_answer=str(rec.get("LONG_ANSWER") or "").strip(),
                    metadata={"year": year} if year is not None else {},
                )
            )
    if not truth:
        result.warnings.append("no ground-truth file (test_ground_truth.json) among the sources: every question is train")
    missing = len(set(truth) - seen_test)
    if missing:
        result.warnings.append(f"{missing} test PMIDs of the ground truth are not in the data files")
    if disagree:
        result.warnings.append(f"{disagree} test labels in the ground truth disagree with final_decision (kept final_decision)")
    result.documents, result.qa = documents, qa
    return result
