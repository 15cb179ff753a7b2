"""The app's memory over a long sitting (issue 28): resident memory after each of many default
Generates and sampler races, in the real window (offscreen).

    QT_QPA_PLATFORM=offscreen python bench/gui_memory.py [--generates 100] [--races 10] [--more 100]

Presses Generate (the default: the bundled class DDPM, digits 0–9) `--generates` times and runs the
sampler race (Alt+7) `--races` times in between, as a lecture would, then `--more` Generates again to
show whether memory levels off. Goal: peak resident memory <= 1.5 GB after the first part, and no
growth beyond it in the second (the runs off screen keep their frames on disk, see core/session.py).
The baseline is the window's memory before the first run, in the same process.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

GOAL_MB = 1536.0


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generates", type=int, default=100)
    parser.add_argument("--races", type=int, default=10)
    parser.add_argument("--more", type=int, default=100, help="Generates after the goal's part: does memory level off?")
    parser.add_argument("--plain-malloc", action="store_true", help="leave glibc's malloc settings as they are")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from diffusion_stepper.core.allocator import keep_freed_memory_for_reuse

    if not args.plain_malloc:
        keep_freed_memory_for_reuse()  # as the app's launcher does
    import torch
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from diffusion_stepper.visualizer.main_window import MainWindow

    app = QApplication.instance() or QApplication([])

    def wait_idle(window) -> None:
        while window.sampling.busy:
            app.processEvents()
            time.sleep(0.002)
        for _ in range(5):
            app.processEvents()

    with tempfile.TemporaryDirectory() as folder:
        os.environ["HOME"] = folder  # the runs' spill files and settings stay in the temporary folder
        window = MainWindow(QSettings(str(Path(folder) / "bench.ini"), QSettings.Format.IniFormat))
        window.resize(1366, 768)
        window.show()
        for _ in range(5):
            app.processEvents()
        baseline = resident_mb()
        race_every = max(1, args.generates // max(1, args.races)) if args.races else 0
        races = 0
        started = time.perf_counter()
        for number in range(1, args.generates + 1):
            window.generate()
            wait_idle(window)
            if race_every and number % race_every == 0 and races < args.races:
                window.run_experiment("samplers")
                wait_idle(window)
                races += 1
            if number % 10 == 0:
                print(f"{number} generates, {races} races: {resident_mb():.0f} MB", file=sys.stderr, flush=True)
        after_goal_part, peak_goal_part = resident_mb(), peak_mb()
        for number in range(1, args.more + 1):
            window.generate()
            wait_idle(window)
            if number % 10 == 0:
                print(f"+{number} generates: {resident_mb():.0f} MB", file=sys.stderr, flush=True)
        after_more, peak_all = resident_mb(), peak_mb()
        runs = len(window.session.runs)
        in_memory = sum(1 for run in window.session.runs if not getattr(run, "spilled", None))
        minutes = (time.perf_counter() - started) / 60
        window.close()
    print(
        f"| {date.today()} | {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} | "
        f"{args.generates} Generates + {races} races, then {args.more} more ({runs} runs, {in_memory} in memory; "
        f"{minutes:.0f} min) | {baseline:.0f} MB | {after_goal_part:.0f} MB (peak **{peak_goal_part:.0f} MB**) | "
        f"{after_more:.0f} MB (peak {peak_all:.0f} MB) |"
    )
    return 0 if peak_goal_part <= GOAL_MB and peak_all <= GOAL_MB else 1


if __name__ == "__main__":
    sys.exit(main())
