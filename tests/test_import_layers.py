"""The floors of the house: every module imports only from its own room or from rooms on lower
floors, no two modules import each other (even by way of others), and imports sit at the top of
their module unless they defer a heavy optional dependency, saying so.

A new upward import fails here: move the thing imported down (or the importer up), never the
import into a function. docs/code-layout.md describes each room."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "diffusion_stepper"

# Floor by floor, from the ground up. A room is a folder of core/, a module at core/'s root, or
# one of the top folders.
FLOORS = [
    # the ground: no project imports but among themselves
    ["core/errors", "core/paths", "core/allocator", "core/atomic", "core/parsing", "core/schema"],
    # the machine's limits and logs, and what a run records: what every family shares
    ["core/logs", "core/limits", "core/devices", "core/updates", "core/run_meta", "core/experiments"],
    ["core/files", "core/jobs", "core/frames"],
    # the maths: schedules, objectives, step rules, the one sampling loop; and the pieces of a training loop
    ["core/diffusion", "core/training"],
    # files in their formats, and what each run is called and how runs line up
    ["core/formats", "core/timeline", "core/run_names", "core/run_store"],
    # the families, side by side, never importing each other
    ["core/mnist", "core/toy2d", "core/deepfloyd_if", "core/own_model"],
    ["core/session", "core/training_progress"],  # the viewer's state
    ["core/exports"],  # what a run leaves behind: pictures, animations, the page
    ["core/api"],  # the Python API for a user's own model (no Qt)
    ["core/cli"],
    ["api"],  # the package's own __init__: `import diffusion_stepper as ds`, the API's names
    ["visualizer"],
]
APART = {"resources"}  # package data; its scripts import nothing of the app
# Imports a function may make itself: heavy optional dependencies only some paths need
DEFERRABLE = {"diffusers", "transformers", "huggingface_hub", "tokenizers", "av"}
# Modules whose imports are deferred on purpose, and why (each says so where it does it)
DEFERS_ON_PURPOSE = {
    "visualizer/launcher.py": "Ctrl+C during torch's import is caught; headless commands never load Qt",
    "api/__init__.py": "the package imports light (the launcher's Ctrl+C handler is set before torch loads)",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for folder in ("core", "visualizer", "resources", "api")
        for path in sorted((ROOT / folder).rglob("*.py"))
    }


def room(module: str) -> str:
    parts = module.split(".")[1:]
    if parts[0] == "core" and len(parts) > 1:
        return "/".join(parts[:2])
    return parts[0]


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports, wherever in it (a module, or the package it names)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith(PACKAGE)}
    return {name for name in found if name in modules} - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports(path, modules) for name, path in modules.items()}


def floor_of(room_name: str) -> int:
    for number, rooms in enumerate(FLOORS):
        if room_name in rooms:
            return number
    raise AssertionError(f"{room_name} is on no floor: add it to FLOORS in {Path(__file__).name}")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_every_room_is_on_a_floor():
    rooms = {room(module) for module in project_modules()} - APART - {"core"}
    assert [name for name in sorted(rooms) if not any(name in floor for floor in FLOORS)] == []


def test_no_import_runs_up_a_floor_or_across_the_families():
    upward = []
    for module, imported in import_graph().items():
        here = room(module)
        if here in APART or here == "core":
            continue
        for other in imported:
            there = room(other)
            if there == here or there == "core":  # core/__init__ holds only the program's name
                continue
            if there in APART or floor_of(there) >= floor_of(here):
                upward.append(f"{module} -> {other}")
    assert upward == []


def test_resources_import_nothing_of_the_app():
    graph = import_graph()
    assert {module: sorted(graph[module]) for module in graph if room(module) in APART and graph[module]} == {}


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_imports_sit_at_the_top_but_deferred_heavy_ones():
    inside = []
    for path in project_modules().values():
        relative = str(path.relative_to(ROOT))
        if relative.startswith("core/cli/") or relative in DEFERS_ON_PURPOSE:
            continue  # the CLI imports each command's module when that command runs
        lines = path.read_text().splitlines()
        for function in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    name = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                    said = any("Deferred" in line for line in lines[max(0, node.lineno - 4) : node.lineno])
                    if name.split(".")[0] not in DEFERRABLE or not said:
                        inside.append(f"{relative}:{node.lineno} {name}")
    assert inside == []
