"""User-level operations that chain the modules: prepare what is missing, then build; add files to a domain.

These are what the CLI commands and the app call (through the public API in `assistant/__init__.py`):

    from assistant import build, add_documents, load_config
    config = load_config()
    build("medical", config)                         # prepares missing or stale corpora, then syncs the index
    add_documents("finance", ["report.pdf"], config)  # copies into finance-uploads, prepares, syncs
    train("sft", "medical", "medical-raft", config, with_context=True)   # RAFT passages from the index
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from assistant.config import Config
from assistant.corpus import (
    PrepareReport,
    add_recipe,
    corpora_for,
    get_loader,
    get_recipe,
    is_prepared,
    is_stale,
    prepare,
    sha256_file,
)
from assistant.errors import InputError, NotFoundError
from assistant.index import BuildReport, build_index, list_indexes
from assistant.types import QAItem, Source

if TYPE_CHECKING:
    from assistant.training import AdapterInfo

SUPPORTED_FILES = (".pdf", ".txt", ".md", ".markdown", ".html", ".htm")
MAX_UPLOAD_BYTES = 200 * 1024 * 1024


@dataclass
class BuildResult:
    prepared: list[PrepareReport] = field(default_factory=list)
    index: BuildReport | None = None


def ensure_prepared(
    name: str, config: Config, *, progress: bool = True, on_prepared: Callable[[PrepareReport], None] | None = None
) -> list[PrepareReport]:
    """Prepare the corpora behind `name` (a domain or a corpus) that are missing or whose sources changed."""
    reports = []
    for corpus in corpora_for(name, config):
        if not is_prepared(corpus, config) or is_stale(corpus, config):
            reports.append(prepare(corpus, config, progress=progress))
            if on_prepared:
                on_prepared(reports[-1])
    return reports


def build(
    name: str,
    config: Config,
    *,
    rebuild: bool = False,
    progress: bool = True,
    on_prepared: Callable[[PrepareReport], None] | None = None,
) -> BuildResult:
    """Create or bring up to date the index `name`: embeds only new or changed documents."""
    result = BuildResult(prepared=ensure_prepared(name, config, progress=progress, on_prepared=on_prepared))
    result.index = build_index(name, config, corpora=corpora_for(name, config), rebuild=rebuild, progress=progress)
    return result


def update(
    name: str, config: Config, *, progress: bool = True, on_prepared: Callable[[PrepareReport], None] | None = None
) -> BuildResult:
    """Sync an existing index with its corpora (re-preparing those whose sources changed)."""
    if name not in {s.name for s in list_indexes(config)}:
        raise NotFoundError(f"there is no '{name}' index to update: create it with `assistant index build {name}`")
    return build(name, config, progress=progress, on_prepared=on_prepared)


def safe_name(name: str) -> str:
    """A file name that cannot escape its folder or confuse a shell: [A-Za-z0-9._-], no leading dot."""
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "document"
    return f"{stem[:120]}{suffix}"


def _files(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise InputError(f"no such file or folder: {path}")
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_FILES))
        elif path.suffix.lower() not in SUPPORTED_FILES:
            raise InputError(f"{path.name}: unsupported file type (supported: {', '.join(SUPPORTED_FILES)})")
        else:
            found.append(path)
    if not found:
        raise InputError("no supported files to add (supported: " + ", ".join(SUPPORTED_FILES) + ")")
    for path in found:
        size = path.stat().st_size
        if size == 0:
            raise InputError(f"{path.name}: the file is empty")
        if size > MAX_UPLOAD_BYTES:
            raise InputError(f"{path.name}: {size / 1e6:.0f} MB is over the {MAX_UPLOAD_BYTES / 1e6:.0f} MB limit")
    return found


def uploads_corpus(domain: str) -> str:
    return f"{domain}-uploads"


def add_documents(
    domain: str,
    paths: Iterable[str | Path],
    config: Config,
    *,
    progress: bool = True,
    on_prepared: Callable[[PrepareReport], None] | None = None,
) -> BuildResult:
    """Copy files (PDF, text, markdown, HTML) into the domain's uploads corpus and sync the domain's index.

    A file with the same (safe) name replaces the earlier version, which is then re-embedded.
    """
    config.domain(domain)
    files = _files(paths)
    corpus = uploads_corpus(domain)
    folder = config.corpora_dir / corpus / "files"
    try:
        recipe = get_recipe(corpus, config)
    except NotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        recipe = add_recipe(
            corpus,
            config,
            source=folder,
            domain=domain,
            loader="files",
            description=f"Files added to the {domain} domain (assistant index update --add, or the app)",
        )
    folder.mkdir(parents=True, exist_ok=True)
    # Read each new file on its own first: a corrupt, encrypted or empty file is refused with its name
    # before anything is copied (in a folder import it would only be skipped with a warning).
    for src in files:
        get_loader(recipe.loader)([src], recipe, False)
    for src in files:
        dest = folder / safe_name(src.name)
        if dest.exists() and sha256_file(dest) == sha256_file(src):
            continue
        tmp = dest.with_name(f".{dest.name}.part")
        shutil.copyfile(src, tmp)
        tmp.replace(dest)
    return build(domain, config, progress=progress, on_prepared=on_prepared)



# --- training -------------------------------------------------------------------------------------


def index_passages(domain: str, config: Config, n: int) -> Callable[[QAItem], tuple[list[Source], list[Source]]]:
    """RAFT passages from the domain's index: (gold, distractors) for a training question.

    Distractors are what retrieval returns for the question that is not its own document: the hard
    negatives the adapter will meet at answer time. When retrieval misses the gold document, its own
    text is the gold passage.
    """
    from assistant.corpus import load_documents
    from assistant.retrieval import Retriever, merge_by_document

    if domain not in {s.name for s in list_indexes(config)}:
        raise NotFoundError(f"--with-context retrieves from the '{domain}' index: build it first with `assistant index build {domain}`")
    retriever = Retriever.open(domain, config)
    docs = {d.id: d for c in corpora_for(domain, config) for d in load_documents(c, config)}

    def passages(item: QAItem) -> tuple[list[Source], list[Source]]:
        found = merge_by_document(retriever.retrieve(item.question, top_k=n + 4))
        gold = [s for s in found if s.doc_id in item.doc_ids]
        if not gold:
            gold = [
                Source(doc_id=d.id, title=d.title, locator=d.locator, score=0.0, snippet=d.text, corpus=d.corpus)
                for d in (docs.get(i) for i in item.doc_ids)
                if d is not None
            ][:1]
        return gold, [s for s in found if s.doc_id not in item.doc_ids]

    return passages


def train(
    kind: Literal["cpt", "sft"],
    domain: str,
    name: str,
    config: Config,
    *,
    with_context: bool = False,
    progress: bool = True,
    **options: Any,
) -> AdapterInfo:
    """Prepare what is missing, then train adapter `name`: `kind` "cpt" (raw text) or "sft" (QA pairs).

    `with_context` (sft only) trains RAFT-style on passages retrieved from the domain's index; `options`
    go to `train_cpt` / `train_sft` (base, max_examples, fraction, resume, overwrite, replay and any
    TrainingConfig field such as max_steps or quantize).
    """
    from assistant.training import train_cpt, train_sft

    if kind not in ("cpt", "sft"):
        raise InputError(f"training kind must be 'cpt' or 'sft', got '{kind}'")
    corpora_for(domain, config)  # an unknown domain or corpus fails before anything loads
    ensure_prepared(domain, config, progress=progress)
    if kind == "cpt":
        if with_context:
            raise InputError("--with-context applies to `train sft` (RAFT), not to continued pretraining")
        return train_cpt(domain, name, config, **options)
    passages_for = None
    if with_context:
        n = options.get("passages") or config.training.passages
        passages_for = index_passages(domain, config, n)
    return train_sft(domain, name, config, passages_for=passages_for, **options)


def report_run(run_id: str, config: Config, *, out: Path | None = None, command: str = "") -> Path:
    """Write the markdown report and charts of evaluation run `run_id` (default folder: runs/RUN_ID/).

    The command that made the run is remembered with it (the first one given), so a report rebuilt
    later still says how its numbers were produced.
    """
    from assistant.evaluation.report import write_report
    from assistant.evaluation.store import RunStore

    store = RunStore.open(config)
    run = store.get_run(run_id)
    if command and not run.meta.get("command"):
        store.update_meta(run_id, command=command)
        run = store.get_run(run_id)
    records = store.records(run_id)
    if not records:
        raise InputError(f"run '{run_id}' has no records yet: resume it with `assistant eval --run {run_id}`")
    folder = out or config.runs_dir / run_id
    return write_report(run, records, folder, votes=store.votes(run.domain), sweep=run.meta.get("sweep"),
                        command=run.meta.get("command", command), usd_per_hour=config.evaluation.usd_per_hour)
