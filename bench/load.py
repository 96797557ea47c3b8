"""Concurrent users through the app: latency of 20 questions asked at once against one asked alone.

PubMedQA prepared and its 1,000 abstracts indexed (default ONNX MiniLM) in a temporary data home, then the
app (`assistant serve`, the default engine) started on a free port, and questions asked through its `/ask`
endpoint with gradio_client, as the app's chat asks them (domain medical, strategy auto):
  - alone: --single questions one after another (after a warm-up question): their p50;
  - together: --users questions (other PubMedQA test questions) sent at the same moment from as many
    threads: errors, p50 and p95 of each one's latency, and p95 / the single-user p50.
Also the app process's peak resident memory (VmHWM) after the questions asked alone and at the end.
Targets (issue 13): no errors, p95 at most 4x the single-user latency, and under 1.2 GB resident serving
one domain.

    .venv/bin/python bench/load.py                  # ~10-20 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from answer import pubmedqa_home  # noqa: E402  (bench/answer.py, beside this script)

from assistant.config import ENV_HOME  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ask(url: str, question: str) -> tuple[float, str | None]:
    from gradio_client import Client

    start = time.perf_counter()
    try:
        client = Client(url, verbose=False)
        history = client.predict(question, [], "medical", "auto", "(whole domain)", api_name="/ask")[1]  # the chat
        ok = bool(history) and str(history[-1]["content"]).strip()
        return time.perf_counter() - start, None if ok else "empty answer"
    except Exception as exc:  # counted, not raised: the point is how many fail
        return time.perf_counter() - start, f"{type(exc).__name__}: {exc}"[:200]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    # the single-user p50 is the ratio's baseline: PubMedQA questions alone take 1.4-4.8 s here, so the
    # median of 3 moved by ~1.5x between samples; of 8 it is steadier
    parser.add_argument("--single", type=int, default=8)
    parser.add_argument("--json", type=Path, default=RESULTS / "load.json")
    args = parser.parse_args()
    home, _, questions = pubmedqa_home("bench-load-", 1 + args.single + args.users, 1)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    app = subprocess.Popen([str(Path(sys.executable).parent / "assistant"), "serve", "--port", str(port)], cwd=ROOT,
                           env={**os.environ, ENV_HOME: str(home)}, stdout=subprocess.DEVNULL,
                           stderr=(home / "app.log").open("w"))
    try:
        deadline = time.monotonic() + 300
        while ask(url, questions[0])[1] is not None:  # up, and the warm-up answer (loads the engines)
            if app.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the app did not answer: see {home / 'app.log'}")
            time.sleep(3)
        alone = [ask(url, q) for q in questions[1 : 1 + args.single]]
        single = statistics.median(t for t, _ in alone)
        rss_alone = peak_rss_mb(app.pid)
        with ThreadPoolExecutor(args.users) as pool:
            together = list(pool.map(lambda q: ask(url, q), questions[1 + args.single :]))
        rss = peak_rss_mb(app.pid)
    finally:
        app.terminate()
        app.wait(timeout=60)
    times = sorted(t for t, _ in together)
    errors = [e for _, e in together if e]
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"app on {os.cpu_count()} cores, PubMedQA (1,000 abstracts), strategy auto, default engine")
    print(f"alone: p50 {single:.1f} s over {args.single} questions ({[round(t, 1) for t, _ in alone]})")
    print(f"{args.users} at once: errors {len(errors)}, p50 {statistics.median(times):.1f} s, p95 {p95:.1f} s "
          f"= {p95 / single:.1f}x the single-user p50 (target <= 4x)")
    print(f"app peak resident memory: {rss_alone:.0f} MB after the questions asked alone, {rss:.0f} MB after "
          f"{args.users} at once (target < 1,200 MB)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"single_p50_s": single, "together_s": times, "errors": errors,
                                     "p95_over_single": p95 / single, "peak_rss_alone_mb": rss_alone,
                                     "peak_rss_mb": rss}, indent=2))


if __name__ == "__main__":
    main()
