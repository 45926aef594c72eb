"""The architecture as a test: each layer imports only the layers below it, and no module cycles.

Read from the source with ``ast`` (module-level, function-level and
TYPE_CHECKING imports alike), so an import hidden in a function to dodge a
cycle still counts. docs/architecture.rst draws the same layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "libkb"

# Rank of each top-level part of libkb: a module may import its own part and
# parts of a lower rank only. Parts of equal rank do not import each other.
LAYERS: dict[str, int] = {
    "errors": 0,
    "ratelimit": 0,
    "gctune": 0,
    "version": 0,
    "suggest": 0,
    "storage": 1,
    "config": 2,
    "metrics": 2,
    "kafka": 3,
    "keys": 3,
    "format": 4,
    "retention": 5,
    "backup": 6,
    "source": 7,
    "restore": 8,
    "catalog": 8,
    "ops": 8,
    "offsets": 8,
    "prune": 8,
    "cli": 9,
    "__init__": 10,
}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imports(name: str, path: Path) -> set[str]:
    """Every libkb module ``name`` imports, resolving relative imports and ``from libkb import x``."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "libkb")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "libkb":
                continue
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    known = {n for n, _ in modules()}
    return {m for m in found if m in known} - {name}


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


GRAPH = {name: imports(name, path) for name, path in modules()}


def test_every_part_has_a_layer() -> None:
    assert {part(m) for m in GRAPH} <= set(LAYERS), "add the new part to LAYERS and docs/architecture.rst"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_only_lower_layers(module: str) -> None:
    own = part(module)
    wrong = sorted(
        target for target in GRAPH[module] if part(target) != own and not LAYERS[part(target)] < LAYERS[own]
    )
    assert not wrong, f"{module} ({own}, layer {LAYERS[own]}) imports {wrong}"


def test_no_import_cycles() -> None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def test_no_function_is_over_100_lines() -> None:
    """A function that does not fit on a screen is several functions."""
    long = [
        f"{name}.{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, path in modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > 100
    ]
    assert not long, long
