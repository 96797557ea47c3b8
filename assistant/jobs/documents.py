"""Document jobs: prepare what is missing, then index it; add a user's files to a domain.

What `assistant index build | update` and the app's Documents tab call (through the public API):

    from assistant import build, add_documents, load_config
    config = load_config()
    build("medical", config)                          # prepares missing or stale corpora, then syncs the index
    add_documents("finance", ["report.pdf"], config)  # copies into finance-uploads, prepares, syncs

The file types a user may add are the files loader's (`SUPPORTED`); the size limit is the config's
`ingest.max_upload_mb`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.atomic import atomic_write
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
from assistant.corpus.loaders.files import SUPPORTED
from assistant.errors import InputError, NotFoundError
from assistant.index import BuildReport, build_index, list_indexes


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


def files_to_add(paths: Iterable[str | Path], max_bytes: int) -> list[Path]:
    """The supported files in `paths` (folders are searched), each non-empty and at most `max_bytes`."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise InputError(f"no such file or folder: {path}")
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED))
        elif path.suffix.lower() not in SUPPORTED:
            raise InputError(f"{path.name}: unsupported file type (supported: {', '.join(SUPPORTED)})")
        else:
            found.append(path)
    if not found:
        raise InputError("no supported files to add (supported: " + ", ".join(SUPPORTED) + ")")
    for path in found:
        size = path.stat().st_size
        if size == 0:
            raise InputError(f"{path.name}: the file is empty")
        if size > max_bytes:
            raise InputError(f"{path.name}: {size / 1e6:.0f} MB is over the {max_bytes / 1e6:.0f} MB limit")
    return found


def max_upload_bytes(config: Config) -> int:
    return int(config.ingest.max_upload_mb * 1024 * 1024)


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
    files = files_to_add(paths, max_upload_bytes(config))
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
        # whole in memory (at most ingest.max_upload_mb): an index build never reads half a copied file
        atomic_write(dest, src.read_bytes())
    return build(domain, config, progress=progress, on_prepared=on_prepared)
