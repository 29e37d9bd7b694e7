"""The layers stay layers: each package imports only the ones below it, nothing in them
imports a front, and there are no import cycles between packages (read from the source with
ast, so lazy imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "hibernate"

LEAVES = {"errors", "_version", "_placeholder", "_reports", "_progress", "_limits"}
FRONTS = {"_api", "cli", "_ipython", "_run", "__main__", "__init__", "viewer"}
# package -> what it may import (besides itself and the standard library)
ALLOWED = {
    "storage": {"errors", "_threads"},
    "trust": {"errors"},
    "serializers": {"errors", "_placeholder", "_limits"},
    "engines": {"errors"},
    "format": {"errors", "_version", "_limits", "_threads", "storage", "trust"},
    "session": {"errors", "_version", "_placeholder", "_reports", "_progress", "format",
                "serializers", "trust", "storage", "engines"},
    "checkpoints": {"errors", "_version", "_limits", "_reports", "_text", "_progress",
                    "format", "session", "storage", "trust", "engines"},
    "_reports": {"format", "_text"},
    "_text": set(),
    "_progress": set(),
    "_threads": set(),
    "_placeholder": {"errors"},
    # a front (hibernate serve, %hibernate browse): it may import what the CLI imports
    "viewer": {"errors", "_version", "_reports", "_text", "_progress", "_api", "format",
               "session", "serializers", "checkpoints", "storage", "trust", "engines"},
}


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> set[str]:
    """The hibernate layers a module imports."""
    tree = ast.parse(path.read_text())
    here = path.relative_to(SRC).parts[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "hibernate":
                    continue
                target = parts[1:]
            else:
                base = list(here[:len(here) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
            if not target:  # "from . import x" at the top: x is the layer
                found.update(a.name for a in node.names)
            else:
                found.add(target[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "hibernate" and len(parts) > 1:
                    found.add(parts[1])
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        layer = _layer(path)
        graph.setdefault(layer, set()).update(_imports(path) - {layer})
    return graph


def test_layers_import_only_what_is_below_them() -> None:
    graph = _graph()
    for layer, allowed in ALLOWED.items():
        extra = graph.get(layer, set()) - allowed
        assert not extra, f"{layer} imports {sorted(extra)}"


def test_nothing_but_a_front_imports_a_front() -> None:
    graph = _graph()
    for layer, deps in graph.items():
        if layer not in FRONTS:
            assert not deps & FRONTS, f"{layer} imports the front(s) {sorted(deps & FRONTS)}"


def test_no_import_cycles_between_layers() -> None:
    graph = {k: v & set(ALLOWED) for k, v in _graph().items() if k in ALLOWED}

    def visit(node: str, path: list[str]) -> None:
        assert node not in path, " -> ".join([*path, node])
        for nxt in graph.get(node, ()):
            visit(nxt, [*path, node])

    for start in graph:
        visit(start, [])
