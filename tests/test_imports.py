"""How the project's modules depend on each other, read from their source: imports run downhill
(no cycle, late imports included), only the public Dagster API is used, and the read side
(status, checks, notifications) does not depend on the loader or on resolving."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("assignar_pipeline", "assets", "resources", "schedules", "sensors")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(path: Path) -> set[str]:
    """Every module name an import statement of the file names, at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {m for m in _imported(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for dep in graph[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_nothing_imports_dagster_private_modules():
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in _modules().values()
        for name in _imported(path)
        if name == "dagster._core" or name.startswith(("dagster._", "dagster_graphql._"))
    ]
    assert offenders == []


def test_the_core_imports_dagster_only_in_definitions():
    offenders = [
        name
        for name, path in _modules().items()
        if name.startswith("assignar_pipeline")
        and name != "assignar_pipeline.definitions"
        and any(m == "dagster" or m.startswith("dagster.") for m in _imported(path))
    ]
    assert offenders == []


def test_imports_have_no_cycle():
    graph = _graph()
    cycles = sorted(name for name in graph if name in _reachable(graph, name))
    assert cycles == []


def test_the_read_side_does_not_depend_on_loading_or_resolving():
    graph = _graph()
    writers = {"assignar_pipeline.load", "assignar_pipeline.reconcile.resolve"}
    for reader in (
        "assignar_pipeline.status",
        "assignar_pipeline.checks",
        "assignar_pipeline.notify",
        "assignar_pipeline.reconcile.queries",
        "assignar_pipeline.synclog",
    ):
        reached = _reachable(graph, reader)
        # Importing one of the loader package's modules runs the package too.
        assert not {
            m for m in reached if m in writers or m.startswith("assignar_pipeline.load.")
        }, reader


def test_only_the_sync_log_module_writes_the_sync_log():
    writers = [
        name
        for name, path in _modules().items()
        if "sync_log.insert" in path.read_text() and name != "assignar_pipeline.synclog"
    ]
    assert writers == []
