"""Prepared corpora on disk: `prepare` runs a recipe's loader and writes JSONL plus a manifest, atomically.

    from assistant.corpus import prepare, load_documents, load_qa
    report = prepare("pubmedqa", config)            # -> <home>/corpora/pubmedqa/{documents,qa_train,qa_test}.jsonl
    docs = list(load_documents("pubmedqa", config))
    test = load_qa("pubmedqa", config, split="test")

`manifest.json` records the recipe, the counts, what was skipped and why, a fingerprint (size, mtime,
sha256) of every source file, and a content hash over the documents' (id, content hash) pairs, so that
`is_stale` can tell when the sources changed and an index can tell when the documents did.

Everything is written into a temporary folder beside the corpus and moved in file by file, the old
manifest out first and the new one in last: a prepare that fails or is interrupted leaves the previously
prepared corpus as it was (and a recipe.yaml in the same folder is never touched).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.atomic import atomic_write, exclusive_lock
from assistant.config import Config
from assistant.corpus.loaders import LoadResult, files_under, get_loader
from assistant.corpus.recipe import Recipe
from assistant.corpus.recipes import get_recipe, source_paths
from assistant.errors import InputError
from assistant.types import Document, QAItem

DOCUMENTS = "documents.jsonl"
QA_FILES = {"train": "qa_train.jsonl", "test": "qa_test.jsonl"}
MANIFEST = "manifest.json"
DATA_FILES = (DOCUMENTS, *QA_FILES.values())
MANIFEST_VERSION = 1
TMP_DIR = ".prepare"


@dataclass
class PrepareReport:
    name: str
    domain: str
    path: Path  # the prepared corpus's folder
    n_documents: int
    n_train: int
    n_test: int
    skipped: dict[str, int]  # reason -> count
    warnings: list[str]
    source_hash: str
    seconds: float
    content_hash: str = ""

    def summary(self) -> str:
        """One line for the CLI: counts, skips and time."""
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        return (
            f"{self.name} ({self.domain}): {self.n_documents} documents, {self.n_train} train / {self.n_test} test "
            f"questions" + (f"; skipped {skipped}" if skipped else "") + f" [{self.seconds:.1f} s] -> {self.path}"
        )


def corpus_dir(name: str, config: Config) -> Path:
    return config.corpora_dir / name


def fingerprint(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Size, mtime and sha256 of every file under `paths` (folders walked), keyed by absolute path."""
    prints: dict[str, dict[str, Any]] = {}
    for file in files_under(paths):
        stat = file.stat()
        prints[str(file)] = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256_file(file)}
    return prints


def _source_hash(prints: dict[str, dict[str, Any]]) -> str:
    # content only, not paths: moving the data folder does not change the corpus
    joined = "\n".join(sorted(p["sha256"] for p in prints.values()))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def content_hash(pairs: list[tuple[str, str]]) -> str:
    """Hash over sorted (document id, Document.content_hash): equal iff the indexed content is equal."""
    joined = "\n".join(f"{doc_id}\t{h}" for doc_id, h in sorted(pairs))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]


def _jsonl(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def read_sources(name: str, config: Config, *, source: Path | None = None, progress: bool = False) -> LoadResult:
    """Run corpus `name`'s loader on its sources (or on `source`) and return what it read; writes nothing.

    For benchmarks and previews that want the exact records `prepare` would write.
    """
    recipe = get_recipe(name, config)
    return get_loader(recipe.loader)(source_paths(recipe, config, source), recipe, progress)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare(name: str, config: Config, *, source: Path | None = None, progress: bool = True) -> PrepareReport:
    """Run corpus `name`'s loader on its sources (or on `source`) and write the prepared corpus."""
    start = time.perf_counter()
    recipe = get_recipe(name, config)
    config.domain(recipe.domain)  # a recipe naming an unknown domain fails here, listing the known ones
    loader = get_loader(recipe.loader)
    paths = source_paths(recipe, config, source)
    # fingerprint first: a source edited while it is being read then shows up as stale
    prints = fingerprint(paths)
    result = loader(paths, recipe, progress)
    # one writer per corpus at a time (e.g. every process of `accelerate launch ... train` prepares what is
    # missing): a second one waits, then writes the same files again
    with exclusive_lock(corpus_dir(name, config) / ".lock"):
        return _write(name, config, recipe, paths, prints, result, source, start)


def _write(name: str, config: Config, recipe: Recipe, paths: list[Path], prints: dict[str, dict[str, Any]],
           result: LoadResult, source: Path | None, start: float) -> PrepareReport:
    """Write the loader's documents and QA splits to a scratch folder, then move them into the corpus."""
    # <home>/corpora/.prepare/<name>/tmpXXXX: the same file system as the corpus, so os.replace is atomic
    scratch = config.corpora_dir / TMP_DIR / name
    if scratch.is_dir():
        shutil.rmtree(scratch, ignore_errors=True)  # left over by a killed earlier run
    scratch.mkdir(parents=True)
    tmp = Path(tempfile.mkdtemp(dir=scratch))
    try:
        dropped: Counter[str] = Counter()
        pairs: list[tuple[str, str]] = []
        with (tmp / DOCUMENTS).open("w", encoding="utf-8") as out:
            seen: set[str] = set()
            for doc in result.documents:
                if doc.id in seen:
                    dropped["duplicate_id"] += 1  # never overwrite: the first one stays
                    continue
                seen.add(doc.id)
                out.write(_jsonl(doc.to_dict()))
                pairs.append((doc.id, doc.content_hash))
        if not pairs:
            raise InputError(f"corpus '{name}': no documents found in {', '.join(map(str, paths))}")
        counts = dict.fromkeys(QA_FILES, 0)
        qa_seen: set[str] = set()
        orphans = 0
        files = {split: (tmp / file).open("w", encoding="utf-8") for split, file in QA_FILES.items()}
        try:
            for item in result.qa:
                if item.id in qa_seen:
                    dropped["duplicate_qa_id"] += 1
                    continue
                qa_seen.add(item.id)
                orphans += not set(item.doc_ids) <= seen
                files[item.split].write(_jsonl(item.to_dict()))
                counts[item.split] += 1
        finally:
            for f in files.values():
                f.close()

        skipped = dict(sorted((Counter(result.skipped) + dropped).items()))
        warnings = list(result.warnings)
        for reason, n in sorted(dropped.items()):
            warnings.append(f"{n} records with an id seen before dropped ({reason}); the first of each was kept")
        if orphans:
            warnings.append(f"{orphans} questions cite a document that is not in the corpus")
        report = PrepareReport(
            name=name,
            domain=recipe.domain,
            path=corpus_dir(name, config),
            n_documents=len(pairs),
            n_train=counts["train"],
            n_test=counts["test"],
            skipped=skipped,
            warnings=warnings,
            source_hash=_source_hash(prints),
            seconds=0.0,
            content_hash=content_hash(pairs),
        )
        report.seconds = round(time.perf_counter() - start, 3)
        manifest = {
            "version": MANIFEST_VERSION,
            "name": name,
            "domain": recipe.domain,
            "recipe": {**recipe.to_dict(), "path": str(recipe.path) if recipe.path else None},
            "override": str(source) if source is not None else None,
            "sources": [str(p) for p in paths],
            "fingerprints": prints,
            "counts": {"documents": report.n_documents, "qa_train": report.n_train, "qa_test": report.n_test},
            "skipped": skipped,
            "warnings": warnings,
            "source_hash": report.source_hash,
            "content_hash": report.content_hash,
            "files": {f: (tmp / f).stat().st_size for f in DATA_FILES},
            "prepared_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": report.seconds,
        }

        target = corpus_dir(name, config)
        target.mkdir(exist_ok=True)
        # File by file, not assistant.atomic.atomic_dir: the folder also holds the user's recipe.yaml,
        # which a prepare never touches. The old manifest goes first and the new one comes last, so
        # that no reader ever pairs a manifest with data files of another run.
        (target / MANIFEST).unlink(missing_ok=True)
        for file in DATA_FILES:
            os.replace(tmp / file, target / file)
        atomic_write(target / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):
            scratch.parent.rmdir()  # only when no other corpus is being prepared


def _manifest(name: str, config: Config) -> dict[str, Any] | None:
    file = corpus_dir(name, config) / MANIFEST
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def is_prepared(name: str, config: Config) -> bool:
    """Whether `name` has a complete prepared corpus (manifest and data files of the same run)."""
    manifest = _manifest(name, config)
    if not manifest:
        return False
    folder = corpus_dir(name, config)
    sizes = manifest.get("files", {})
    return all((folder / f).is_file() and (folder / f).stat().st_size == sizes.get(f) for f in DATA_FILES)


def _not_prepared(name: str) -> InputError:
    return InputError(f"corpus '{name}' is not prepared: run `assistant corpus prepare {name}`")


def corpus_manifest(name: str, config: Config) -> dict[str, Any]:
    if not is_prepared(name, config):
        raise _not_prepared(name)
    manifest = _manifest(name, config)
    assert manifest is not None
    return manifest


def is_stale(name: str, config: Config) -> bool:
    """True when the corpus is not prepared, or its sources or recipe changed since it was prepared.

    A source whose size and mtime are unchanged counts as unchanged; one whose mtime moved but whose
    sha256 is the same (a `touch`, a fresh copy) is not stale either.
    """
    if not is_prepared(name, config):
        return True
    manifest = corpus_manifest(name, config)
    recipe = get_recipe(name, config).to_dict()
    old_recipe = manifest.get("recipe", {})
    if any(recipe[k] != old_recipe.get(k) for k in ("loader", "options", "domain")):
        return True
    if manifest.get("override") is None and recipe["sources"] != old_recipe.get("sources"):
        return True
    paths = [Path(p) for p in manifest.get("sources", [])]
    if not all(p.exists() for p in paths):
        return True
    old = manifest.get("fingerprints", {})
    current = files_under(paths)
    if {str(p) for p in current} != set(old):
        return True
    for file in current:
        before, stat = old[str(file)], file.stat()
        if stat.st_size != before["bytes"]:
            return True
        if stat.st_mtime_ns != before["mtime_ns"] and sha256_file(file) != before["sha256"]:
            return True
    return False


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def load_documents(name: str, config: Config) -> Iterator[Document]:
    """The prepared documents of `name`, read lazily in the order they were written."""
    if not is_prepared(name, config):
        raise _not_prepared(name)
    return (Document.from_dict(d) for d in _read_jsonl(corpus_dir(name, config) / DOCUMENTS))


def load_qa(name: str, config: Config, split: str | None = None) -> list[QAItem]:
    """The prepared QA items of `name`: one split ("train" / "test") or, with None, train then test."""
    if split is not None and split not in QA_FILES:
        raise InputError(f"split must be 'train' or 'test', got {split!r}")
    if not is_prepared(name, config):
        raise _not_prepared(name)
    splits = [split] if split else list(QA_FILES)
    folder = corpus_dir(name, config)
    return [QAItem.from_dict(d) for s in splits for d in _read_jsonl(folder / QA_FILES[s])]
