"""The layers of docs/architecture.md, kept by the imports themselves (issue 13 §6): no import cycle
between packages, the Azure package (`shared/`, `functions/`, `function_app.py`) never imports the
edges `.funcignore` leaves out of it (`cli/`, `devhost/`, `main.py`), and the doc's table of layers
stays true."""
from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT

TOP = ("shared", "cli", "devhost", "functions", "main", "function_app")
EDGES = {"cli", "devhost", "main"}          # left out of the Azure package by .funcignore
PACKAGED = ("shared", "functions", "function_app")


def unit_of(module: str) -> str | None:
    """The layer a module belongs to: `shared.<package>` (a package or a single module), or a top
    level name of the app; None for anything outside the project."""
    parts = module.split(".")
    if parts[0] not in TOP:
        return None
    return ".".join(parts[:2]) if parts[0] == "shared" and len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module an import statement of the file names, at any depth (imports inside functions
    and TYPE_CHECKING blocks count: they are dependencies all the same)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from shared import ledger` names the module shared.ledger
            out.update(f"{base}.{alias.name}" for alias in node.names)
            out.add(base)
    return out


def project_files() -> list[Path]:
    files = [p for top in ("shared", "cli", "devhost", "functions") for p in sorted((ROOT / top).rglob("*.py"))]
    return [*files, ROOT / "main.py", ROOT / "function_app.py"]


def dependencies() -> dict[str, dict[str, set[str]]]:
    """unit -> unit it imports -> the files whose imports make that edge (for the failure message)."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in project_files():
        source = unit_of(module_name(path))
        assert source is not None
        edges = graph.setdefault(source, {})
        for name in imported(path):
            target = unit_of(name)
            if target is not None and target != source and target != "shared":
                edges.setdefault(target, set()).add(str(path.relative_to(ROOT)))
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for after in graph.get(node, ()):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in on_stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_cycles():
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["e"]}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": ["b"], "b": []}) == []


def test_the_import_parser_sees_every_form(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    module = tmp_path / "shared" / "chain" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("import shared.ledger\nfrom shared import plural\nfrom . import steps\n"
                      "def f():\n    from cli.main import main\n")
    assert {unit_of(n) for n in imported(module)} >= {"shared.ledger", "shared.plural", "shared.chain", "cli"}


def test_no_package_imports_another_that_imports_it_back():
    graph = dependencies()
    problems = []
    for component in cycles(graph):
        edges = [f"{a} -> {b} ({', '.join(sorted(graph[a][b]))})"
                 for a in component for b in sorted(graph[a]) if b in component]
        problems.append("; ".join(edges))
    assert problems == [], "package-level import cycles: " + " | ".join(problems)


@pytest.mark.parametrize("packaged", PACKAGED)
def test_the_azure_package_never_imports_the_development_edges(packaged):
    graph = dependencies()
    reached = {u for u in graph if u == packaged or u.startswith(packaged + ".")}
    frontier = list(reached)
    while frontier:   # what the package needs, transitively
        for target in graph.get(frontier.pop(), {}):
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    wrong = {f"{u} -> {e}: {', '.join(sorted(graph[u][e]))}" for u in reached for e in graph.get(u, {}) if e in EDGES}
    assert wrong == set()


def documented_layers() -> dict[str, int]:
    """`shared.<package>` -> its layer, from the packages table of docs/architecture.md."""
    layers = {}
    for line in (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            for name in re.findall(r"`([a-z_]+)`", cells[1]):
                layers[f"shared.{name}"] = int(cells[0])
    return layers


def test_the_architecture_doc_lists_every_package_and_its_layers_hold():
    """A package imports only from lower layers of the doc's table, so the table stays the truth."""
    layers, graph = documented_layers(), dependencies()
    assert set(layers) == {u for u in graph if u.startswith("shared.")} | {
        t for edges in graph.values() for t in edges if t.startswith("shared.")}
    upward = sorted(f"{u} (layer {layers[u]}) -> {t} (layer {layers[t]})" for u in layers
                    for t in graph.get(u, {}) if layers[t] >= layers[u])
    assert upward == []
