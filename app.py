"""Gradio app over the public API: chat with cited sources, strategies side by side, a blind arena with Elo,
document upload and the latest evaluation report.

    python app.py                                     # http://127.0.0.1:7860
    python app.py --host 0.0.0.0 --auth-file users.txt   # reachable from other machines: a login is required
    assistant serve --port 7860
    assistant serve --build                           # prepare and index every domain behind the app (make demo)

Tabs: Chat (the answer streams in with [n] markers; sources, strategy and the router's reason, warnings,
latency), Compare (2-4 strategies on one question), Arena (two anonymous strategies, a vote stored in the
run store, an Elo leaderboard), Documents (PDF/txt/md/html into a domain's index), Results (the latest
evaluation run's report). The model and each domain's index load once per process; uploads are serialised
by a lock; votes go to the run store (sqlite WAL, thread-safe). Handlers turn errors into messages.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

import app_views as views  # beside this file (the checkout is on sys.path)
import assistant as api

log = logging.getLogger("assistant.app")
MAX_UPLOAD_MB = 50.0
SLOTS = 4  # Compare: at most four strategies side by side
VOTES = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both are bad"}


def _error(exc: BaseException) -> gr.Error:
    """A message for the page: ours as they are, anything else named without a traceback (logged)."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, api.AssistantError):
        return gr.Error(str(exc))
    log.exception("app handler failed")
    return gr.Error(f"Something went wrong ({type(exc).__name__}: {exc}); the server log has the details.")


def _messages(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise _error(exc) from None

    return wrapper


def _stream_messages(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            yield from fn(*args, **kwargs)
        except Exception as exc:
            raise _error(exc) from None

    return wrapper


def _question(text: str | None) -> str:
    if not (text or "").strip():
        raise gr.Error('the question is empty: type a question, e.g. "What is glaucoma?"')
    return str(text).strip()


class Service:
    """What every session shares: the config, one Assistant per domain, the run store, the upload lock."""

    def __init__(self, config: api.Config | None = None, *, max_upload_mb: float = MAX_UPLOAD_MB) -> None:
        self.config = config or api.load_config()
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self.store = api.RunStore.open(self.config)
        self._assistants: dict[str, api.Assistant] = {}
        self._train_qa: dict[str, bool] = {}
        self._lock = threading.Lock()
        self.upload_lock = threading.Lock()  # one index update at a time
        self.builder: api.BackgroundBuild | None = None

    def start_build(self, domains: list[str]) -> None:
        """Prepare and index `domains` in the background, corpus by corpus; each step is askable at once."""
        self.builder = api.BackgroundBuild(domains, self.config, on_step=self._indexed).start()

    def _indexed(self, domain: str) -> None:
        with self._lock:  # the next question reopens the grown index; the model stays loaded
            self._assistants.pop(domain, None)
        threading.Thread(target=self.warm_up, args=(domain,), name="warm-up", daemon=True).start()

    def build_progress(self) -> list[dict[str, Any]]:
        """Per domain and corpus: waiting, preparing, indexing (chunks done of total), ready or failed."""
        return [item.to_dict() for item in self.builder.progress()] if self.builder else []

    def build_view(self, domain: str) -> list[Any]:
        """The build banner and the domain's index panel; the timer stops once the build is over."""
        done = self.builder is None or self.builder.finished()
        items = self.builder.progress() if self.builder else []
        return [views.build_markdown(items, done), views.index_markdown(domain, self.status(domain)),
                gr.Timer(active=not done)]

    # ------------------------------------------------------------------ state
    def assistant(self, domain: str) -> api.Assistant:
        with self._lock:
            if domain not in self._assistants:
                self._assistants[domain] = api.Assistant.load(domain, config=self.config)
            return self._assistants[domain]

    def warm_up(self, domain: str) -> None:
        """Load the model and what the default strategy reads before the first question (best effort)."""
        start = time.perf_counter()
        try:
            self.assistant(domain).warm_up()
        except api.AssistantError as exc:
            log.warning("warm-up of '%s' failed (the first question will load it): %s", domain, exc)
            return
        log.info("'%s' is warm (model, index, router) after %.1f s", domain, time.perf_counter() - start)

    def status(self, domain: str) -> api.IndexStatus | None:
        try:
            return api.index_status(domain, self.config)
        except api.AssistantError:
            return None

    def _has_train_qa(self, domain: str) -> bool:
        """fewshot:K needs the domain's training questions; an uploads-only domain has none."""
        if domain not in self._train_qa:
            try:
                corpora = api.corpora_for(domain, self.config)
                self._train_qa[domain] = any(
                    api.is_prepared(c, self.config) and api.load_qa(c, self.config, "train") for c in corpora
                )
            except api.AssistantError:
                self._train_qa[domain] = False
        return self._train_qa[domain]

    def strategies(self, domain: str) -> list[str]:
        """The strategies that can answer in `domain` now: no RAG without an index, adapters that exist."""
        names = ["auto", "base", *(["fewshot:3"] if self._has_train_qa(domain) else []), "cot"]
        indexed = self.status(domain) is not None
        names += ["rag"] if indexed else []
        adapters = [a.name for a in api.list_adapters(self.config) if a.summary().get("domain") in (None, domain)]
        names += [f"adapter:{n}" for n in adapters]
        names += [f"rag+adapter:{n}" for n in adapters] if indexed else []
        return names

    def ask(self, domain: str, question: str, strategy: str, scope: str | None) -> api.Answer:
        return self.assistant(domain).ask(question, strategy=strategy, filters=views.scope_filters(scope))

    # ------------------------------------------------------------------ chat
    @_stream_messages
    def chat(self, question: str, history: list[Any] | None, domain: str, strategy: str, scope: str | None
             ) -> Iterator[tuple[str, list[Any], list[list[Any]], str]]:
        q = _question(question)
        before = list(history or [])
        turn = [*before, {"role": "user", "content": q}, {"role": "assistant", "content": ""}]
        yield "", turn, [], f"_Answering with `{strategy or 'auto'}`…_"
        stream = self.assistant(domain).ask_stream(q, strategy=strategy or None, filters=views.scope_filters(scope))
        try:
            for item in stream:
                if isinstance(item, str):
                    turn[-1]["content"] += item
                    yield "", turn, [], "_Writing…_"
                else:
                    turn[-1]["content"] = item.text or "_(no answer)_"
                    yield "", turn, views.source_rows(item, q), views.notes(item)
        except Exception as exc:
            error = _error(exc)
            yield question, before, [], f"⚠️ {error.message}"  # the question back in its box, the turn undone
            raise error from None

    # ------------------------------------------------------------------ compare
    @_stream_messages
    def compare(self, question: str, strategies: list[str] | None, domain: str, scope: str | None
                ) -> Iterator[list[Any]]:
        q = _question(question)
        chosen = list(dict.fromkeys(strategies or []))
        if not 2 <= len(chosen) <= SLOTS:
            raise gr.Error(f"choose two to four strategies to compare (got {len(chosen)})")
        cols: list[Any] = [gr.Column(visible=i < len(chosen)) for i in range(SLOTS)]
        texts: list[Any] = [f"### {s}\n\n_waiting…_" for s in chosen] + [""] * (SLOTS - len(chosen))
        tables: list[Any] = [[] for _ in range(SLOTS)]
        yield [*cols, *texts, *tables]
        for i, spec in enumerate(chosen):
            try:
                ans = self.ask(domain, q, spec, scope)
                texts[i] = f"### {spec}\n\n{ans.text or '_(no answer)_'}\n\n{views.notes(ans)}"
                tables[i] = views.source_rows(ans, q)
            except Exception as exc:  # one failing strategy does not hide the others
                texts[i] = f"### {spec}\n\n⚠️ {_error(exc).message}"
            yield [*cols, *texts, *tables]

    # ------------------------------------------------------------------ arena
    @_stream_messages
    def arena(self, question: str, domain: str, scope: str | None) -> Iterator[list[Any]]:
        q = _question(question)
        pool = [s for s in self.strategies(domain) if s != "auto"]
        if len(pool) < 2:
            raise gr.Error(f"the arena needs two strategies; '{domain}' has {', '.join(pool) or 'none'}")
        a, b = random.sample(pool, 2)
        state: dict[str, Any] = {"domain": domain, "question": q, "scope": scope, "strategies": [a, b],
                                 "answers": ["", ""], "latency": [0.0, 0.0], "voted": False}
        off = [gr.Button(interactive=False)] * len(VOTES)
        texts = ["_thinking…_", "_waiting…_"]
        yield [*texts, "", None, *off]
        for i, spec in enumerate((a, b)):
            start = time.perf_counter()
            try:
                texts[i] = self.ask(domain, q, spec, scope).text or "_(no answer)_"
            except Exception as exc:
                texts[i] = f"⚠️ this assistant failed: {_error(exc).message}"
            state["answers"][i], state["latency"][i] = texts[i], time.perf_counter() - start
            if i == 0:
                texts[1] = "_thinking…_"
            yield [*texts, "", None if i == 0 else state, *(off if i == 0 else [gr.Button(interactive=True)] * 4)]

    @_messages
    def vote(self, choice: str, state: dict[str, Any] | None) -> list[Any]:
        if not state or state.get("voted"):
            raise gr.Error("ask the arena a question first: each pair of answers takes one vote")
        (a, b), (la, lb) = state["strategies"], state["latency"]
        self.store.add_vote(api.Vote(
            time.time(), state["domain"], state["question"], a, b, choice,
            {"answer_a": state["answers"][0], "answer_b": state["answers"][1], "latency_a": la, "latency_b": lb,
             "scope": state.get("scope")},
        ))
        reveal = (f"You voted **{VOTES[choice]}**. A was **`{a}`** ({la:.1f} s), B was **`{b}`** ({lb:.1f} s). "
                  "Ask another question for a new pair.")
        off = [gr.Button(interactive=False)] * len(VOTES)
        return [reveal, self.leaderboard(state["domain"]), {**state, "voted": True}, *off]

    def leaderboard(self, domain: str) -> list[list[Any]]:
        run = self.store.latest_run(domain)
        records = self.store.records(run.run_id) if run else []
        return [[r.name, round(r.rating), r.games, r.wins, r.ties, r.losses]
                for r in api.elo_table(records, self.store.votes(domain))]

    # ------------------------------------------------------------------ documents
    @_messages
    def upload(self, files: list[str] | None, domain: str, progress: gr.Progress = gr.Progress(track_tqdm=True)  # noqa: B008
               ) -> list[Any]:
        paths = [Path(f) for f in (files or [])]
        if not paths:
            raise gr.Error("choose one or more files first (PDF, txt, md or html)")
        problems = [p for p in (views.check_upload(path, self.max_upload_bytes) for path in paths) if p]
        if problems:
            gr.Warning("Nothing was added: " + "; ".join(problems))
            return [views.refused(problems), views.index_markdown(domain, self.status(domain)), gr.skip(), gr.skip()]
        progress(0.0, desc="Waiting for other uploads")
        with self.upload_lock:  # concurrent index updates would race on the manifest and BM25 files
            before = self.status(domain)
            progress(0.05, desc="Reading and indexing")
            api.add_documents(domain, paths, self.config, progress=True)
            with self._lock:  # the next question reopens the updated index; the model stays loaded
                self._assistants.pop(domain, None)
            after = self.status(domain)
        gr.Info(f"Added {len(paths)} file(s) to {domain}")
        return [views.added(paths, before, after), views.index_markdown(domain, after), None,
                gr.Dropdown(choices=views.scopes(after), value=views.WHOLE)]

    # ------------------------------------------------------------------ results
    @_messages
    def results(self, domain: str) -> tuple[str, Any]:
        run = self.store.latest_run(domain)
        if run is None:
            return views.no_results(domain), gr.Gallery(value=None, visible=False)
        report = self.config.runs_dir / run.run_id / "report.md"
        if not report.is_file() or run.status != "done":  # a run still going gets a fresh report
            report = Path(api.report_run(run.run_id, self.config))
        text, charts = views.report_view(report)
        return text, gr.Gallery(value=charts or None, visible=bool(charts))

    @_messages
    def on_domain(self, domain: str, strategy: str | None, scope: str | None, compared: list[str] | None
                  ) -> list[Any]:
        """Everything that depends on the chosen domain, for the page load and a change of domain; choices
        still valid in the domain are kept (a page load must not undo what the user picked meanwhile)."""
        status, names = self.status(domain), self.strategies(domain)
        scope_choices, compared = views.scopes(status), [s for s in compared or [] if s in names]
        try:
            results = self.results(domain)
        except gr.Error as exc:  # a report that cannot be written must not break the page
            results = (f"⚠️ {exc.message}", gr.Gallery(value=None, visible=False))
        return [gr.Dropdown(choices=scope_choices, value=scope if scope in scope_choices else views.WHOLE),
                gr.Dropdown(choices=names, value=strategy if strategy in names else "auto"),
                gr.Dropdown(choices=[n for n in names if n != "auto"],
                            value=compared if len(compared) >= 2 else [n for n in ("base", "rag") if n in names]),
                views.index_markdown(domain, status), self.leaderboard(domain), *results]


def build_ui(config: api.Config | None = None, *, max_upload_mb: float = MAX_UPLOAD_MB, warm_up: bool = False,
             build: bool = False) -> gr.Blocks:
    """The app. warm_up: load the model and the first domain's index and router in the background now.
    build: prepare and index every domain's corpora in the background (what is built answers at once)."""
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
    private = {"api_visibility": "private"}
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
                chatbot = gr.Chatbot(label="Answers", elem_id="chat", height=360)
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
                files = gr.File(label=f"PDF, txt, md or html files, at most {max_upload_mb:g} MB each", elem_id="files",
                                file_count="multiple")
                upload_btn = gr.Button("Add to the domain's index", variant="primary")
                upload_status = gr.Markdown(elem_id="upload-status")
                index_info = gr.Markdown(views.index_markdown(first, status), elem_id="index-status")
            with gr.Tab("Results"):
                results_md = gr.Markdown(elem_id="results")
                charts = gr.Gallery(label="Charts", columns=2, format="png", object_fit="contain", height=560,
                                    visible=False, elem_id="charts")
                refresh = gr.Button("Refresh")

        gr.on([ask_btn.click, question.submit], svc.chat, [question, chatbot, domain, strategy, scope],
              [question, chatbot, sources, notes_md], api_name="ask")
        clear.click(lambda: ([], [], ""), None, [chatbot, sources, notes_md], **private)
        gr.on([cmp_btn.click, cmp_question.submit], svc.compare, [cmp_question, cmp_strategies, domain, scope],
              [*cols, *texts, *tables], api_name="compare")
        gr.on([arena_btn.click, arena_question.submit], svc.arena, [arena_question, domain, scope],
              [answer_a, answer_b, reveal, arena_state, *buttons.values()], api_name="arena")
        for key, btn in buttons.items():
            btn.click(functools.partial(svc.vote, key), [arena_state], [reveal, board, arena_state, *buttons.values()],
                      api_name=f"vote_{key.lower()}")
        board_btn.click(_messages(svc.leaderboard), [domain], [board], api_name="leaderboard")
        upload_btn.click(svc.upload, [files, domain], [upload_status, index_info, files, scope], api_name="upload")
        refresh.click(svc.results, [domain], [results_md, charts], api_name="results")
        per_domain = [scope, strategy, cmp_strategies, index_info, board, results_md, charts]
        timer.tick(svc.build_view, [domain], [build_md, index_info, timer], **private)
        gr.api(svc.build_progress, api_name="index_progress")
        domain.change(svc.on_domain, [domain, strategy, scope, cmp_strategies], per_domain, **private)
        demo.load(svc.on_domain, [domain, strategy, scope, cmp_strategies], per_domain, **private)
    return demo


def _auth(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[tuple[str, str]] | None:
    """Users from --auth USER:PASSWORD and --auth-file (one user:password a line, # comments)."""
    lines = [args.auth] if args.auth else []
    if args.auth_file:
        try:
            lines += Path(args.auth_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            parser.error(f"--auth-file {args.auth_file}: {exc.strerror or exc}")
    users = []
    for line in (s.strip() for s in lines):
        if line and not line.startswith("#"):
            user, sep, password = line.partition(":")
            if not (sep and user and password):
                parser.error("--auth / --auth-file take user:password (both non-empty)")
            users.append((user, password))
    if args.auth_file and not users:
        parser.error(f"--auth-file {args.auth_file} names no user (one user:password a line)")
    return users or None


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="a public gradio.live link (needs --auth)")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="require this login")
    parser.add_argument("--auth-file", default=os.environ.get("ASSISTANT_AUTH_FILE"),
                        help="require a login from this file, one user:password a line ($ASSISTANT_AUTH_FILE)")
    parser.add_argument("--max-upload-mb", type=float, default=MAX_UPLOAD_MB, help="largest file to upload")
    parser.add_argument("--build", action="store_true",
                        help="prepare and index every domain's corpora in the background, smallest first; "
                             "the app answers from what is ready and shows the progress")
    args = parser.parse_args(argv)
    auth = _auth(args, parser)
    if (args.share or not _loopback(args.host)) and not auth:
        where = "--share" if args.share else f"--host {args.host}"
        parser.error(f"{where} makes the app reachable from other machines: add --auth USER:PASSWORD or "
                     "--auth-file FILE (one user:password a line; or set ASSISTANT_AUTH_FILE) to require a login")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    build_ui(max_upload_mb=args.max_upload_mb, warm_up=True, build=args.build).queue().launch(
        server_name=args.host, server_port=args.port, share=args.share, auth=auth,
        max_file_size=int(args.max_upload_mb * 1024 * 1024),
    )


if __name__ == "__main__":
    main()
