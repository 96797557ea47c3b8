"""Gradio app over the public API: ask a domain, see the answer with its sources.

    python app.py                       # http://127.0.0.1:7860
    assistant serve --port 7860

This is the minimal page of the foundation; comparison, arena, uploads and results arrive with the app issue.
The model and each domain's index load once per process, on first use.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

import gradio as gr

import assistant as api

_assistants: dict[str, api.Assistant] = {}
_lock = threading.Lock()


def get_assistant(domain: str) -> api.Assistant:
    with _lock:
        if domain not in _assistants:
            _assistants[domain] = api.Assistant.load(domain)
        return _assistants[domain]


def scopes(domain: str) -> list[str]:
    """"corpus: X", "company: Y" and "document: Z" choices for scoping retrieval, from the index's facets."""
    try:
        facets = api.index_status(domain, api.load_config()).facets or {}
    except api.AssistantError:
        return ["(whole domain)"]
    choices = ["(whole domain)"]
    for key in ("corpus", "company", "document"):
        choices += [f"{key}: {v}" for v in facets.get(key, [])]
    return choices


def answer(question: str, domain: str, strategy: str, scope: str) -> tuple[str, list[list[Any]], str]:
    filters = None
    if scope and ": " in scope:
        key, value = scope.split(": ", 1)
        filters = {key: value}
    try:
        ans = get_assistant(domain).ask(question, strategy=strategy, filters=filters)
    except api.AssistantError as exc:
        raise gr.Error(str(exc)) from None
    rows = [
        [i, s.title, s.doc_id, s.locator, round(s.score, 4), None if s.similarity is None else round(s.similarity, 3),
         s.snippet[:400]]
        for i, s in enumerate(ans.sources, 1)
    ]
    notes = [f"**{ans.reason}** · model `{ans.model}` · " + " · ".join(f"{k} {v:.2f}s" for k, v in ans.timings.items())]
    notes += [f"⚠️ {w}" for w in ans.warnings]
    return ans.text, rows, "\n\n".join(notes)


def build_ui() -> gr.Blocks:
    config = api.load_config()
    domains = list(config.domains)
    with gr.Blocks(title="RAG or finetune? — domain assistant") as demo:
        gr.Markdown("# Domain assistant\nAsk a medical or financial question; answers cite the retrieved sources as [1], [2].")
        with gr.Row():
            domain = gr.Dropdown(domains, value=domains[0], label="Domain")
            strategy = gr.Radio(list(api.Assistant.strategies()), value=config.default_strategy, label="Strategy")
            # custom values: the API may name a scope of another domain's index than the one shown first
            scope = gr.Dropdown(scopes(domains[0]), value="(whole domain)", label="Scope", allow_custom_value=True)
        question = gr.Textbox(label="Question", lines=2, elem_id="question")
        ask_btn = gr.Button("Ask", variant="primary", elem_id="ask")
        answer_box = gr.Textbox(label="Answer", lines=6, elem_id="answer")
        notes = gr.Markdown(elem_id="notes")
        sources = gr.Dataframe(
            headers=["#", "title", "id", "page / URL", "score", "similarity", "snippet"],
            label="Sources", wrap=True, elem_id="sources",
        )
        domain.change(lambda d: gr.Dropdown(choices=scopes(d), value="(whole domain)"), domain, scope, api_name=False)
        gr.on([ask_btn.click, question.submit], answer, [question, domain, strategy, scope],
              [answer_box, sources, notes], api_name="ask")
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    build_ui().queue().launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
