"""Chroma client and collections: on disk under `indexes/<name>/chroma`, or a Chroma server.

    from assistant.index.store import open_client, store_label
    client = open_client("medical", config)      # PersistentClient, or HttpClient when config.store.host is set
    col = get_collection(client, "medical-1a2b3c4d")

The same code runs against both: with `store: {host: 127.0.0.1, port: 8000}` in `assistant.yaml` an
index lives in a server started with `chroma run --path DIR --host 127.0.0.1 --port 8000`.
Collections use cosine space and no embedding function: the project always passes its own vectors
(Chroma's default embedder would try to download a model).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import Config
from assistant.errors import AssistantError, InputError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

# Chroma collection names: 3-512 characters of [a-zA-Z0-9._-], starting and ending with a letter or digit.
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,470}[A-Za-z0-9])?$")
PAGE = 5000  # rows per paged `get` and per `upsert` (below Chroma's max batch size)


class StoreUnavailableError(AssistantError):
    """The configured Chroma server cannot be reached."""


def check_index_name(name: str) -> str:
    """Index names become folder and collection names: letters, digits, '.', '_', '-'."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"index name '{name}' is not valid: use letters, digits, '.', '_' or '-' "
            "(starting and ending with a letter or digit)"
        )
    return name


def chroma_dir(name: str, config: Config) -> Path:
    return config.indexes_dir / name / "chroma"


def store_label(name: str, config: Config) -> str:
    """Where an index's vectors live: a folder path, or http(s)://host:port."""
    store = config.store
    if store.is_server:
        return f"{'https' if store.ssl else 'http'}://{store.host}:{store.port}"
    return str(chroma_dir(name, config))


def same_store(label: str | None, name: str, config: Config) -> bool:
    """Whether a manifest's store label names the configured store (on disk: wherever the home now is)."""
    if not label:
        return False
    if config.store.is_server:
        return label == store_label(name, config)
    return not label.startswith(("http://", "https://"))


def _unreachable(config: Config) -> StoreUnavailableError:
    s = config.store
    return StoreUnavailableError(
        f"Chroma server at {s.host}:{s.port} is not reachable: start it with "
        f"`chroma run --path DIR --host {s.host} --port {s.port}`, or remove `store.host` from assistant.yaml "
        "to keep indexes on disk"
    )


def close_client(client: ClientAPI) -> None:
    """Release the client's files or connections (chromadb >= 1.x; ClientAPI's type does not declare it)."""
    close = getattr(client, "close", None)
    if close is not None:
        close()


def open_client(name: str, config: Config, *, create: bool = True) -> ClientAPI:
    """A Chroma client for index `name`: persistent on disk, or HTTP to the configured server."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    store = config.store
    if store.is_server:
        try:
            client = chromadb.HttpClient(
                host=store.host or "", port=store.port, ssl=store.ssl, settings=settings
            )
            client.heartbeat()
        except Exception as exc:  # httpx.ConnectError, ValueError from a failed handshake, ...
            if isinstance(exc, AssistantError):
                raise
            raise _unreachable(config) from None
        return client
    path = chroma_dir(name, config)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def collection_names(client: ClientAPI) -> list[str]:
    return [c if isinstance(c, str) else c.name for c in client.list_collections()]


def get_collection(client: ClientAPI, collection: str) -> Collection | None:
    """The collection, or None when it does not exist."""
    if collection not in collection_names(client):
        return None
    return client.get_collection(collection, embedding_function=None)


def create_collection(client: ClientAPI, collection: str, *, fresh: bool = False) -> Collection:
    """Get or create a cosine-space collection; `fresh` drops an existing one first."""
    if fresh:
        delete_collection(client, collection)
    return client.get_or_create_collection(
        collection,
        configuration={"hnsw": {"space": "cosine"}},
        embedding_function=None,
    )


def delete_collection(client: ClientAPI, collection: str) -> bool:
    if collection not in collection_names(client):
        return False
    client.delete_collection(collection)
    return True


def iter_rows(collection: Collection, include: list[str], *, page: int = PAGE) -> Iterator[dict[str, Any]]:
    """Everything in a collection, page by page: dicts with `ids` and the included fields."""
    offset = 0
    while True:
        got = collection.get(include=include, limit=page, offset=offset)  # type: ignore[arg-type]
        n = len(got["ids"])
        if n == 0:
            return
        yield dict(got)
        if n < page:
            return
        offset += n
