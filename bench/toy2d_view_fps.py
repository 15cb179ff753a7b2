"""Scrubbing the 2D lab's particle view: frames per second with 5,000 particles and the field
(issue 18's goal: >= 30 fps on this machine).

    QT_QPA_PLATFORM=offscreen python bench/toy2d_view_fps.py [--particles 5000] [--size 720] [--steps 100] \\
        [--repeats 3]

One run of the exact 8-Gaussian DDPM field (`--steps` 100, so 101 frames) is sampled once. Then:
  render  core.toy2d.render alone, every frame at --size pixels: everything on (p_t, data, field
          arrows of model and exact, 8 paths, the x̂₀ cloud) against the bare particles (the baseline)
  app     the app's Step view, a real MainWindow: each frame is set on the timeline, then Qt
          processes events until the view has drawn it (the scrubbing a lecturer does with ←/→)
Prints rows for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.session import LOADED
from diffusion_stepper.core.toy2d.datasets import DATASETS
from diffusion_stepper.core.toy2d.render import ParticleViewOptions, render_particles
from diffusion_stepper.core.toy2d.runs import Toy2DSettings, Toy2DSource, toy2d_run
from diffusion_stepper.core.toy2d.training import make_objective


def frames_per_second(draw, count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        draw(index)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=5000)
    parser.add_argument("--size", type=int, default=720)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    source = Toy2DSource.exact(DATASETS["8-gaussians"], make_objective("ddpm"))
    run = toy2d_run(source, Toy2DSettings(count=args.particles, steps=args.steps))
    trajectory = Trajectory(run.meta, list(run.frames), run.labels, run.data)
    frames = len(trajectory)
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    print(f"{date.today()} · {machine} · {args.particles:,} particles · {frames} frames · {args.size} px\n")

    full = ParticleViewOptions(source="both", x0_cloud=True, size=args.size)
    bare = ParticleViewOptions(field="none", density=False, data=False, paths=False, size=args.size)
    rows = {}
    for name, options in (("bare particles (baseline)", bare), ("everything on", full)):
        rows[name] = statistics.median(
            frames_per_second(lambda i, o=options: render_particles(trajectory, i, o), frames)
            for _ in range(args.repeats)
        )
    print("| what | fps | ratio to baseline |\n| --- | --- | --- |")
    baseline = rows["bare particles (baseline)"]
    for name, fps in rows.items():
        print(f"| render: {name} | {fps:.0f} | {fps / baseline:.2f} |")

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from diffusion_stepper.visualizer.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        scrub_in_app(app, MainWindow, trajectory, Path(folder) / "bench.ini", args.repeats, baseline)


def scrub_in_app(app, window_class, trajectory: Trajectory, settings_file: Path, repeats: int, baseline: float) -> None:
    """The Step view of a real window, scrubbed through every frame and back."""
    from PySide6.QtCore import QSettings

    frames = len(trajectory)
    window = window_class(QSettings(str(settings_file), QSettings.Format.IniFormat))
    window.resize(1600, 1000)
    window.show()
    window.session.add_run(trajectory.meta, frames, frames=trajectory.frames, state=LOADED, data=trajectory.data)
    app.processEvents()
    panel = window.step_view.particle_panel

    window.session.seek(0)
    app.processEvents()
    # forward through every frame, then back, and so on: each position differs from the last
    walk = [*range(1, frames), *range(frames - 2, -1, -1)]

    def show(step: int) -> None:
        drawn = panel.picture
        window.session.seek(walk[step % len(walk)])
        while panel.picture is drawn:  # until the coalesced refresh has drawn this frame
            app.processEvents()

    app_fps = statistics.median(frames_per_second(show, len(walk)) for _ in range(repeats))
    side = panel.picture.shape[0]
    print(
        f"| app: Step view scrub (the view's defaults), {side} px picture | {app_fps:.0f} | {app_fps / baseline:.2f} |"
    )
    window.close()


if __name__ == "__main__":
    main()
