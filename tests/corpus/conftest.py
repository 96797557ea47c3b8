"""Tiny source files in the shipped formats, written by the tests themselves, and a recipe writer.

`write_recipe(config, name, loader, sources)` puts a recipe into the temporary data home's corpora/,
where `list_recipes` finds it before the checkout's own.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant.config import Config


def write_recipe(
    config: Config, name: str, loader: str, sources: list[str | Path], domain: str = "medical", **options: Any
) -> Path:
    folder = config.corpora_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    recipe = {"name": name, "domain": domain, "loader": loader, "sources": [str(s) for s in sources], "options": options}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return folder / "recipe.yaml"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_document(contents: list[bytes], *, font_encoding: str = "") -> bytes:
    """A minimal valid PDF with one page per content stream (b"": a page without text, like a scan) and one
    Helvetica font (`font_encoding`: e.g. "WinAnsiEncoding")."""
    objects: list[bytes] = []
    n = len(contents)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    font = 3 + 2 * n
    for i, content in enumerate(contents):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    encoding = f" /Encoding /{font_encoding}" if font_encoding else ""
    objects.append(f"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica{encoding} >>".encode())
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF: one Helvetica text line per non-empty page, an empty content stream otherwise."""
    return pdf_document([f"BT /F1 12 Tf 72 720 Td ({_escape(text)}) Tj ET".encode() if text else b"" for text in pages])


def encrypt_pdf(data: bytes, user_password: str, owner_password: str = "owner") -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


PUBMEDQA = {
    "101": {
        "QUESTION": "Does aspirin prevent strokes?",
        "CONTEXTS": ["Strokes are common.", "We studied 500 patients."],
        "LABELS": ["BACKGROUND", "METHODS"],
        "MESHES": ["Aspirin", "Stroke"],
        "YEAR": "2012",
        "final_decision": "yes",
        "LONG_ANSWER": "Aspirin reduced strokes.",
    },
    "102": {
        "QUESTION": "Is coffee harmful?",
        "CONTEXTS": ["Coffee is widely drunk."],
        "LABELS": ["BACKGROUND"],
        "MESHES": [],
        "YEAR": "2015",
        "final_decision": "no",
        "LONG_ANSWER": "Coffee was not harmful.",
    },
    "103": {
        "QUESTION": "Does sleep improve memory?",
        "CONTEXTS": ["Sleep matters."],
        "LABELS": ["OBJECTIVE"],
        "MESHES": ["Sleep"],
        "final_decision": "maybe",
        "LONG_ANSWER": "Possibly.",
    },
}


@pytest.fixture
def pubmedqa_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "pubmedqa"
    folder.mkdir()
    (folder / "ori_pqal.json").write_text(json.dumps(PUBMEDQA), encoding="utf-8")
    (folder / "test_ground_truth.json").write_text(json.dumps({"102": "no"}), encoding="utf-8")
    return folder


def medquad_xml(doc_id: str, source: str, pairs: list[tuple[str, str, str]], root: str = "Document") -> str:
    body = "".join(
        f'<QAPair pid="{pid}"><Question qid="{doc_id}-{pid}" qtype="information">{q}</Question>'
        f"<Answer>{a}</Answer></QAPair>"
        for pid, q, a in pairs
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} id="{doc_id}" source="{source}" url="https://example.org/{source}/{doc_id}">'
        f"<Focus>Focus {doc_id}</Focus><QAPairs>{body}</QAPairs></{root}>"
    )


@pytest.fixture
def medquad_zip(tmp_path: Path) -> Path:
    path = tmp_path / "MedQuAD.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("MedQuAD/readme.txt", "not xml")
        z.writestr(
            "MedQuAD/2_GARD_QA/0000001.xml",
            medquad_xml(
                "0000001",
                "GARD",
                [("1", "What is X ?", "X is   a\n   rare  disease."), ("2", "What causes X ?", "Genes."), ("3", "Who gets X ?", "  ")],
            ),
        )
        # the same MedQuAD id in another subset: ids must still be unique
        z.writestr("MedQuAD/3_GHR_QA/0000001.xml", medquad_xml("0000001", "GHR", [("1", "What is Y ?", "Y is a gene.")]))
        z.writestr("MedQuAD/3_GHR_QA/0000002.xml", "<Document id='0000002'><QAPairs><QAPair>")  # malformed
        z.writestr(
            "MedQuAD/10_MPlus_ADAM_QA/0000001.xml",
            medquad_xml("0000001", "ADAM", [("1", "What is Z ?", ""), ("2", "How to treat Z ?", "")]),
        )
    return path


def tatqa_context(uid: str, questions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "table": {"uid": uid, "table": [["", "2019", "2018"], ["Revenue", "$1,000", "900"], ["Cost | net", "(50)", "40"]]},
        "paragraphs": [
            {"uid": f"{uid}-p2", "order": 2, "text": "Second paragraph."},
            {"uid": f"{uid}-p1", "order": 1, "text": "Revenue grew strongly in 2019 because of new contracts signed."},
        ],
        "questions": questions,
    }


def tatqa_question(uid: str, answer: Any, answer_type: str) -> dict[str, Any]:
    return {
        "uid": uid,
        "order": 1,
        "question": f"Question {uid}?",
        "answer": answer,
        "derivation": "1000-900" if answer_type == "arithmetic" else "",
        "answer_type": answer_type,
        "answer_from": "table",
        "rel_paragraphs": ["1"],
        "req_comparison": False,
        "scale": "thousand",
    }


@pytest.fixture
def tatqa_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tatqa"
    folder.mkdir()
    dev = [
        tatqa_context("ctx-a", [tatqa_question("q1", 100.0, "arithmetic"), tatqa_question("q2", ["Revenue", "Cost"], "multi-span")]),
        tatqa_context("ctx-b", [tatqa_question("q3", "2", "count")]),
    ]
    test = [
        tatqa_context("ctx-c", [tatqa_question("q4", ["$1,000"], "span")]),
        tatqa_context("ctx-a", [tatqa_question("q5", -12.5, "arithmetic")]),  # a context in both files
    ]
    (folder / "tatqa_dataset_dev.json").write_text(json.dumps(dev), encoding="utf-8")
    (folder / "tatqa_dataset_test_gold.json").write_text(json.dumps(test), encoding="utf-8")
    return folder
