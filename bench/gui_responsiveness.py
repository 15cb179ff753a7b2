"""How long the GUI's event loop stalls while the app works (issue 28: p99 <= 50 ms, worst <= 100 ms).

A 5 ms QTimer runs on the GUI thread; every gap between its ticks beyond 5 ms is time the event
loop could not react. The same window is measured idle first (the baseline), then in each phase
with the views following every frame live, as a lecturer would see it:

  generate  one default Generate (the bundled class DDPM, digits 0-9, CFG γ = 5, the model's own
            steps unless `--steps` says otherwise), until the run has ended
  race      the sampler race (Alt+7: every ε sampler from the same noise, at the race's budget of
            model evaluations each), until the last run has ended
  train     the Train tab's Quick preset (Ctrl+T), for `--train-seconds`, then Stop (not measured)

    QT_QPA_PLATFORM=offscreen python bench/gui_responsiveness.py [--steps 0] [--idle-seconds 3] \\
        [--train-seconds 20] [--phases generate,race,train]

Prints ticks, median, p99 and worst gap of each phase. Exit status 1 means a goal was missed in a
phase (the idle baseline is not judged); 0 that every phase measured met both goals. A phase that
does not finish (a failed run, training that does not stop) ends the script with a traceback.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TICK_MS = 5
GOAL_P99_MS = 50.0
GOAL_MAX_MS = 100.0
PHASES = ("generate", "race", "train")


def measure(app, seconds: float | None, until=None) -> np.ndarray:
    """Gaps (ms) between 5 ms timer ticks, for `seconds` or until `until()` is true."""
    from PySide6.QtCore import QTimer

    gaps: list[float] = []
    last = [time.perf_counter()]
    start = last[0]
    timer = QTimer()
    timer.setInterval(TICK_MS)

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000)
        last[0] = now
        done = (seconds is not None and now - start >= seconds) or (until is not None and until())
        if done:
            timer.stop()
            app.quit()

    timer.timeout.connect(tick)
    timer.start()
    app.exec()
    return np.asarray(gaps)


def figures(gaps: np.ndarray) -> tuple[int, float, float, float]:
    """Ticks, median, p99 and worst gap (ms)."""
    if len(gaps) == 0:
        return 0, float("nan"), float("nan"), float("nan")
    return len(gaps), float(np.median(gaps)), float(np.percentile(gaps, 99)), float(gaps.max())


def met(gaps: np.ndarray) -> bool:
    _, _, p99, worst = figures(gaps)
    return len(gaps) > 0 and p99 <= GOAL_P99_MS and worst <= GOAL_MAX_MS


def check_finished(what: str, runs: list, done: str) -> None:
    if not runs or any(run.state != done for run in runs):
        states = "; ".join(f"{run.name}: {run.state} {run.error or ''}".strip() for run in runs) or "no run"
        raise RuntimeError(f"{what} did not finish: {states}")


def wait_until(app, done, timeout: float) -> None:
    """Let Qt run until done() is true (not measured)."""
    deadline = time.perf_counter() + timeout
    while not done():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"gave up waiting after {timeout:.0f} s")
        app.processEvents()
        time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=0, help="Generate's steps (default 0: the model's own)")
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--train-seconds", type=float, default=20.0, help="how long the Quick preset trains")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)}")
    args = parser.parse_args()
    phases = [name for name in args.phases.split(",") if name]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        parser.error(f"unknown phase {', '.join(unknown)}: choose from {', '.join(PHASES)}")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import torch
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from diffusion_stepper.core.session import DONE
    from diffusion_stepper.visualizer.controllers.training import IDLE, TRAINING
    from diffusion_stepper.visualizer.docks.sample_dock import MODEL_DEFAULT_STEPS
    from diffusion_stepper.visualizer.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    results: dict[str, np.ndarray] = {}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(QSettings(str(Path(folder) / "bench.ini"), QSettings.Format.IniFormat))
        window.resize(1400, 900)
        window.show()
        results["idle"] = measure(app, args.idle_seconds)
        notes["idle"] = f"{args.idle_seconds:g} s, the baseline"

        if "generate" in phases:
            window.sample_dock.steps.setValue(args.steps or MODEL_DEFAULT_STEPS)
            started = time.perf_counter()
            window.generate()
            results["generate"] = measure(app, None, until=lambda: not window.sampling.busy)
            run = window.session.active
            check_finished("the Generate", [run] if run else [], DONE)
            digits = run.trajectory[0].x_t.shape[0]
            notes["generate"] = f"{run.produced} frames of {digits} digits in {time.perf_counter() - started:.1f} s"
            window.sample_dock.steps.setValue(MODEL_DEFAULT_STEPS)

        if "race" in phases:
            runs_before = len(window.session.runs)
            started = time.perf_counter()
            window.run_experiment("samplers")
            results["race"] = measure(app, None, until=lambda: not window.sampling.busy)
            raced = window.session.runs[runs_before:]
            check_finished("the race", raced, DONE)
            notes["race"] = f"{len(raced)} samplers in {time.perf_counter() - started:.1f} s"

        if "train" in phases:
            window.train_view.form.out_dir.setText(str(Path(folder) / "quick-run"))
            window.start_training()
            if window.training.state != TRAINING:
                raise RuntimeError("training did not start")
            results["train"] = measure(app, args.train_seconds)
            last = window.training.history.last
            window.training.stop()
            wait_until(app, lambda: window.training.state == IDLE, 120)
            where = f"epoch {last.epoch}, iteration {last.iteration}" if last else "before its first batch"
            notes["train"] = f"Quick preset for {args.train_seconds:g} s, reached {where}"

        window.close()
    print(
        f"machine: {platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
        f"load {os.getloadavg()[0]:.1f} · torch {torch.__version__} ({torch.get_num_threads()} threads) · "
        f"Qt platform {os.environ['QT_QPA_PLATFORM']}"
    )
    print(f"goal in each phase: p99 gap <= {GOAL_P99_MS:.0f} ms, worst <= {GOAL_MAX_MS:.0f} ms (idle: baseline)")
    print("| phase | ticks | median | p99 | worst | goal | what ran |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    missed = []
    for name, gaps in results.items():
        ticks, median, p99, worst = figures(gaps)
        if name == "idle":
            verdict = "baseline"
        elif met(gaps):
            verdict = "met"
        else:
            verdict = "**missed**"
            missed.append(name)
        print(
            f"| {name} | {ticks} | {median:.1f} ms | {p99:.1f} ms | {worst:.1f} ms | {verdict} | {notes[name]} |",
            flush=True,
        )
    if missed:
        print(f"goal missed while: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
