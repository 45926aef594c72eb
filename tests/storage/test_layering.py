"""The storage layer's imports, read from the source with ``ast``: no cycles, no
engine, no test code, and drivers whose helper modules stand on their own.

Imports are read wherever they are written (module level, inside functions,
under ``if TYPE_CHECKING``): each is a dependency the module chose. The
implicit import of a module's parent packages is not counted, since every
module would then depend on ``libkb.storage``'s ``__init__``, which
re-exports the layer.
"""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

LIBKB = Path(__file__).resolve().parents[2] / "libkb"
STORAGE = "libkb.storage"
#: What storage must not know: the engines and everything above them.
ENGINE = ("libkb.backup", "libkb.restore", "libkb.cli", "libkb.format", "libkb.kafka", "libkb.config")
TESTING = "libkb.storage.testing"
#: Driver packages split into a driver module and helper modules.
SPLIT_DRIVERS = ("s3", "azure", "gcs")


def _module_name(path: Path) -> str:
    parts = path.relative_to(LIBKB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(LIBKB.rglob("*.py"))}
STORAGE_MODULES = sorted(m for m in MODULES if m == STORAGE or m.startswith(STORAGE + "."))


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _imports(module: str) -> Iterator[str]:
    """Every module ``module`` imports (``from pkg import sub`` names ``pkg.sub``)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in MODULES else base


def _storage_graph() -> dict[str, set[str]]:
    return {
        module: {dep for dep in _imports(module) if dep in MODULES and _within(dep, STORAGE)} - {module}
        for module in STORAGE_MODULES
    }


def test_the_storage_modules_are_found() -> None:
    assert {"libkb.storage.adapter", "libkb.storage.drivers.s3.driver", TESTING} <= set(STORAGE_MODULES)
    assert "libkb.storage.drivers.s3.driver" in _storage_graph()["libkb.storage.drivers.s3"]


def test_storage_import_graph_has_no_cycle() -> None:
    try:
        tuple(graphlib.TopologicalSorter(_storage_graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"storage modules import each other in a circle: {' -> '.join(exc.args[1])}")


def test_storage_knows_no_engine() -> None:
    found = [
        f"{module} imports {dep}"
        for module in STORAGE_MODULES
        for dep in sorted(set(_imports(module)))
        if any(_within(dep, engine) for engine in ENGINE)
    ]
    assert not found, "storage must not know the layers above it:\n" + "\n".join(found)


def test_storage_does_not_import_its_test_suite() -> None:
    found = [
        f"{module} imports {dep}"
        for module in STORAGE_MODULES
        if not _within(module, TESTING)
        for dep in sorted(set(_imports(module)))
        if _within(dep, TESTING) or _within(dep, "pytest")
    ]
    assert not found, "\n".join(found)


def test_importing_storage_loads_no_test_code() -> None:
    code = "import sys, libkb.storage; print(sorted({'pytest', 'libkb.storage.testing'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("driver", SPLIT_DRIVERS)
def test_driver_helpers_do_not_import_their_driver(driver: str) -> None:
    package = f"{STORAGE}.drivers.{driver}"
    driver_module = f"{package}.driver"
    helpers = [m for m in STORAGE_MODULES if _within(m, package) and m not in (package, driver_module)]
    assert helpers
    offenders = [m for m in helpers if driver_module in _imports(m) or package in _imports(m)]
    assert not offenders, f"{offenders} import {driver_module}: hand helpers what they need instead"


def _private_reads(path: Path) -> Iterator[str]:
    """``x._name`` where ``x`` is not ``self``, ``cls`` or ``super()``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
            continue
        yield f"{path.relative_to(LIBKB.parent)}:{node.lineno}: {ast.unparse(node)}"


def test_drivers_use_no_private_attribute_of_another_object() -> None:
    found = [hit for p in sorted((LIBKB / "storage" / "drivers").rglob("*.py")) for hit in _private_reads(p)]
    assert not found, "private attributes used across objects:\n" + "\n".join(found)
