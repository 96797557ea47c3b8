"""An index in a real Chroma server (`chroma run` on a free loopback port): same code, selected by StoreConfig."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import Config, StoreConfig
from assistant.errors import AssistantError
from assistant.index import build_index, index_status, read_manifest, remove_index
from assistant.index.store import get_collection, open_client
from assistant.retrieval import Retriever
from tests.index.docs import all_docs


def _chroma_cli() -> str | None:
    beside = Path(sys.executable).with_name("chroma")
    return str(beside) if beside.is_file() else shutil.which("chroma")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[StoreConfig]:
    cli = _chroma_cli()
    if cli is None:
        pytest.skip("the chroma CLI is not installed")
    port = _free_port()
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen(
        [cli, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"chroma run did not start: {(tmp_path / 'chroma.log').read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.2)
        yield StoreConfig(host="127.0.0.1", port=port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_build_and_query_an_index_in_a_chroma_server(config: Config, chroma_server: StoreConfig) -> None:
    server = config.replace(store=chroma_server)
    report = build_index("t", server, documents=all_docs(), progress=False)
    assert report.n_chunks == len(all_docs())
    folder = server.indexes_dir / "t"
    assert not (folder / "chroma").exists()  # the vectors live in the server
    m = read_manifest("t", server)
    assert m["store"] == f"http://127.0.0.1:{chroma_server.port}"
    assert index_status("t", server).store == m["store"]

    with Retriever.open("t", server) as r:
        for mode in ("dense", "bm25", "hybrid"):
            hits = r.retrieve("total revenue airplane", mode=mode, filters={"company": "BOEING"})
            assert hits[0].doc_id == "fin:BOEING:1" and all(h.metadata["company"] == "BOEING" for h in hits)

    assert build_index("t", server, documents=all_docs()[:-1], progress=False).removed == 1
    remove_index("t", server)
    assert not folder.exists()
    client = open_client("t", server)
    try:
        assert get_collection(client, m["collection"]) is None
    finally:
        client.close()


def test_unreachable_server_is_a_one_line_error(config: Config) -> None:
    server = config.replace(store=StoreConfig(host="127.0.0.1", port=_free_port()))
    with pytest.raises(
        AssistantError, match=r"Chroma server at 127\.0\.0\.1:\d+ is not reachable: start it with `chroma run"
    ) as err:
        build_index("t", server, documents=all_docs(), progress=False)
    assert "\n" not in str(err.value)
