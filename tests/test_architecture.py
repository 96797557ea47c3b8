"""The package's shape, read from its own imports (ast, nothing is imported): no cycle, no import from a
lower layer to a higher one, no module over 400 lines, no private name imported from another module.

    .venv/bin/pytest tests/test_architecture.py -q

Layers, bottom to top (a module may import its own layer and the ones below it):
  0  errors, config, types, text, atomic, hub, prompts, guard: plain values and helpers every layer uses
  1  corpus, embeddings, models, index, evaluation.store: data on disk and the models that read it (run
     records are storage like the corpus and index stores: the router's accuracy signal reads them)
  2  retrieval, coverage, fewshot, training: search an index (and say what it lacks); train adapters from a corpus
  3  strategies, router (the pure core: signals, policies, oracle): one question in, a prompt or a decision out
  4  routing, api: the Assistant (route, then answer)
  5  evaluation, jobs, background: runs over many questions, training sweeps, the router's training
  6  cli, cli_*, the package facade (assistant/__init__.py): what users call
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "assistant"
MAX_LINES = 400

# module prefix -> layer; the longest matching prefix wins
LAYERS = {
    "errors": 0, "config": 0, "generation_config": 0, "domain_config": 0, "types": 0, "text": 0, "atomic": 0, "hub": 0, "prompts": 0, "guard": 0, "scope": 0, "fusion": 0,
    "corpus": 1, "embeddings": 1, "models": 1, "index": 1, "evaluation.store": 1,
    "retrieval": 2, "coverage": 2, "fewshot": 2, "training": 2,
    "strategies": 3, "router": 3,
    "routing": 4, "api": 4,
    "evaluation": 5, "jobs": 5, "background": 5,
    "cli": 6, "": 6,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The package module a dotted name lives in ("" is the package itself)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name if name in MODULES else None


def _imports(module: str) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every import of a package module, at any depth
    (function-level and TYPE_CHECKING imports count: a cycle hidden in a function is still a cycle)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "assistant" or alias.name.startswith("assistant."):
                    target = _resolve(alias.name.removeprefix("assistant").lstrip("."))
                    if target is not None:
                        found.append((target, "", node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([p for p in base_parts if p] + ([node.module] if node.module else []))
            elif node.module == "assistant" or (node.module or "").startswith("assistant."):
                base = (node.module or "").removeprefix("assistant").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}".lstrip(".")
                if sub in MODULES:  # `from assistant import hub`: the submodule, not the facade
                    found.append((sub, "", node.lineno))
                else:
                    target = _resolve(base)
                    if target is not None:
                        found.append((target, alias.name, node.lineno))
    return [(t, n, line) for t, n, line in found if t != module]


def _layer(module: str) -> int:
    parts = module.split(".")
    for i in range(len(parts), -1, -1):
        prefix = ".".join(parts[:i])
        if prefix in LAYERS:
            return LAYERS[prefix]
    return LAYERS[""]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _, _ in _imports(module):
            # a package's __init__ re-exporting its own submodules is not an edge of the graph
            if not (module and target.startswith(module + ".")) and not (module == "" and target):
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_no_upward_imports() -> None:
    upward = [
        f"{module or 'assistant'} (layer {_layer(module)}) imports {target or 'assistant'} (layer {_layer(target)}) "
        f"at line {line}"
        for module in MODULES
        for target, _, line in _imports(module)
        if _layer(target) > _layer(module) and not (module and target.startswith(module + "."))
    ]
    assert upward == []


def test_no_private_names_across_modules() -> None:
    private = [
        f"{module} imports {name} from {target} at line {line}"
        for module in MODULES
        for target, name, line in _imports(module)
        if name.startswith("_") and not name.startswith("__")
    ]
    assert private == []


def test_modules_are_short() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checks_catch_what_they_look_for() -> None:
    """The graph helpers find a planted cycle and read relative imports."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _layer("router.policy") == 3 and _layer("evaluation.store") == 1 and _layer("evaluation.runner") == 5
    assert _layer("cli_eval") == 6 and _layer("") == 6
    assert ("config", "Config", 1) in [(t, n, 1) for t, n, _ in _imports("api")]


@pytest.mark.parametrize("module", ["router.policy", "router.signals", "router.learned", "router.oracle"])
def test_router_core_is_pure(module: str) -> None:
    """The router's core decides from signals only: nothing above config/types, no storage type."""
    if module not in MODULES:
        pytest.skip(f"{module} does not exist")
    allowed = {"errors", "config", "types", "text"}
    bad = [t for t, _, _ in _imports(module) if t not in allowed and not t.startswith("router.")]
    assert bad == []
