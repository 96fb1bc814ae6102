"""The folders are the pipeline: imports only go down the layers, and no package imports another in a circle.

The README's layout section describes these layers; this test keeps the code telling the same story.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "logsieve"

# Bottom to top; a module may import from its own layer or below, never above.
LAYERS: list[set[str]] = [
    {"errors", "artifacts", "config", "table", "resources"},
    {"parsing", "simulator"},
    {"features", "data", "evaluation"},  # evaluation: metrics and reports that models and training use
    {"models"},
    {"training"},
    {"search", "serving"},
    {"demo", "cli"},
]
LEVEL = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module: str) -> str:
    """logsieve.parsing.lines -> parsing; logsieve.table -> table."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports() -> list[tuple[str, str, int]]:
    """(importing module's unit, imported unit, line) for every ``logsieve.*`` import, lazy ones included."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        unit = unit_of(".".join(rel.parts))
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("logsieve.") and unit not in ("", "__init__"):
                    found.append((f"{rel}", unit_of(name), node.lineno))
    return found


def test_every_package_and_top_module_has_a_layer():
    units = {p.stem for p in SRC.glob("*.py") if not p.name.startswith("_")}
    units |= {p.name for p in SRC.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    missing = units - set(LEVEL)
    assert not missing, f"add these to LAYERS (and to the README's layout section): {sorted(missing)}"


def test_no_import_runs_up_the_layers():
    upward = []
    for module, target, line in imports():
        own = LEVEL[unit_of(module.replace("/", "."))]
        if LEVEL[target] > own:
            upward.append(f"{module}.py:{line} imports logsieve.{target} (layer {LEVEL[target]} > {own})")
    assert not upward, "\n".join(upward)


def test_no_package_cycles():
    edges: dict[str, set[str]] = {}
    for module, target, _ in imports():
        source = unit_of(module.replace("/", "."))
        if source != target:
            edges.setdefault(source, set()).add(target)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(u for u in edges if u in reach(u))
    assert not cycles, f"packages in an import cycle: {cycles}"


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400, f"{path.name}: split it (one idea per module)"
