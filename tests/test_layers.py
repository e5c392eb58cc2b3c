"""The package's structure: no import cycle, models import nothing above them, rooms stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "alliancetraj"
#: Modules that models/ may import (besides models/ itself): the layer below.
#: ``sudden`` (the sudden-change criteria the rules method reuses) and ``progress`` (the
#: progress bar the exact engine draws) sit below models too.
BELOW_MODELS = {"alliancetraj.errors", "alliancetraj.io", "alliancetraj.results",
                "alliancetraj._validation", "alliancetraj._version", "alliancetraj.sudden",
                "alliancetraj.progress", "alliancetraj._files"}
#: No module of the package may be longer than this (lines).
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Package modules that ``name`` imports anywhere (top level or inside functions)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in modules else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in modules and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_import_cycle(graph):
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt):], nxt] if nxt in trail else [node, nxt]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_models_import_only_downward(graph):
    bad = {name: sorted(m for m in deps if not m.startswith("alliancetraj.models")
                        and m not in BELOW_MODELS)
           for name, deps in graph.items() if name.startswith("alliancetraj.models")}
    assert {k: v for k, v in bad.items() if v} == {}
    below = {m: sorted(d for d in graph[m] if d.startswith("alliancetraj.models"))
             for m in BELOW_MODELS}
    assert {k: v for k, v in below.items() if v} == {}
    spec_deps = graph["alliancetraj.models.changepoint.spec"]
    assert not any(m.startswith("alliancetraj.models") for m in spec_deps)


def test_every_module_stays_small():
    sizes = {p.relative_to(SRC).as_posix(): len(p.read_text().splitlines())
             for p in SRC.rglob("*.py")}
    assert len(sizes) > 50  # the walk found the package
    assert {k: n for k, n in sizes.items() if n > MAX_LINES} == {}
