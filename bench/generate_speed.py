"""How fast the app's default Generate is on this machine, as a lecturer sees it.

    QT_QPA_PLATFORM=offscreen python bench/generate_speed.py [--repeats 3] [--baseline-steps 300]

Drives the real window: presses Generate with the defaults (the bundled class-conditioned
model, the digits 0-9, CFG γ = 5, the model's own number of steps) and measures the time from
the press to the first frame drawn in the step view, and to the last. The baseline is the same
press with the model's full DDPM chain (`--baseline-steps`), in the same run. Goals: first
frame <= 0.5 s, all frames <= 5 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path


def press_generate(app, window, steps: int | None) -> tuple[float, float]:
    """Seconds from Generate to the first frame on screen, and to the end of the run."""
    from diffusion_stepper.core.session import DONE
    from diffusion_stepper.visualizer.docks.sample_dock import MODEL_DEFAULT_STEPS

    window.sample_dock.steps.setValue(steps or MODEL_DEFAULT_STEPS)
    panel = window.step_view.panels["x_t"]
    runs_before = len(window.session.runs)
    first = None
    started = time.perf_counter()
    window.generate()
    while window.sampling.busy:
        app.processEvents()
        new_run = window.session.active if len(window.session.runs) > runs_before else None
        if (
            first is None
            and new_run is not None
            and new_run.produced > 0
            and panel.grid is not None
            and not panel.pending
        ):
            first = time.perf_counter() - started  # the new run's first frame is drawn
        time.sleep(0.001)
    total = time.perf_counter() - started
    run = window.session.active
    if len(window.session.runs) == runs_before or run is None or run.state != DONE:
        raise SystemExit(f"the Generate did not finish: {run.state if run else 'no run'} {run.error if run else ''}")
    return first if first is not None else total, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-steps", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import torch
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from diffusion_stepper.visualizer.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(QSettings(str(Path(folder) / "bench.ini"), QSettings.Format.IniFormat))
        window.resize(1400, 900)
        window.show()
        press_generate(app, window, None)  # warm-up: the first load reads the weights from disk
        results = {}
        for label, steps in (("default", None), ("baseline", args.baseline_steps)):
            runs = [press_generate(app, window, steps) for _ in range(args.repeats)]
            results[label] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
            frames = window.session.active.length
            print(
                f"{label}: {frames - 1} steps, first frame {results[label][0]:.3f} s, all {results[label][1]:.2f} s",
                file=sys.stderr,
            )
            results[label] += (frames - 1,)
        window.close()
    default, baseline = results["default"], results["baseline"]
    print(
        f"| {date.today()} | {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"Qt {os.environ['QT_QPA_PLATFORM']} | {baseline[2]} steps: {baseline[0]:.3f} / {baseline[1]:.2f} s | "
        f"{default[2]} steps: **{default[0]:.3f} / {default[1]:.2f} s** | {baseline[1] / default[1]:.1f}× |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
