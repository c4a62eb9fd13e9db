"""No import cycle inside the pack (``custom_nodes/myspinbot/**/*.py``), read from the source with ``ast``.

Every ``import`` statement counts, wherever it is: at module level, inside a function (a "lazy"
import only moves a cycle from import time to call time, it does not remove it) or in a
``try`` block. Only imports under ``if TYPE_CHECKING:`` are left out: they never run.

An edge goes from a module to each pack module it names: ``from .a import b`` names ``a.b``
when ``b`` is a submodule (a file or package), else ``a`` (``b`` is a name defined in
``a``). Parent packages are not implied: ``import x.y`` runs ``x/__init__.py`` first, but
that is Python's order of initialisation, not a dependency that can close a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "custom_nodes" / "myspinbot"
PACKAGE = "myspinbot"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
           (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of ``tree`` except those in the body of ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def resolve(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The pack modules an import statement of ``module`` names."""
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in known:  # ``import myspinbot.a.b`` where b is not a module: a
                name = name.rpartition(".")[0]
            if name:
                targets.add(name)
        return targets
    if node.level:
        base_parts = module.split(".") if is_package else module.split(".")[:-1]
        base_parts = base_parts[: len(base_parts) - (node.level - 1)]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if not (base == PACKAGE or base.startswith(PACKAGE + ".")):
        return targets
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in known:
            targets.add(sub)
        elif base in known:
            targets.add(base)
    return targets


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for node in import_nodes(tree):
            edges |= resolve(name, path.name == "__init__.py", node, known)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def test_the_pack_has_no_import_cycle():
    graph = import_graph()
    assert "myspinbot.server.plugin" in graph and len(graph) > 50  # the walk found the pack
    found = cycles(graph)
    assert not found, "import cycles (modules that import each other, directly or through others): " + "; ".join(
        " ↔ ".join(c) for c in found)


# --- the checker itself ------------------------------------------------------------------------

@pytest.mark.parametrize("source, expected", [
    ("from . import b", {"myspinbot.pkg.b"}),
    ("from .b import name", {"myspinbot.pkg.b"}),
    ("from ..top import x", {"myspinbot.top"}),
    ("def f():\n    from .b import name", {"myspinbot.pkg.b"}),  # lazy imports count
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import name", set()),
    ("import myspinbot.pkg.b", {"myspinbot.pkg.b"}),
    ("import json\nfrom os import path", set()),
])
def test_imports_resolve_to_pack_modules(source, expected):
    known = {"myspinbot", "myspinbot.pkg", "myspinbot.pkg.a", "myspinbot.pkg.b", "myspinbot.top"}
    edges: set[str] = set()
    for node in import_nodes(ast.parse(source)):
        edges |= resolve("myspinbot.pkg.a", False, node, known)
    assert edges == expected


def test_a_cycle_through_a_third_module_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
