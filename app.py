"""Gradio app over the public API: chat with cited sources, strategies side by side, a blind arena with Elo,
document upload and the latest evaluation report.

    python app.py                                     # http://127.0.0.1:7860
    python app.py --host 0.0.0.0 --auth-file users.txt   # reachable from other machines: a login is required
    assistant serve --port 7860                       # the same app: `serve` calls launch() below
    assistant serve --build                           # prepare and index every domain behind the app (make demo)

    import app; app.launch(port=7860, build=True)      # from Python (the checkout is on sys.path)

Tabs: Chat (the answer streams in with [n] markers; beside it the evidence: the quote of each cited source,
highlighted, also marked in the source's snippet; numbers no source shows are marked in the answer; sources,
strategy and the router's reason, warnings, latency), Compare (2-4 strategies on one question), Arena (two anonymous strategies, a vote stored in the
run store, an Elo leaderboard), Documents (PDF/txt/md/html into a domain's index, files up to the
config's ingest.max_upload_mb), Results (the latest evaluation run's report). The model and each domain's index load once per process; uploads are serialised
by a lock; votes go to the run store (sqlite WAL, thread-safe). Handlers turn errors into messages.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import logging
import os
import threading
from pathlib import Path
from typing import Any

import gradio as gr

import app_views as views  # beside this file (the checkout is on sys.path)
import assistant as api
from app_service import SLOTS, VOTES, Service, messages

log = logging.getLogger("assistant.app")
AUTH_FILE_ENV = "ASSISTANT_AUTH_FILE"  # where --auth-file comes from when it is not given


def build_ui(config: api.Config | None = None, *, max_upload_mb: float | None = None, warm_up: bool = False,
             build: bool = False) -> gr.Blocks:
    """The app. max_upload_mb: the largest file the Documents tab takes (default: the config's
    ingest.max_upload_mb). warm_up: load the model and the first domain's index and router in the
    background now. build: prepare and index every domain's corpora in the background (what is built
    answers at once)."""
    svc = Service(config, max_upload_mb=max_upload_mb)
    domains = list(svc.config.domains)
    first = domains[0] if build else next((d for d in domains if svc.status(d)), domains[0])
    if build or warm_up:
        api.import_transformers()  # here, before the threads below would both import it first
    if build:
        svc.start_build(domains)
    if warm_up:
        threading.Thread(target=svc.warm_up, args=(first,), name="warm-up", daemon=True).start()
    status, names = svc.status(first), svc.strategies(first)
    private: Any = {"api_visibility": "private"}  # keyword arguments of the internal event handlers
    with gr.Blocks(title="RAG or finetune? — domain assistant") as demo:
        gr.Markdown("# Domain assistant\nAsk medical or financial questions; answers cite the retrieved "
                    "sources as [1], [2]. Compare strategies, judge them blind, add documents, see results.")
        build_md = gr.Markdown(views.build_markdown(svc.builder.progress() if svc.builder else [], not build),
                               elem_id="build-status")
        timer = gr.Timer(2.0, active=build)
        with gr.Row():
            domain = gr.Dropdown(domains, value=first, label="Domain", elem_id="domain")
            # custom values: an API client may name a scope or strategy of another domain than the first
            scope = gr.Dropdown(views.scopes(status), value=views.WHOLE, label="Scope (document or company)",
                                allow_custom_value=True, elem_id="scope")
        with gr.Tabs():
            with gr.Tab("Chat"):
                with gr.Row():
                    strategy = gr.Dropdown(names, value="auto", label="Strategy (auto: the router picks)",
                                           allow_custom_value=True, elem_id="strategy", scale=1)
                    question = gr.Textbox(label="Question", lines=2, elem_id="question", scale=4,
                                          placeholder="e.g. What was total revenue in 2022?")
                with gr.Row():
                    ask_btn = gr.Button("Ask", variant="primary", elem_id="ask")
                    clear = gr.Button("Clear conversation")
                with gr.Row():
                    chatbot = gr.Chatbot(label="Answers", elem_id="chat", height=360, scale=3)
                    # the quotes of the cited sources that support the answer, and its unsupported numbers
                    evidence = gr.Markdown(elem_id="evidence", container=True, height=360, scale=2)
                notes_md = gr.Markdown(elem_id="notes")
                sources = gr.Dataframe(headers=views.SOURCE_HEADERS, datatype=views.SOURCE_TYPES, label="Sources",
                                       wrap=True, interactive=False, elem_id="sources")
            with gr.Tab("Compare"):
                cmp_strategies = gr.Dropdown([n for n in names if n != "auto"],
                                             value=[n for n in ("base", "rag") if n in names], multiselect=True,
                                             allow_custom_value=True, label="Strategies (two to four)")
                cmp_question = gr.Textbox(label="Question", lines=2, elem_id="cmp-question")
                cmp_btn = gr.Button("Compare", variant="primary")
                cols, texts, tables = [], [], []
                with gr.Row():
                    for i in range(SLOTS):
                        with gr.Column(visible=False) as col:
                            texts.append(gr.Markdown(elem_id=f"cmp-answer-{i}"))
                            tables.append(gr.Dataframe(headers=views.SOURCE_HEADERS, datatype=views.SOURCE_TYPES,
                                                       label="Sources", wrap=True, interactive=False))
                        cols.append(col)
            with gr.Tab("Arena"):
                gr.Markdown("Two anonymous strategies answer; vote for the better answer, then see which was which.")
                arena_question = gr.Textbox(label="Question", lines=2, elem_id="arena-question")
                arena_btn = gr.Button("Ask both", variant="primary")
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("### Assistant A")
                        answer_a = gr.Markdown(elem_id="arena-a", container=True)
                    with gr.Column():
                        gr.Markdown("### Assistant B")
                        answer_b = gr.Markdown(elem_id="arena-b", container=True)
                with gr.Row():
                    buttons = {k: gr.Button(label, interactive=False) for k, label in VOTES.items()}
                reveal = gr.Markdown(elem_id="arena-reveal")
                arena_state = gr.State(None)
                board = gr.Dataframe(headers=["strategy", "Elo", "games", "wins", "ties", "losses"],
                                     label="Leaderboard (games from the latest evaluation run, and votes)",
                                     interactive=False, value=svc.leaderboard(first))
                board_btn = gr.Button("Refresh the leaderboard", size="sm")
            with gr.Tab("Documents"):
                files = gr.File(label=f"{api.SUPPORTED_LABEL} files, at most {svc.max_upload_mb:g} MB each",
                                elem_id="files", file_count="multiple")
                upload_btn = gr.Button("Add to the domain's index", variant="primary")
                upload_status = gr.Markdown(elem_id="upload-status")
                index_info = gr.Markdown(views.index_markdown(first, status), elem_id="index-status")
            with gr.Tab("Results"):
                results_md = gr.Markdown(elem_id="results")
                charts = gr.Gallery(label="Charts", columns=2, format="png", object_fit="contain", height=560,
                                    visible=False, elem_id="charts")
                refresh = gr.Button("Refresh")

        gr.on([ask_btn.click, question.submit], svc.chat, [question, chatbot, domain, strategy, scope],
              [question, chatbot, sources, notes_md, evidence], api_name="ask")
        clear.click(lambda: ([], [], "", ""), None, [chatbot, sources, notes_md, evidence], **private)
        gr.on([cmp_btn.click, cmp_question.submit], svc.compare, [cmp_question, cmp_strategies, domain, scope],
              [*cols, *texts, *tables], api_name="compare")
        gr.on([arena_btn.click, arena_question.submit], svc.arena, [arena_question, domain, scope],
              [answer_a, answer_b, reveal, arena_state, *buttons.values()], api_name="arena")
        for key, btn in buttons.items():
            btn.click(functools.partial(svc.vote, key), [arena_state], [reveal, board, arena_state, *buttons.values()],
                      api_name=f"vote_{key.lower()}")
        board_btn.click(messages(svc.leaderboard), [domain], [board], api_name="leaderboard")
        upload_btn.click(svc.upload, [files, domain], [upload_status, index_info, files, scope], api_name="upload")
        refresh.click(svc.results, [domain], [results_md, charts], api_name="results")
        per_domain = [scope, strategy, cmp_strategies, index_info, board, results_md, charts]
        timer.tick(svc.build_view, [domain, strategy, scope, cmp_strategies],
                   [build_md, index_info, timer, scope, strategy, cmp_strategies], **private)
        gr.api(svc.build_progress, api_name="index_progress")
        domain.change(svc.on_domain, [domain, strategy, scope, cmp_strategies], per_domain, **private)
        demo.load(svc.on_domain, [domain, strategy, scope, cmp_strategies], per_domain, **private)
    return demo


def read_logins(auth: str | None = None, auth_file: str | Path | None = None) -> list[tuple[str, str]] | None:
    """Users from `auth` (USER:PASSWORD) and `auth_file` (one user:password a line, # comments); None if none."""
    lines = [auth] if auth else []
    if auth_file:
        try:
            lines += Path(auth_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise api.InputError(f"--auth-file {auth_file}: {exc.strerror or exc}") from None
    users = []
    for line in (s.strip() for s in lines):
        if line and not line.startswith("#"):
            user, sep, password = line.partition(":")
            if not (sep and user and password):
                raise api.InputError("--auth / --auth-file take user:password (both non-empty)")
            users.append((user, password))
    if auth_file and not users:
        raise api.InputError(f"--auth-file {auth_file} names no user (one user:password a line)")
    return users or None


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_login(host: str, share: bool, auth: list[tuple[str, str]] | None) -> None:
    """Refuse to serve other machines (a public host or --share) without a login."""
    if (share or not _loopback(host)) and not auth:
        where = "--share" if share else f"--host {host}"
        raise api.InputError(f"{where} makes the app reachable from other machines: add --auth USER:PASSWORD or "
                             f"--auth-file FILE (one user:password a line; or set {AUTH_FILE_ENV}) to require a login")


def launch(
    config: api.Config | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    auth: list[tuple[str, str]] | None = None,
    max_upload_mb: float | None = None,
    build: bool = False,
) -> None:
    """Serve the app until interrupted (what `python app.py` and `assistant serve` run): the model and the
    first domain warm up at once; `build` indexes every domain behind it. `auth`: see read_logins."""
    require_login(host, share, auth)
    config = config or api.load_config()
    limit = config.ingest.max_upload_mb if max_upload_mb is None else max_upload_mb
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # questions waiting at the same moment are decoded together (generation.max_batch): let that many in,
    # and as many again that are retrieving their sources meanwhile
    concurrent = 2 * config.generation.max_batch
    build_ui(config, max_upload_mb=limit, warm_up=True, build=build).queue(default_concurrency_limit=concurrent).launch(
        server_name=host, server_port=port, share=share, auth=auth, max_file_size=int(limit * 1024 * 1024),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="a public gradio.live link (needs --auth)")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="require this login")
    parser.add_argument("--auth-file", default=os.environ.get(AUTH_FILE_ENV),
                        help=f"require a login from this file, one user:password a line (${AUTH_FILE_ENV})")
    parser.add_argument("--max-upload-mb", type=float, default=None,
                        help="largest file to upload (default: the config's ingest.max_upload_mb)")
    parser.add_argument("--build", action="store_true",
                        help="prepare and index every domain's corpora in the background, smallest first; "
                             "the app answers from what is ready and shows the progress")
    args = parser.parse_args(argv)
    try:  # a bad login option is a usage error, reported the argparse way
        auth = read_logins(args.auth, args.auth_file)
        require_login(args.host, args.share, auth)
    except api.InputError as exc:
        parser.error(str(exc))
    launch(host=args.host, port=args.port, share=args.share, auth=auth, max_upload_mb=args.max_upload_mb,
           build=args.build)


if __name__ == "__main__":
    main()
