"""Every script in bench/ runs with its smallest settings, so that none can break unnoticed (issue 28).

Each script runs as its own process, as a person runs it (`python bench/NAME.py ARGS` from the
repository root), with the Qt platform offscreen and HOME in a temporary folder, so nothing is
written into the user's home; seconds each whatever the settings, so they are marked slow (the
quick run leaves them out, `--all` and CI run them). The settings are the smallest that still go through every part of
the script: the figures they print mean nothing, only that the script works. A new script needs its
entry in SMALLEST, or the test of the list fails.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


@dataclass(frozen=True)
class Smallest:
    """A script's smallest runs (one or more argument lists, run in turn) and what else it needs."""

    runs: tuple[tuple[str, ...], ...]
    goal_exit: bool = False  # its docstring says exit status 1 means a goal was missed: accept it too
    timeout_s: float = 300.0  # per run, on a busy 2-core machine
    marks: tuple = ()


def smallest(*args: str, **options) -> Smallest:
    return Smallest((args,), **options)


# "{tmp}" in an argument is replaced with a fresh temporary folder.
SMALLEST: dict[str, Smallest] = {
    "app_training.py": smallest(
        *("--rounds", "1", "--limit", "64", "--iterations", "100", "--shots", "{tmp}", "--shot-seconds", "1"),
        goal_exit=True,
    ),
    "allocator.py": smallest("--per-class", "1", "--steps", "2", "--repeats", "1"),
    "capture_overhead.py": smallest("--hidden", "8", "--steps", "2", "--per-class", "1", "--repeats", "1"),
    "generate_speed.py": smallest("--repeats", "1", "--baseline-steps", "5"),
    "gui_memory.py": smallest("--generates", "2", "--races", "1", "--more", "1"),
    "gui_responsiveness.py": smallest("--idle-seconds", "0.5", "--steps", "5", "--train-seconds", "3", goal_exit=True),
    "gui_soak.py": smallest("--minutes", "0.2", "--sizes", "1366x768", marks=(pytest.mark.soak,)),
    "html_page.py": smallest("--steps", "3,6"),
    "if_step_time.py": Smallest(
        tuple(("--stage", stage, "--device", "cpu", "--steps", "2", "--repeats", "1") for stage in ("1", "2"))
    ),
    "mnist_quality.py": smallest("--checkpoint", "mnist-class-ddpm", "--per-class", "1", "--steps", "2"),
    "quick_training.py": smallest("--limit", "64", "--per-digit", "1", "--series-seconds", "0", "--keep-epochs", "1"),
    "sample_process_time.py": smallest("--repeats", "1"),
    "toy2d_training.py": smallest("--iterations", "5", "--datasets", "moons", "--objectives", "flow,ddpm"),
    "toy2d_view_fps.py": smallest("--particles", "50", "--size", "64", "--steps", "5", "--repeats", "1"),
    "train_bundled_models.py": smallest(
        *("--budget-seconds", "1", "--out", "{tmp}", "--device", "cpu", "--only", "mnist-single-step"),
        *("--probe-digits", "64", "--limit", "64"),
    ),
    "train_throughput.py": smallest("--device", "cpu", "--hidden", "8", "--batch-size", "8", "--iterations", "2"),
    "trajectory_load.py": smallest("--steps", "2"),
}

# A bench script runs as a program; a module the scripts share (console.py) has no main of its own
SCRIPTS = sorted(
    path.name for path in BENCH.glob("*.py") if '__name__ == "__main__"' in path.read_text(encoding="utf-8")
)


def docstring(name: str) -> str:
    return ast.get_docstring(ast.parse((BENCH / name).read_text(encoding="utf-8"))) or ""


def test_every_bench_script_has_its_smallest_settings():
    assert sorted(SMALLEST) == SCRIPTS, "give each bench/*.py its smallest settings in SMALLEST, and only those"


@pytest.mark.parametrize("name", [name for name in SMALLEST if SMALLEST[name].goal_exit])
def test_a_goal_exit_is_documented(name):
    """Exit status 1 is accepted only from a script that says it means a missed goal."""
    assert "exit status 1 means a goal was missed" in " ".join(docstring(name).split()).lower()


@pytest.mark.slow  # each script in a process of its own: seconds each, whatever its settings
@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=SMALLEST[name].marks if name in SMALLEST else ()) for name in SCRIPTS]
)
def test_bench_script_runs_with_its_smallest_settings(name, tmp_path):
    assert name in SMALLEST, f"bench/{name} has no smallest settings in tests/test_benches.py"
    settings = SMALLEST[name]
    if name == "gui_soak.py":
        from tests.soak.monkey import missing_programs

        reason = missing_programs()
        if reason:
            pytest.skip(reason)
    home = tmp_path / "home"
    home.mkdir()
    environment = {
        **os.environ,
        "HOME": str(home),
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONFAULTHANDLER": "1",
        # One torch thread: the figures mean nothing here, and on a busy machine two threads that spin
        # while waiting for each other made the smallest quick_training run ten times slower (61 s, not 4.5 s).
        "OMP_NUM_THREADS": "1",
    }
    accepted = (0, 1) if settings.goal_exit else (0,)
    for number, args in enumerate(settings.runs):
        scratch = tmp_path / f"run-{number}"
        command = [sys.executable, str(BENCH / name), *(arg.replace("{tmp}", str(scratch)) for arg in args)]
        shown = " ".join(command[1:])
        try:
            done = subprocess.run(
                command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=settings.timeout_s
            )
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            pytest.fail(f"{shown}: still running after {settings.timeout_s:.0f} s\n--- stderr\n{stderr}")
        output = f"{shown}: exit status {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        assert "Traceback (most recent call last)" not in done.stderr, output
        assert done.returncode in accepted, output
        assert done.stdout.strip(), output  # it printed its figures
