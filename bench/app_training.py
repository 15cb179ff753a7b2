"""Training in the app against the command line (issue 31): is the app as fast, and does its window
stay responsive while it trains?

    python bench/app_training.py [--rounds 3] [--kinds mnist,toy2d] [--size 1366x768] \\
        [--limit N] [--iterations N] [--shots DIR] [--shot-seconds 10,30]

Each round runs, in turn (the order swapped every other round, so a machine that slows down or
warms up favours neither):
  cli  `diffusion-stepper train mnist --preset quick --out DIR` (or `train toy2d --dataset
       8-gaussians`, the 2D lab's default data), a new process timed from launch to exit;
  app  the real app in a new process (`MainWindow` at `--size`, offscreen; with DISPLAY set,
       maximised on that screen), which presses Ctrl+T on the Train tab (Quick preset, the tab's
       defaults) or Ctrl+Shift+L in the 2D lab, timed from the key press to the last epoch's
       checkpoint (the 2D model saved) arriving in the window. A 5 ms timer on the GUI thread measures, over that
       time, every gap between its ticks: the event loop's stalls (the goal: p99 <= 50 ms).
Both start from a fresh, empty home folder. Goal: the app's mean time <= 1.1x the CLI's.

`--shots DIR` saves the window at `--shot-seconds` after Start and at the end (mnist only; the
first round), for looking at. `--limit N` / `--iterations N` shrink the runs to try the script.
Prints rows for bench/RESULTS.md; exit status 1 means a goal was missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from console import fresh_environment, run_console
from gui_responsiveness import GOAL_P99_MS, figures

GOAL_RATIO = 1.1
TICK_MS = 5
TOY2D_DATASET = "8-gaussians"  # the 2D lab's default data
KINDS = ("mnist", "toy2d")


def cli_seconds(kind: str, limit: int | None, iterations: int | None) -> float:
    with tempfile.TemporaryDirectory() as home:
        out = str(Path(home) / "run")
        if kind == "mnist":
            arguments = ["train", "mnist", "--preset", "quick", "--out", out]
            arguments += ["--limit", str(limit)] if limit else []
        else:
            arguments = ["train", "toy2d", "--dataset", TOY2D_DATASET, "--out", out]
            arguments += ["--iterations", str(iterations)] if iterations else []
        return run_console(arguments, home)


def app_run(kind: str, args: argparse.Namespace) -> dict:
    """The app in a new process: its seconds, its GUI gaps (ms) and the screenshots it saved."""
    with tempfile.TemporaryDirectory() as home:
        result = Path(home) / "result.json"
        command = [sys.executable, __file__, "--app", kind, "--result", str(result), "--size", args.size]
        for flag in ("limit", "iterations", "shots", "shot_seconds"):
            value = getattr(args, flag)
            if value:
                command += [f"--{flag.replace('_', '-')}", str(value)]
        subprocess.run(command, check=True, env=fresh_environment(home))
        return json.loads(result.read_text())


def in_the_app(args: argparse.Namespace) -> None:
    """The `--app` side: the real window, Start pressed, measured until the last epoch arrives."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from diffusion_stepper.core.allocator import keep_freed_memory_for_reuse
    from diffusion_stepper.visualizer.main_window import MainWindow

    keep_freed_memory_for_reuse()  # as the app's launcher does
    app = QApplication.instance() or QApplication([])  # noqa: F841 - kept alive while the window runs
    home = Path(os.environ["HOME"])
    window = MainWindow(QSettings(str(home / "bench.ini"), QSettings.Format.IniFormat))
    width, height = (int(part) for part in args.size.split("x"))
    window.resize(width, height)
    if os.environ.get("DISPLAY"):
        window.showMaximized()  # on a real screen of that size, as a lecturer has it
    else:
        window.show()
    window.activateWindow()
    QTest.qWaitForWindowExposed(window)
    state = {"finished_at": None, "shots": []}
    if args.app == "mnist":
        form = window.train_view.form
        form.out_dir.setText(str(home / "quick-run"))
        if args.limit:
            form.limit.setValue(args.limit)
        epochs = form.epochs.value()

        def on_epoch(event) -> None:
            if event.epoch == epochs:
                state["finished_at"] = time.perf_counter()

        window.training.epoch_finished.connect(on_epoch)
        key, modifiers = Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier
        started = lambda: window.training.job is not None  # noqa: E731
    else:
        if args.iterations:
            window.lab2d.dock.iterations.setValue(args.iterations)
        window.lab2d.dock.dataset.setCurrentIndex(window.lab2d.dock.dataset.findData(TOY2D_DATASET))
        key = Qt.Key.Key_L
        modifiers = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        started = lambda: window.lab2d.job is not None  # noqa: E731
        saved_before = window.lab2d.last_trained

    shot_marks = [float(mark) for mark in args.shot_seconds.split(",")] if args.shots and args.app == "mnist" else []
    gaps: list[float] = []
    clock = {"last": 0.0, "start": 0.0}

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - clock["last"]) * 1000)
        clock["last"] = now
        if shot_marks and now - clock["start"] >= shot_marks[0]:
            mark = shot_marks.pop(0)
            path = Path(args.shots) / f"train-{args.size}-{mark:g}s.png"
            window.grab().save(str(path))
            state["shots"].append(str(path))
        if args.app == "toy2d" and window.lab2d.last_trained != saved_before and state["finished_at"] is None:
            state["finished_at"] = now
        if not started():  # the job has ended (after its last epoch, unless it failed)
            if state["finished_at"] is None:
                state["failed"] = window.messages.last_error or "training ended before its last epoch"
            timer.stop()
            loop.quit()  # not app.quit(), which would close the window

    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    clock["start"] = clock["last"] = time.perf_counter()
    QTest.keyClick(window, key, modifiers)  # the lecturer's shortcut, as the keyboard sends it
    if not started():
        raise RuntimeError("the shortcut did not start training")
    timer.start()
    loop.exec()
    if "failed" in state:
        raise RuntimeError(f"the app's training failed: {state['failed']}")
    seconds = state["finished_at"] - clock["start"]
    if args.shots and args.app == "mnist":
        QTest.qWait(1500)  # the last grid and the readout drawn
        path = Path(args.shots) / f"train-{args.size}-end.png"
        window.grab().save(str(path))
        state["shots"].append(str(path))
    window.training.shutdown()
    window.lab2d.stop()
    Path(args.result).write_text(json.dumps({"seconds": seconds, "gaps": gaps[1:], "shots": state["shots"]}))
    sys.stdout.flush()
    os._exit(0)  # as the app leaves: no teardown of Qt's objects one by one


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--size", default="1366x768", help="the window's size")
    parser.add_argument("--limit", type=int, help="MNIST: train on the first N digits (to try the script)")
    parser.add_argument("--iterations", type=int, help="2D lab: iterations (to try the script)")
    parser.add_argument("--shots", help="a folder for screenshots of the Train tab")
    parser.add_argument("--shot-seconds", default="10,30")
    parser.add_argument("--app", choices=KINDS, help=argparse.SUPPRESS)  # the app's side of one round
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.app:
        in_the_app(args)
    kinds = [kind for kind in args.kinds.split(",") if kind]
    if args.shots:
        Path(args.shots).mkdir(parents=True, exist_ok=True)
    rows, missed = [], []
    for kind in kinds:
        cli_times, app_times, all_gaps = [], [], []
        for round_number in range(args.rounds):
            app_first = round_number % 2 == 1
            shots = args.shots if round_number == 0 else None
            for side in ("app", "cli") if app_first else ("cli", "app"):
                if side == "cli":
                    cli_times.append(cli_seconds(kind, args.limit, args.iterations))
                else:
                    round_args = argparse.Namespace(**{**vars(args), "shots": shots})
                    result = app_run(kind, round_args)
                    app_times.append(result["seconds"])
                    all_gaps.append(np.asarray(result["gaps"]))
            _, _, p99, worst = figures(all_gaps[-1])
            print(
                f"{kind} round {round_number + 1}: cli {cli_times[-1]:.1f} s, app {app_times[-1]:.1f} s "
                f"(x{app_times[-1] / cli_times[-1]:.2f}), GUI gaps p99 {p99:.1f} ms, worst {worst:.1f} ms",
                file=sys.stderr,
            )
        ratio = np.mean(app_times) / np.mean(cli_times)
        gaps = np.concatenate(all_gaps)
        ticks, median, p99, worst = figures(gaps)
        worst_round_p99 = max(figures(round_gaps)[2] for round_gaps in all_gaps)
        met = ratio <= GOAL_RATIO and worst_round_p99 <= GOAL_P99_MS
        if not met:
            missed.append(kind)
        what = "`train mnist --preset quick` / Train tab Ctrl+T" if kind == "mnist" else "`train toy2d` / 2D lab"
        rows.append(
            f"| {date.today()} | {machine()} | {what} | "
            f"{', '.join(f'{s:.1f}' for s in cli_times)} s (mean {np.mean(cli_times):.1f}) | "
            f"{', '.join(f'{s:.1f}' for s in app_times)} s (mean {np.mean(app_times):.1f}) | "
            f"**x{ratio:.2f}** (pairs {', '.join(f'x{a / c:.2f}' for a, c in zip(app_times, cli_times))}) | "
            f"median {median:.1f} ms, p99 **{p99:.1f} ms** (worst round {worst_round_p99:.1f}), worst {worst:.1f} ms "
            f"({ticks} ticks) | {'met' if met else 'NOT met'} |"
        )
    print("| date | machine | run | CLI, launch to exit | app, Start to last epoch | app / CLI | GUI gaps | goal |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 1 if missed else 0


def machine() -> str:
    import torch

    load = os.getloadavg()[0]
    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, load {load:.1f} at the end"


if __name__ == "__main__":
    sys.exit(main())
