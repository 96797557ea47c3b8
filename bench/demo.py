"""Time to the first answer after `make demo`, from a fresh clone, set-up included.

Clones this repository's HEAD into a temporary folder (its own data home: nothing prepared, indexed or
cached there, its own .venv), runs `make demo` there with the app on a free port, and measures from the
moment `make demo` starts:
  - app up:        the app accepts a client (gradio_client connects);
  - first answer:  a PubMedQA question asked through the app's /ask endpoint, as soon as /index_progress
                   says a medical corpus is ready, comes back with retrieved sources;
  - fully indexed: /index_progress says every corpus of every domain is ready (or failed).
Targets on the 2-core reference machine: first answer within 300 s, fully indexed within 720 s. Before
the background build, nothing could be asked until every corpus was indexed, so "fully indexed" is also
what the first answer used to cost: the ratio first answer / fully indexed is the gain, in the same run.

    .venv/bin/python bench/demo.py                 # ~12-15 min on 2 cores; prints the figures, writes JSON
    .venv/bin/python bench/demo.py --keep          # keep the clone (its log is demo.log inside it)

The shipped data is read from ASSISTANT_DATA (default: the data folder this checkout uses). pip's cache
is used as on any machine (downloads are not timed separately).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.config import data_root  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
QUESTION = "Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?"
TARGET_FIRST, TARGET_FULL = 300.0, 720.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=2400, help="give up after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone")
    args = parser.parse_args()
    from gradio_client import Client

    work = Path(tempfile.mkdtemp(prefix="assistant-demo-"))
    clone = work / "assistant"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True).stdout
    port = free_port()
    env = {**os.environ, "ASSISTANT_DATA": str(data_root())}
    env.pop("ASSISTANT_HOME", None)  # the clone is its own data home, as for a new user
    log = (clone / "demo.log").open("w")
    start = time.monotonic()
    proc = subprocess.Popen(["make", "demo", f"DEMO_ARGS=--port {port}"], cwd=clone, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    marks: dict[str, float] = {}
    answer: dict[str, object] = {}
    items: list[dict[str, object]] = []
    client = None
    try:
        while time.monotonic() - start < args.timeout:
            if proc.poll() is not None:
                raise SystemExit(f"make demo exited with {proc.returncode}: see {clone / 'demo.log'}")
            if client is None:
                try:
                    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                    marks["app_up"] = time.monotonic() - start
                    print(f"app up after {marks['app_up']:.0f} s", flush=True)
                except Exception:  # not listening yet
                    time.sleep(2)
                    continue
            items = client.predict(api_name="/index_progress")
            medical_ready = any(i["domain"] == "medical" and i["state"] == "ready" for i in items)
            if "first_answer" not in marks and medical_ready:
                asked = time.monotonic()
                # /ask's outputs: the question box, the chat, the sources, the notes, the evidence
                _, history, sources, notes, _ = client.predict(QUESTION, [], "medical", "auto", "(whole domain)",
                                                               api_name="/ask")
                if sources["data"]:
                    marks["first_answer"] = time.monotonic() - start
                    answer = {"seconds_asking": round(time.monotonic() - asked, 1), "sources": len(sources["data"]),
                              "text": str(history[-1]["content"])[:300], "notes": notes[:600]}
                    print(f"first answer after {marks['first_answer']:.0f} s ({answer['sources']} sources)", flush=True)
            if items and all(i["state"] in ("ready", "failed") for i in items):
                marks["fully_indexed"] = time.monotonic() - start
                print(f"fully indexed after {marks['fully_indexed']:.0f} s", flush=True)
                if "first_answer" in marks:
                    break
            time.sleep(2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
    result = {
        "commit": commit.strip(), "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "seconds": {k: round(v, 1) for k, v in marks.items()}, "answer": answer,
        "corpora": [{k: i[k] for k in ("domain", "corpus", "state", "seconds", "message")} for i in items],
        "targets": {"first_answer": TARGET_FIRST, "fully_indexed": TARGET_FULL},
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"demo-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nmake demo from a fresh clone of {result['commit']} ({result['machine']}):")
    for key, target in (("first_answer", TARGET_FIRST), ("fully_indexed", TARGET_FULL)):
        if key in marks:
            print(f"  {key.replace('_', ' ')}: {marks[key]:.0f} s ({marks[key] / target:.2f}x the {target:.0f} s target)")
        else:
            print(f"  {key.replace('_', ' ')}: not reached within {args.timeout:.0f} s")
    if "first_answer" in marks and "fully_indexed" in marks:
        print(f"  first answer / fully indexed (what the first answer cost before): "
              f"{marks['first_answer'] / marks['fully_indexed']:.2f}x")
    for i in items:
        print(f"  {i['domain']:8} {i['corpus']:10} {i['state']:7} {float(i['seconds']):6.0f} s  {i['message']}")
    print(f"written to {out}")
    if args.keep:
        print(f"clone kept at {clone}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
