"""`assistant data synth`: a QA set for a corpus that has none, written as the corpus's own train/test split.

    assistant data synth --domain finance --corpus filings --method tables [--limit N] [--seed S] [--test-share 0.3]

    from assistant.corpus.synth import synthesize
    report = synthesize("filings", config, method="tables", limit=2000, seed=0, test_share=0.3)
    print(report.summary())

Method `tables` (`assistant.corpus.synth_tables`) reads the tables of the corpus's PDF pages with
pdfplumber and asks for their cells; the page is the gold evidence. Method `llm` (`synth_llm`) has a model
write a question and answer about one passage of each sampled document (any corpus), kept when the passage
supports the answer; the document is the gold evidence and the model is named in every question. The records are deduplicated (a
question asked twice with different answers is dropped), split into train and test by document (no
document in both), the train questions checked against every test question of the domain with the
project's leakage check (`assistant.corpus.leakage`, at `training.leakage_threshold`), and written as
qa_train.jsonl / qa_test.jsonl with a "synthesised" entry in the corpus manifest (`synth_split`).

Interrupted, it resumes: each document's records are cached, atomically, under
`<corpus>/.synth/<method>/`, keyed by the PDF's sha256; a second run reads the cache and reads only
the PDFs that are not in it. The pages are read by a pool of processes, one per core.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.atomic import atomic_write
from assistant.config import Config
from assistant.corpus.leakage import find_leaks
from assistant.corpus.loaders import progress_bar
from assistant.corpus.loaders.pdf import cpu_count
from assistant.corpus.recipes import corpora_for, get_recipe
from assistant.corpus.store import corpus_dir, corpus_manifest, is_prepared, is_stale, load_documents, load_qa
from assistant.corpus.synth_llm import Ask, llm_records
from assistant.corpus.synth_split import dedupe, existing_qa, limit_items, split_by_document, write_split
from assistant.corpus.synth_tables import Problems, table_page, tables_task
from assistant.errors import InputError, NotFoundError
from assistant.types import QAItem, Split

METHODS = ("tables", "llm")
CACHE_VERSION = 1
PAGES_PER_TASK = 12
# reasons the files loader skips a PDF for, and the words of its warning (assistant.corpus.loaders.files)
_PREPARE_SKIPS = {"no_text": "extractable text", "corrupt_pdf": "not a readable PDF", "encrypted_pdf": "password"}


@dataclass
class SynthReport:
    corpus: str
    domain: str
    method: str
    path: Path
    n_documents: int = 0  # PDFs considered
    n_pages: int = 0  # their pages in the corpus
    n_pages_read: int = 0  # pages that looked like tables and were read (this run and cached)
    n_pages_read_now: int = 0  # of which read in this run
    n_tables: int = 0
    n_records: int = 0  # questions that passed the per-question filters
    n_train: int = 0
    n_test: int = 0
    train_documents: list[str] = field(default_factory=list)
    test_documents: list[str] = field(default_factory=list)
    problems: dict[str, int] = field(default_factory=dict)  # bad input and filtered questions, by reason
    examples: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # set-level: duplicate, ambiguous, leak, limit
    resumed: int = 0  # documents read from the cache of an earlier run
    seconds: float = 0.0
    read_seconds: float = 0.0  # wall time spent reading PDFs in this run
    cpu_seconds: float = 0.0  # CPU time the workers spent on them (all cores together)
    sample: list[QAItem] = field(default_factory=list)

    @property
    def pages_per_second(self) -> float:
        """Pages read per second of wall time in this run (0.0 when everything came from the cache)."""
        return self.n_pages_read_now / self.read_seconds if self.read_seconds and self.n_pages_read_now else 0.0

    def summary(self) -> str:
        speed = (f", {self.pages_per_second:.1f} pages/s, {self.cpu_seconds / self.n_pages_read_now:.2f} CPU s/page"
                 if self.pages_per_second else "")
        resumed = f"; {self.resumed} documents from the cache of an earlier run" if self.resumed else ""
        dropped = ", ".join(f"{n} {k}" for k, n in sorted(self.dropped.items()) if n)
        return (
            f"{self.corpus} ({self.domain}): synthesised {self.n_train} train / {self.n_test} test questions "
            f"with method '{self.method}' from " + (f"{self.n_tables} tables on " if self.method == "tables" else
                                                    f"a passage each ({self.n_pages_read_now} asked now) of ")
            + f"{self.n_pages_read} of {self.n_pages} pages of {self.n_documents} documents"
            + (f"; dropped {dropped}" if dropped else "")
            + resumed + f" [{self.seconds:.1f} s{speed}] -> {self.path}"
        )


def _check(corpus: str, config: Config, domain: str | None, method: str, test_share: float) -> dict[str, Any]:
    recipe = get_recipe(corpus, config)
    if domain is not None and recipe.domain != domain:
        raise InputError(f"corpus '{corpus}' belongs to domain '{recipe.domain}', not '{domain}'")
    if method not in METHODS:
        raise NotFoundError(f"unknown method '{method}' (known: {', '.join(METHODS)})")
    if not 0.0 < test_share < 1.0:
        raise InputError(f"--test-share must be between 0 and 1, got {test_share}")
    if not is_prepared(corpus, config):
        raise InputError(f"corpus '{corpus}' is not prepared: run `assistant corpus prepare {corpus}`")
    if is_stale(corpus, config):
        raise InputError(f"corpus '{corpus}' changed since it was prepared: run `assistant corpus prepare {corpus}`")
    manifest = corpus_manifest(corpus, config)
    if existing_qa(manifest) and not manifest.get("synthesised"):
        counts = manifest.get("counts", {})
        raise InputError(
            f"corpus '{corpus}' has a QA set of its own ({counts.get('qa_train', 0)} train / {counts.get('qa_test', 0)} "
            "test questions); synth writes one for a corpus that has none"
        )
    return manifest


def _pdf_path(manifest: dict[str, Any], rel: str) -> Path | None:
    for source in map(Path, manifest.get("sources", [])):
        candidate = source / rel if source.is_dir() else source if source.name == rel else None
        if candidate is not None and candidate.is_file():
            return candidate
    return None


@dataclass
class _Doc:
    key: str  # metadata "document": the file's stem, with its sub-folder
    path: Path | None
    meta: dict[str, Any]
    pages: list[tuple[int, str, str]]  # (page, document id, text) of the pages worth reading
    n_pages: int
    sha256: str = ""
    result: dict[str, Any] | None = None


def _documents(corpus: str, config: Config, manifest: dict[str, Any], problems: Problems) -> list[_Doc]:
    docs: dict[str, _Doc] = {}
    for doc in load_documents(corpus, config):
        meta = doc.metadata
        if not str(meta.get("file", "")).lower().endswith(".pdf") or "page" not in meta:
            problems.add("not_a_pdf_page", f"{doc.id} ({doc.locator})")
            continue
        key = str(meta.get("document") or meta["file"])
        entry = docs.get(key)
        if entry is None:
            entry = docs[key] = _Doc(key, _pdf_path(manifest, str(meta["file"])), dict(meta), [], 0)
        entry.n_pages += 1
        if table_page(doc.text):
            entry.pages.append((int(str(meta["page"])), doc.id, doc.text))
    prints = manifest.get("fingerprints", {})
    for entry in docs.values():
        if entry.path is None:
            problems.add("missing_pdf", f"{entry.meta.get('file')}: not found under {manifest.get('sources')}")
        else:
            entry.sha256 = prints.get(str(entry.path), {}).get("sha256", "")
    return sorted(docs.values(), key=lambda d: d.key)


def _cache_file(folder: Path, method: str, doc: _Doc) -> Path:
    safe = hashlib.sha256(doc.key.encode()).hexdigest()[:12]
    return folder / ".synth" / method / f"{Path(doc.key).name[:60]}-{safe}.json"


def _cache_key(doc: _Doc) -> str:
    pages = ",".join(str(p) for p, _, _ in doc.pages)
    return hashlib.sha256(f"{CACHE_VERSION}|{doc.sha256}|{pages}".encode()).hexdigest()[:16]


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    problems = Problems()
    for part in parts:
        problems.merge(part["problems"], part["examples"])
    return {"items": [i for p in parts for i in p["items"]], "pages": sum(p["pages"] for p in parts),
            "tables": sum(p["tables"] for p in parts), "problems": dict(problems.counts),
            "cpu_seconds": sum(p.get("cpu_seconds", 0.0) for p in parts),
            "examples": problems.examples}


def _run(todo: list[_Doc], workers: int, on_done: Callable[[_Doc], None]) -> Iterator[tuple[int, str, str]]:
    """Read the pages of `todo`, in a pool of `workers` processes (or here with one), calling `on_done`
    as each document completes; yields once per page read (for a progress bar)."""
    tasks = [(doc, doc.pages[i:i + PAGES_PER_TASK]) for doc in todo for i in range(0, len(doc.pages), PAGES_PER_TASK)]
    parts: dict[str, list[dict[str, Any]]] = {doc.key: [] for doc in todo}
    expected = Counter(doc.key for doc, _ in tasks)

    def finish(doc: _Doc, part: dict[str, Any]) -> None:
        parts[doc.key].append(part)
        if len(parts[doc.key]) == expected[doc.key]:
            doc.result = _merge(parts[doc.key])
            on_done(doc)

    for doc in todo:
        if not doc.pages:  # nothing looks like a table: no PDF to open
            doc.result = {"items": [], "pages": 0, "tables": 0, "problems": {}, "examples": {}}
            on_done(doc)
    if workers <= 1 or len(tasks) <= 1:
        for doc, pages in tasks:
            finish(doc, tables_task(str(doc.path), pages, doc.meta))
            yield from pages
        return
    import concurrent.futures as cf
    import multiprocessing

    # forkserver, never fork: the app runs this from a thread of a process with torch threads
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))
    finished = False
    try:
        futures = {pool.submit(tables_task, str(doc.path), pages, doc.meta): (doc, pages) for doc, pages in tasks}
        for future in cf.as_completed(futures):
            doc, pages = futures[future]
            try:
                part = future.result()
            except Exception as exc:  # a worker that died (out of memory) or a bug: those pages, not the run
                problems = Problems()
                problems.add("unreadable_page", f"{doc.meta.get('file')}, pages {pages[0][0]}-{pages[-1][0]}: "
                             f"{exc.__class__.__name__}: {exc}", len(pages))
                part = {"items": [], "pages": len(pages), "tables": 0, "problems": dict(problems.counts),
                        "examples": problems.examples}
            finish(doc, part)
            yield from pages
        finished = True
    finally:
        running = [] if finished else list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=not running, cancel_futures=True)
        for process in running:  # interrupted: stop the running tasks rather than wait for them
            process.terminate()


def _records(corpus: str, config: Config, manifest: dict[str, Any], method: str, problems: Problems,
             report: SynthReport, progress: bool, workers: int | None) -> list[dict[str, Any]]:
    """Every document's question records, from the cache or read now (and then cached)."""
    folder = corpus_dir(corpus, config)
    docs = _documents(corpus, config, manifest, problems)
    if not docs:
        raise InputError(f"corpus '{corpus}' has no PDF pages: method '{method}' reads tables from PDFs")
    todo: list[_Doc] = []
    for doc in docs:
        if doc.path is None:
            continue
        try:
            cached = json.loads(_cache_file(folder, method, doc).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cached = None
        if cached and cached.get("key") == _cache_key(doc):
            doc.result = cached
            report.resumed += 1
        else:
            todo.append(doc)

    def save(doc: _Doc) -> None:
        assert doc.result is not None
        atomic_write(_cache_file(folder, method, doc), json.dumps({**doc.result, "key": _cache_key(doc)}))

    start = time.perf_counter()
    n = report.n_pages_read_now = sum(len(d.pages) for d in todo)
    for _ in progress_bar(_run(todo, workers or min(cpu_count(), 8), save), enabled=progress and n > 0,
                          desc=f"{corpus} tables", unit="page", total=n):
        pass
    report.read_seconds = time.perf_counter() - start
    records: list[dict[str, Any]] = []
    fresh = {d.key for d in todo}
    for doc in docs:
        report.n_documents += 1
        report.n_pages += doc.n_pages
        if doc.result is None:
            continue
        problems.merge(doc.result["problems"], doc.result["examples"])
        report.n_pages_read += doc.result["pages"]
        report.n_tables += doc.result["tables"]
        if doc.key in fresh:
            report.cpu_seconds += doc.result.get("cpu_seconds", 0.0)
        if not doc.result["tables"]:
            problems.add("pdf_without_tables", f"{doc.meta.get('file')} ({doc.n_pages} pages with text, "
                         f"{len(doc.pages)} with numbers in rows, no ruled table)")
        records += [{**r, "document": doc.key, "meta": doc.meta} for r in doc.result["items"]]
    for reason, n in manifest.get("skipped", {}).items():
        if reason in _PREPARE_SKIPS:  # the PDFs prepare could not use: a scan, a corrupt or locked file
            said = [w for w in manifest.get("warnings", []) if _PREPARE_SKIPS[reason] in w]
            problems.add(f"prepare_skipped_{reason}", said[0] if said else f"see `assistant corpus show {corpus}`", n)
    return records


def _llm_item(corpus: str, record: dict[str, Any], split: Split, model: str) -> QAItem:
    meta = record["meta"]
    return QAItem(
        id=f"{corpus}:synth-llm:{record['doc_id']}:c{record['span'][0]}", corpus=corpus, question=record["question"],
        answer=record["answer"], split=split, answer_type="span", doc_ids=(record["doc_id"],),
        metadata={"synthesised": "llm", "method": "llm", "model": model, "answer_raw": record["answer"], "scale": "",
                  "answer_from": "passage", "document": record["document"], "file": meta.get("file"),
                  "company": meta.get("company"), "year": meta.get("year"), "page": record["page"],
                  "chunk": list(record["span"]), "locator": record["locator"]},
    )


def _item(corpus: str, record: dict[str, Any], split: Split, method: str, model: str | None = None) -> QAItem:
    if method == "llm":
        return _llm_item(corpus, record, split, model or "")
    meta = record["meta"]
    return QAItem(
        id=f"{corpus}:synth-{method}:{record['document']}:p{record['page']}:t{record['table']}"
           f":r{record['row']}:c{record['column']}",
        corpus=corpus, question=record["question"], answer=record["answer"], split=split,
        answer_type="span", doc_ids=(record["doc_id"],),
        metadata={
            "synthesised": method, "method": method, "model": None, "answer_raw": record["answer_raw"],
            "scale": record["scale"], "answer_from": "table", "document": record["document"],
            "file": meta.get("file"), "company": meta.get("company"), "year": meta.get("year"),
            "page": record["page"], "table": record["table"], "row": record["row"], "row_label": record["row_label"],
            "column": record["column"], "column_header": record["column_header"], "period": record["period"],
            "title": record["title"], "cell": record["cell"],
        },
    )


def synthesize(corpus: str, config: Config, *, domain: str | None = None, method: str = "tables",
               limit: int | None = None, seed: int = 0, test_share: float = 0.3, progress: bool = True,
               workers: int | None = None, ask: Ask | None = None, model: str | None = None,
               sample: int = 200) -> SynthReport:
    """Write a synthesised QA split for `corpus` (see the module docstring); returns what it did. Method
    `llm` asks `ask` (the model named `model`) about one passage of each of `sample` documents."""
    start = time.perf_counter()
    manifest = _check(corpus, config, domain, method, test_share)
    if limit is not None and limit < 2:
        raise InputError(f"--limit must be at least 2 (one train and one test question), got {limit}")
    recipe = get_recipe(corpus, config)
    report = SynthReport(corpus, recipe.domain, method, corpus_dir(corpus, config))
    problems = Problems()
    if method == "llm":
        if ask is None or not model:
            raise InputError("method 'llm' needs a model to ask: use `assistant data synth` (the configured model)")
        docs = list(load_documents(corpus, config))
        records, counts, said, asked = llm_records(docs, ask, model=model, seed=seed, sample=sample, progress=progress,
                                                   cache=corpus_dir(corpus, config) / ".synth" / "llm.jsonl")
        problems.merge(dict(counts), said)
        report.n_documents, report.n_pages = len({d.metadata.get("document") or d.id for d in docs}), len(docs)
        report.n_pages_read, report.n_pages_read_now = min(sample, len(docs)), asked
    else:
        records = _records(corpus, config, manifest, method, problems, report, progress, workers)
    report.n_records = len(records)
    records, dropped, examples = dedupe(records)
    for reason, some in examples.items():
        problems.merge({}, {reason: some})
    per_doc = Counter(r["document"] for r in records)
    test_docs = split_by_document(dict(per_doc), test_share=test_share, seed=seed, corpus=corpus)
    items = [_item(corpus, r, "test" if r["document"] in test_docs else "train", method, model) for r in records]
    # the leakage check: against this split's test questions and those of the domain's other corpora
    others = [q for name in corpora_for(recipe.domain, config) if name != corpus and is_prepared(name, config)
              for q in load_qa(name, config, "test")]
    leaks = find_leaks([i for i in items if i.split == "train"], [i for i in items if i.split == "test"] + others,
                       config.training.leakage_threshold)
    leaked = {leak.train_id for leak in leaks}
    items = [i for i in items if i.id not in leaked]
    dropped["leak"] = len(leaked)
    problems.merge({}, {"leak": [f"{leak.train_question} ~ {leak.test_question} ({leak.similarity:.2f})"
                                 for leak in leaks[:3]]})
    before = len(items)
    items = limit_items(items, limit, test_share, seed)
    dropped["limit"] = before - len(items)
    report.n_train = sum(i.split == "train" for i in items)
    report.n_test = len(items) - report.n_train
    report.train_documents = sorted({i.metadata["document"] for i in items if i.split == "train"})
    report.test_documents = sorted({i.metadata["document"] for i in items if i.split == "test"})
    report.problems, report.examples = dict(sorted(problems.counts.items())), problems.examples
    report.dropped = {k: v for k, v in dropped.items() if v}
    report.seconds = round(time.perf_counter() - start, 3)
    step = max(1, len(items) // 5)
    report.sample = items[::step][:5]
    write_split(corpus, config, items, {
        "method": method, "model": model if method == "llm" else None, "seed": seed, "test_share": test_share, "limit": limit,
        "leakage_threshold": config.training.leakage_threshold, "train_documents": report.train_documents,
        "test_documents": report.test_documents,
        "counts": {"records": report.n_records, "train": report.n_train, "test": report.n_test,
                   "tables": report.n_tables, "pages_read": report.n_pages_read, "pages": report.n_pages},
        "dropped": report.dropped, "problems": report.problems,
        "at": datetime.now(UTC).isoformat(timespec="seconds"), "seconds": report.seconds,
    })
    return report


__all__ = ["METHODS", "SynthReport", "synthesize"]
