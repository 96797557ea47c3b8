"""MedQuAD loader: the published zip of XML documents, read in place (never extracted) -> answers and QA.

    assistant corpus prepare medquad                       # the shipped recipe (MedQuAD.zip)
    assistant corpus prepare medquad --from FOLDER         # a folder of zips or of extracted XML files

Each XML file is one page of an NIH website: `<Document id source url>`, `<Focus>`, and
`<QAPairs><QAPair pid><Question qid qtype>...<Answer>...` (five files spell the tags differently). One Document per question with a non-empty
answer: title = the question, text = the answer, locator = the page URL. Questions without an answer
(the publisher removed the three MedlinePlus subsets' answers) are skipped and counted.

Ids: MedQuAD document ids restart in every subset ("0000001" is in 9 of the 12 folders) and some
CancerGov files share one id (sub-pages of one URL, e.g. 0000013_2.xml and 0000013_2_1.xml), so a
question's id is `<corpus>:<source>_<file stem>-<pid>`, unique on the real data.

MedQuAD has no official split: questions go to test when a hash of their page (source + MedQuAD
document id) falls below `options.test_fraction` (default 0.1). Grouping by page keeps sibling
questions of one page, which share most of their wording, on the same side.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from assistant.corpus.loaders import LoadResult, files_under, progress_bar, register_loader
from assistant.errors import ConfigError, InputError
from assistant.types import Document, MetaValue, QAItem, Split

if TYPE_CHECKING:
    from assistant.corpus.recipe import Recipe

DEFAULT_TEST_FRACTION = 0.1
# Tag names, lower-cased: most files use <Document><Focus><QAPairs><QAPair><Question><Answer>, four NINDS
# files <doc><doctitle-focus><qaPairs><pair><question><answer>, one CDC file a <DiseaseFile> root.
FOCUS = {"focus", "doctitle-focus"}
PAIR = {"qapair", "pair"}
QUESTION = {"question"}
ANSWER = {"answer"}
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


def normalise_whitespace(text: str) -> str:
    """Collapse runs of spaces inside lines, strip lines, keep single line breaks and one blank line."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _child(element: ET.Element | None, names: set[str]) -> ET.Element | None:
    if element is None:
        return None
    return next((c for c in element if c.tag.lower() in names), None)


def _text(element: ET.Element | None) -> str:
    return normalise_whitespace("".join(element.itertext())) if element is not None else ""


def split_for(group: str, test_fraction: float) -> Split:
    """Deterministic, platform-independent train/test assignment of a group key."""
    bucket = int.from_bytes(hashlib.sha256(group.encode("utf-8")).digest()[:8], "big") / 2**64
    return "test" if bucket < test_fraction else "train"


def _source_from_folder(folder: str) -> str:
    # "2_GARD_QA" -> "GARD", "8_NHLBI_QA_XML" -> "NHLBI"
    name = re.sub(r"^\d+_", "", folder)
    return re.sub(r"_QA(_XML)?$", "", name) or folder


def _entries(sources: list[Path], result: LoadResult) -> Iterator[tuple[str, bytes]]:
    """(display path, XML bytes) of every XML file in the zips and folders, in a stable order."""
    for path in files_under(sources, (".zip", ".xml")):
        if path.name.lower().endswith(".xml"):
            yield str(path), path.read_bytes()
            continue
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"{path}: not a readable zip file ({exc}); expected MedQuAD.zip") from None
        with archive:
            names = sorted(
                n for n in archive.namelist()
                if n.lower().endswith(".xml") and not any(p.startswith((".", "__MACOSX")) for p in n.split("/"))
            )
            for name in names:
                try:
                    yield f"{path.name}:{name}", archive.read(name)
                except (zipfile.BadZipFile, OSError) as exc:
                    result.skip("unreadable_entry", f"{path.name}:{name}: cannot be read from the zip ({exc})")


def _count_xml(sources: list[Path]) -> int | None:
    total = 0
    for path in files_under(sources, (".zip", ".xml")):
        if path.name.lower().endswith(".xml"):
            total += 1
            continue
        try:
            with zipfile.ZipFile(path) as archive:
                total += sum(1 for n in archive.namelist() if n.lower().endswith(".xml"))
        except (zipfile.BadZipFile, OSError):
            return None
    return total


@register_loader("medquad")
def load_medquad(sources: list[Path], recipe: Recipe, progress: bool) -> LoadResult:
    corpus = recipe.name
    fraction = float(recipe.options.get("test_fraction", DEFAULT_TEST_FRACTION))
    if not 0 < fraction < 1:
        raise ConfigError(f"corpus '{corpus}': options.test_fraction must be between 0 and 1, got {fraction}")
    result = LoadResult(documents=[], qa=[])
    documents: list[Document] = []
    qa: list[QAItem] = []
    entries = _entries(sources, result)
    for where, data in progress_bar(entries, enabled=progress, desc=corpus, unit="file", total=_count_xml(sources)):
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            result.skip("malformed_xml", f"{where}: malformed XML skipped ({exc})")
            continue
        entry = PurePosixPath(where.rsplit(":", 1)[-1])
        folder = entry.parent.name
        source = root.get("source") or root.get("corpus") or _source_from_folder(folder)
        medquad_id = root.get("id") or root.get("docid") or root.get("fid") or entry.stem
        page = f"{source}_{medquad_id}"
        url = (root.get("url") or "").strip()
        focus = _text(_child(root, FOCUS))
        split = split_for(page, fraction)
        pairs = [el for el in root.iter() if el.tag.lower() in PAIR]
        if not pairs:
            result.skip("no_qa_pairs", f"{where}: no QAPair elements (root <{root.tag}>); skipped")
            continue
        for number, pair in enumerate(pairs, 1):
            question_el = _child(pair, QUESTION)
            question = _text(question_el)
            answer = _text(_child(pair, ANSWER))
            if not question:
                result.skip("no_question", f"{where}: a QAPair without a question skipped")
                continue
            if not answer:
                result.skip("empty_answer")
                continue
            assert question_el is not None  # a question has text
            pid = pair.get("pid") or question_el.get("qid", "").rsplit("-", 1)[-1] or str(number)
            qtype = question_el.get("qtype", "")
            doc_id = f"{corpus}:{source}_{entry.stem}-{pid}"
            meta: dict[str, MetaValue] = {"focus": focus, "qtype": qtype, "source": source, "document": page, "file": str(entry)}
            documents.append(Document(doc_id, corpus, title=question, text=answer, locator=url, metadata=meta))
            qa.append(
                QAItem(
                    id=doc_id,
                    corpus=corpus,
                    question=question,
                    answer=answer,
                    split=split,
                    answer_type="free",
                    doc_ids=(doc_id,),
                    metadata={"focus": focus, "qtype": qtype, "source": source, "document": page, "url": url},
                )
            )
    if result.skipped["empty_answer"]:
        result.warnings.append(
            f"{result.skipped['empty_answer']} questions without an answer skipped "
            "(MedQuAD's publisher removed the answers of the MedlinePlus subsets)"
        )
    result.documents, result.qa = documents, qa
    return result
