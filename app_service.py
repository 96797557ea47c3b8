"""The app's service: what each Gradio handler does, over the public API (assistant.Assistant and friends),
with errors turned into messages. `app.py` builds the UI on it and launches it.

    from app_service import Service
    svc = Service()                          # the config of the data home
    svc.ask("medical", "What is glaucoma?", "auto", None).text
"""

from __future__ import annotations

import dataclasses
import functools
import logging
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
SLOTS = 4  # Compare: at most four strategies side by side
VOTES = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both are bad"}
# The chat shows the reply as it is written, redrawn at most this often: every redraw sends the whole
# conversation through gradio, and one per token cost ~0.3-0.5 s per answer on 2 cores (more under load).
REDRAW_S = 0.1


def gradio_error(exc: BaseException) -> gr.Error:
    """A message for the page: ours as they are, anything else named without a traceback (logged)."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, api.AssistantError):
        return gr.Error(str(exc))
    log.exception("app handler failed")
    return gr.Error(f"Something went wrong ({type(exc).__name__}: {exc}); the server log has the details.")


def messages(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise gradio_error(exc) from None

    return wrapper


def stream_messages(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            yield from fn(*args, **kwargs)
        except Exception as exc:
            raise gradio_error(exc) from None

    return wrapper


def question_text(text: str | None) -> str:
    """The question stripped, or the API's own empty-question message as a gr.Error."""
    try:
        return api.check_question(text or "")
    except api.InputError as exc:
        raise gr.Error(str(exc)) from None


class Service:
    """What every session shares: the config, one Assistant per domain, the run store, the upload lock."""

    def __init__(self, config: api.Config | None = None, *, max_upload_mb: float | None = None) -> None:
        config = config or api.load_config()
        if max_upload_mb is not None:  # --max-upload-mb: the limit of the app's checks and of indexing alike
            config = config.replace(ingest=dataclasses.replace(config.ingest, max_upload_mb=max_upload_mb))
        self.config = config
        self.max_upload_mb = config.ingest.max_upload_mb
        self.max_upload_bytes = int(self.max_upload_mb * 1024 * 1024)
        self.store = api.RunStore.open(self.config)
        self._assistants: dict[str, api.Assistant] = {}
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

    def build_view(self, domain: str, strategy: str | None, scope: str | None, compared: list[str] | None
                   ) -> list[Any]:
        """The build banner, the domain's index panel and the menus that grow with the index (scopes, and
        rag once there is an index); the timer stops once the build is over."""
        done = self.builder is None or self.builder.finished()
        items = self.builder.progress() if self.builder else []
        status = self.status(domain)
        return [views.build_markdown(items, done), views.index_markdown(domain, status), gr.Timer(active=not done),
                *self._menus(domain, status, strategy, scope, compared)]

    def _menus(self, domain: str, status: api.IndexStatus | None, strategy: str | None, scope: str | None,
               compared: list[str] | None) -> list[Any]:
        """Scope, strategy and compared-strategies dropdowns for `domain`, keeping the choices still valid."""
        names = self.strategies(domain)
        scope_choices, compared = views.scopes(status), [s for s in compared or [] if s in names]
        return [gr.Dropdown(choices=scope_choices, value=scope if scope in scope_choices else views.WHOLE),
                gr.Dropdown(choices=names, value=strategy if strategy in names else "auto"),
                gr.Dropdown(choices=[n for n in names if n != "auto"], multiselect=True,
                            value=compared if len(compared) >= 2 else [n for n in ("base", "rag") if n in names])]

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

    def strategies(self, domain: str) -> list[str]:
        """The strategies that can answer in `domain` now ("auto" first): the Assistant's own list."""
        return self.assistant(domain).available_strategies()

    def ask(self, domain: str, question: str, strategy: str, scope: str | None) -> api.Answer:
        return self.assistant(domain).ask(question, strategy=strategy, filters=views.scope_filters(scope),
                                          scope=views.auto_scope(scope))

    # ------------------------------------------------------------------ chat
    @stream_messages
    def chat(self, question: str, history: list[Any] | None, domain: str, strategy: str, scope: str | None
             ) -> Iterator[tuple[str, list[Any], list[list[Any]], str, str]]:
        """The question box, the conversation, the source rows, the notes and the evidence panel."""
        q = question_text(question)
        before = list(history or [])
        turn = [*before, {"role": "user", "content": q}, {"role": "assistant", "content": ""}]
        yield "", turn, [], f"_Answering with `{strategy or 'auto'}`…_", ""
        stream = self.assistant(domain).ask_stream(q, strategy=strategy or None, filters=views.scope_filters(scope),
                                                   scope=views.auto_scope(scope))
        drawn = time.monotonic()
        try:
            for item in stream:
                if isinstance(item, str):
                    turn[-1]["content"] += item
                    if time.monotonic() - drawn >= REDRAW_S:
                        drawn = time.monotonic()
                        yield "", turn, [], "_Writing…_", ""
                else:  # the finished answer: escaped, its unsupported numbers marked
                    turn[-1]["content"] = views.answer_html(item) if item.text else "_(no answer)_"
                    yield "", turn, views.source_rows(item, q), views.notes(item), views.evidence_markdown(item)
        except Exception as exc:
            error = gradio_error(exc)
            yield question, before, [], f"⚠️ {error.message}", ""  # the question back in its box, the turn undone
            raise error from None

    # ------------------------------------------------------------------ compare
    @stream_messages
    def compare(self, question: str, strategies: list[str] | None, domain: str, scope: str | None
                ) -> Iterator[list[Any]]:
        q = question_text(question)
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
                evidence = views.evidence_markdown(ans).replace("### Evidence", "#### Evidence")
                texts[i] = (f"### {spec}\n\n{views.answer_html(ans) if ans.text else '_(no answer)_'}\n\n"
                            f"{evidence}\n\n{views.notes(ans)}")
                tables[i] = views.source_rows(ans, q)
            except Exception as exc:  # one failing strategy does not hide the others
                texts[i] = f"### {spec}\n\n⚠️ {gradio_error(exc).message}"
            yield [*cols, *texts, *tables]

    # ------------------------------------------------------------------ arena
    @stream_messages
    def arena(self, question: str, domain: str, scope: str | None) -> Iterator[list[Any]]:
        q = question_text(question)
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
                texts[i] = f"⚠️ this assistant failed: {gradio_error(exc).message}"
            state["answers"][i], state["latency"][i] = texts[i], time.perf_counter() - start
            if i == 0:
                texts[1] = "_thinking…_"
            yield [*texts, "", None if i == 0 else state, *(off if i == 0 else [gr.Button(interactive=True)] * 4)]

    @messages
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
    @messages
    def upload(self, files: list[str] | None, domain: str, progress: gr.Progress = gr.Progress(track_tqdm=True)  # noqa: B008
               ) -> list[Any]:
        paths = [Path(f) for f in (files or [])]
        if not paths:
            raise gr.Error(f"choose one or more files first ({api.SUPPORTED_LABEL})")
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
    @messages
    def results(self, domain: str) -> tuple[str, Any]:
        run = self.store.latest_run(domain)
        if run is None:
            return views.no_results(domain), gr.Gallery(value=None, visible=False)
        report = self.config.runs_dir / run.run_id / "report.md"
        if not report.is_file() or run.status != "done":  # a run still going gets a fresh report
            report = Path(api.report_run(run.run_id, self.config))
        text, charts = views.report_view(report)
        return text, gr.Gallery(value=charts or None, visible=bool(charts))

    @messages
    def on_domain(self, domain: str, strategy: str | None, scope: str | None, compared: list[str] | None
                  ) -> list[Any]:
        """Everything that depends on the chosen domain, for the page load and a change of domain; choices
        still valid in the domain are kept (a page load must not undo what the user picked meanwhile)."""
        status = self.status(domain)
        try:
            results = self.results(domain)
        except gr.Error as exc:  # a report that cannot be written must not break the page
            results = (f"⚠️ {exc.message}", gr.Gallery(value=None, visible=False))
        return [*self._menus(domain, status, strategy, scope, compared), views.index_markdown(domain, status),
                self.leaderboard(domain), *results]
