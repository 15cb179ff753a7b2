"""Render the main views to PNG files, for the README and for checking the app by eye.

    python -m diffusion_stepper.visualizer.screenshots [OUT_DIR] [--tiny-if]
    (OUT_DIR defaults to resources/screenshots/WIDTHxHEIGHT, the screen's size)

It drives the real window, as large as the screen: samples the bundled class model, scrubs to a
step mid-way, sweeps three guidance scales for the Compare view, trains the Quick preset in the
Train tab (screenshots at its start, 20 s in and its end), runs the out-of-distribution
experiment, the sampler lab, the 2D lab (a model trained in its dock and each experiment), and
turns on presentation mode; `--only samplers|lab2d|diffusers` renders one part. Runs offscreen unless a
display is set; the committed screenshots were rendered on Xvfb screens of 1920x1080 and
1366x768 (`Xvfb :77 -screen 0 1366x768x24`, then DISPLAY=:77), a lecture hall's projector and a
laptop.

With DIFFUSION_STEPPER_IF_DIR (a stage I folder) and DIFFUSION_STEPPER_IF_EMBEDDINGS (the
prompt embeddings file) set, it also renders each part A experiment of the DeepFloyd IF dock
(if-<experiment>.png). --tiny-if builds a tiny IF-architecture stage I with random weights
(core.deepfloyd_if.tiny) and course-format embeddings for that, which shows each view's layout.
With DIFFUSION_STEPPER_DIFFUSERS_DIR (a diffusers DDPM folder, e.g. what
examples/tiny_diffusers_ddpm.py trains) it renders that model's DDIM run (diffusers-step-view.png).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from diffusion_stepper.core.atomic import atomic_path
from diffusion_stepper.core.deepfloyd_if.experiments import PART_A_EXPERIMENTS
from diffusion_stepper.core.deepfloyd_if.tiny import build_tiny_stage, tiny_embeddings
from diffusion_stepper.core.exports.render import render_frame
from diffusion_stepper.core.toy2d.experiments import TOY2D_EXPERIMENTS
from diffusion_stepper.visualizer.controllers.training import IDLE
from diffusion_stepper.visualizer.dialogs.quality_dialog import open_quality_dialog
from diffusion_stepper.visualizer.dialogs.tradeoff_dialog import open_tradeoff_dialog
from diffusion_stepper.visualizer.main_window import COMPARE_TAB, STEP_TAB, TRAIN_TAB, MainWindow

SCREENSHOTS = Path(__file__).resolve().parent.parent / "resources" / "screenshots"


def wait_until(app, condition, timeout_s: float = 600.0) -> None:
    """Run the app's events until `condition()` holds (or raise after `timeout_s`), then let the
    views' coalesced refreshes run."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not finish in time")
        app.processEvents()
        time.sleep(0.01)
    for _ in range(5):  # let the coalesced view refreshes run
        app.processEvents()
        time.sleep(0.01)


COURSE_PROMPTS = [
    "a high quality photo",
    "an oil painting of an old man",
    "an oil painting of people around a campfire",
    "a lithograph of waterfalls",
    "a lithograph of a skull",
]


def build_tiny_if(folder: Path) -> tuple[str, str]:
    """A tiny random IF stage I and an embeddings file of the course's prompts, in `folder`."""

    embeddings = folder / "prompt_embeds_dict.pth"
    torch.save(tiny_embeddings(COURSE_PROMPTS), embeddings)
    return str(build_tiny_stage(1, folder / "stage1")), str(embeddings)


def render(out_dir: Path, tiny_if: bool = False) -> list[Path]:
    app = QApplication.instance() or QApplication([])
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(QSettings(str(Path(folder) / "screenshots.ini"), QSettings.Format.IniFormat))
        window.show()
        _fill_screen(window)

        window.generate()  # the default: digits 0-9, guidance 5, the model's own sampler at 20 steps
        wait_until(app, lambda: not window.sampling.busy)
        window.session.seek(12)  # mid-way: x̂₀ decided, x_t still noisy
        wait_until(app, lambda: True)
        written.append(_save(window, out_dir / "step-view.png"))
        written.append(_save_presenting(app, window, out_dir / "presentation.png"))

        window.sample_dock.steps.setValue(50)
        window.sample_dock.sweep.setText("0, 1, 5")
        window.sweep()
        wait_until(app, lambda: not window.sampling.busy)
        window.session.seek(35)
        window.tabs.setCurrentIndex(COMPARE_TAB)
        wait_until(app, lambda: True)
        written.append(_save(window, out_dir / "compare-view.png"))

        # The Quick preset as a lecturer runs it: 10 s and 30 s after Start, and at the end.
        train_view = window.train_view
        train_view.form.preset.setCurrentIndex(train_view.form.preset.findData("quick"))
        train_view.form.out_dir.setText(str(Path(folder) / "quick-run"))
        window.tabs.setCurrentIndex(TRAIN_TAB)
        started = time.monotonic()
        window.start_training()
        wait_until(app, lambda: time.monotonic() > started + 10)
        written.append(_save(window, out_dir / "train-quick-10s.png"))
        wait_until(app, lambda: time.monotonic() > started + 30)
        written.append(_save(window, out_dir / "train-quick-30s.png"))
        wait_until(app, lambda: window.training.state == IDLE)
        print(f"the quick preset took {time.monotonic() - started:.0f} s in the app", file=sys.stderr)
        written.append(_save(window, out_dir / "train-view.png"))

        window.run_experiment("out-of-distribution")
        wait_until(app, lambda: not window.sampling.busy)
        window.session.seek(window.session.position_of(window.session.active, 5))  # sigma = 0.8
        wait_until(app, lambda: True)
        written.append(_save(window, out_dir / "experiment-out-of-distribution.png"))

        written += _render_sampler_lab(app, window, out_dir)

        # presentation mode on the sampler race (before the 2D lab takes the Compare view)
        window.tabs.setCurrentIndex(COMPARE_TAB)
        written.append(_save_presenting(app, window, out_dir / "presentation-race.png"))
        window.tabs.setCurrentIndex(STEP_TAB)

        written += _render_lab2d(app, window, out_dir, Path(folder))

        if tiny_if:
            folder_and_embeddings = build_tiny_if(Path(folder))
        else:
            folder_and_embeddings = (
                os.environ.get("DIFFUSION_STEPPER_IF_DIR"),
                os.environ.get("DIFFUSION_STEPPER_IF_EMBEDDINGS"),
            )
        written += _render_if_views(app, window, out_dir, *folder_and_embeddings)
        written += _render_diffusers(app, window, out_dir)

        window.close()
    return written


def _render_sampler_lab(app, window, out_dir: Path) -> list[Path]:
    """The sampler race at 10 evaluations each, and the quality-against-NFE dialog."""

    window.run_experiment("samplers", nfe=10)
    wait_until(app, lambda: not window.sampling.busy)
    window.session.seek(4)  # NFE 4 of 10: DDPM's x̂₀ still vague, the ODE samplers' nearly decided
    window.tabs.setCurrentIndex(COMPARE_TAB)
    wait_until(app, lambda: True)
    written = [_save(window, out_dir / "samplers-race.png")]
    window.compare_view.show_plot.setChecked(False)

    dialog = open_quality_dialog(window)
    dialog.per_class.setValue(13)  # the fewest digits whose 128 judge features have a full covariance
    dialog.guidance.setValue(1.0)
    dialog.budgets.setText("5, 10, 20")
    _fit_dialog(dialog, 1400, 760)
    dialog.start()
    wait_until(app, lambda: dialog.job is None and bool(dialog.rows))
    written.append(_save(dialog, out_dir / "sampler-quality.png"))
    dialog.close()

    dialog = open_tradeoff_dialog(window)  # the default sweep: 8 scales, 20 digits of each class
    _fit_dialog(dialog, 1500, 760)
    dialog.start()
    wait_until(app, lambda: dialog.job is None and bool(dialog.rows))
    written.append(_save(dialog, out_dir / "guidance-tradeoff.png"))
    dialog.close()
    return written


def _render_lab2d(app, window, out_dir: Path, folder: Path) -> list[Path]:
    """The 2D lab: a moons model trained in the dock (the loss, then its particles mid-way), a
    frame of its exported GIF, and each experiment (lab2d-<experiment>.png)."""

    lab = window.lab2d
    lab.dock.raise_()
    lab.dock.dataset.setCurrentIndex(lab.dock.dataset.findData("moons"))
    window.tabs.setCurrentIndex(STEP_TAB)
    with mock.patch(
        "diffusion_stepper.visualizer.controllers.lab2d.work_folder", lambda *parts: folder.joinpath(*parts)
    ):
        lab.train()
        wait_until(app, lambda: lab.job is None and not window.sampling.busy)
    run = window.session.active
    window.session.seek(window.session.position_of(run, run.length * 3 // 5))
    wait_until(app, lambda: True)
    written = [_save(window, out_dir / "lab2d-trained.png")]
    frame = run.trajectory[run.length * 3 // 5]
    picture = render_frame(run.trajectory, frame, ["x_t"])  # what `export --gif` writes for this frame
    path = out_dir / "lab2d-gif-frame.png"
    Image.Image.save(picture, path)
    written.append(path)
    lab.dock.model.setCurrentIndex(0)  # the exact field: the experiments on 8 Gaussians
    lab.dock.dataset.setCurrentIndex(lab.dock.dataset.findData("8-gaussians"))
    for key in TOY2D_EXPERIMENTS:
        lab.run_experiment(key)
        wait_until(app, lambda: not window.sampling.busy)
        compared = len(window.session.compared) > 1
        run = window.session.active
        # the result tells these apart; the others are seen on the way
        at_end = key in ("same-budget", "guidance", "few-steps")
        window.session.seek(window.session.position_of(run, run.length - 1 if at_end else run.length * 3 // 5))
        window.tabs.setCurrentIndex(COMPARE_TAB if compared else STEP_TAB)
        wait_until(app, lambda: True)
        written.append(_save(window, out_dir / f"lab2d-{key}.png"))
    window.tabs.setCurrentIndex(STEP_TAB)
    window.sample_dock.raise_()
    return written


def _render_sampler_lab_alone(app, window, out_dir: Path, folder: Path, tiny_if: bool) -> list[Path]:
    written = _render_sampler_lab(app, window, out_dir)
    if tiny_if:
        written += _render_if_views(app, window, out_dir, *build_tiny_if(folder), only=["samplers"])
    return written


DIFFUSERS_DIR_ENV = "DIFFUSION_STEPPER_DIFFUSERS_DIR"  # a diffusers DDPM folder for diffusers-step-view.png


def _render_diffusers(app, window, out_dir: Path) -> list[Path]:
    """A diffusers DDPM folder's DDIM run in the Step view (examples/tiny_diffusers_ddpm.py makes
    one offline), as diffusers-step-view.png; nothing without the folder."""
    folder = os.environ.get(DIFFUSERS_DIR_ENV)
    if not folder:
        print(f"no diffusers screenshot: set {DIFFUSERS_DIR_ENV} to a DDPMPipeline folder", file=sys.stderr)
        return []
    if not window.files.add_checkpoint(Path(folder) / "model_index.json"):
        raise RuntimeError(f"{folder} was refused: {window.messages.last_error}")
    dock = window.sample_dock
    dock.num.setValue(8)
    dock.steps.setValue(50)
    dock.sampler.setCurrentIndex(dock.sampler.findData("ddim"))
    window.generate()
    wait_until(app, lambda: not window.sampling.busy)
    window.session.seek(38)  # the discs decided in x̂₀, x_t still grainy
    wait_until(app, lambda: True)
    return [_save(window, out_dir / "diffusers-step-view.png")]


# `--only`: one part's screenshots, each (app, window, out_dir, a temporary folder, tiny_if) -> paths
ONLY = {
    "samplers": _render_sampler_lab_alone,  # the race, the quality dialog and, with --tiny-if, IF's race
    "lab2d": lambda app, window, out_dir, folder, tiny_if: _render_lab2d(app, window, out_dir, folder),
    "diffusers": lambda app, window, out_dir, folder, tiny_if: _render_diffusers(app, window, out_dir),
}


def render_only(part: str, out_dir: Path, tiny_if: bool = False) -> list[Path]:
    """Only one part's screenshots (see ONLY), in a fresh window."""

    app = QApplication.instance() or QApplication([])
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(QSettings(str(Path(folder) / "screenshots.ini"), QSettings.Format.IniFormat))
        window.show()
        _fill_screen(window)
        written = ONLY[part](app, window, out_dir, Path(folder), tiny_if)
        window.close()
    return written


def _render_if_views(
    app, window, out_dir: Path, folder: str | None, embeddings: str | None, only: list[str] | None = None
) -> list[Path]:
    """Every part A experiment of the IF dock, as if-<experiment>.png, when a stage I folder and
    embeddings are given (see the docstring); the Compare view for comparisons."""

    if not folder or not embeddings:
        print(
            "no IF screenshots: pass --tiny-if, or set DIFFUSION_STEPPER_IF_DIR and DIFFUSION_STEPPER_IF_EMBEDDINGS",
            file=sys.stderr,
        )
        return []
    panel = window.if_dock
    panel.model_folder.setText(folder)
    panel.set_embeddings(embeddings)
    panel.allow_cpu.setChecked(True)
    prompts = panel.known_prompts
    if len(prompts) >= 3:  # two prompts of the course's kind for anagrams and hybrids
        panel.prompt.setCurrentText(prompts[1])
        panel.prompt2.setCurrentText(prompts[2])
    window.if_dock.raise_()
    written = []
    for key, experiment in PART_A_EXPERIMENTS.items():
        if only is not None and key not in only:
            continue
        window.if_runs.run_experiment(key)
        wait_until(app, lambda: not window.sampling.busy)
        run = window.session.active
        window.session.seek(window.session.position_of(run, run.length * 2 // 3))  # mid-way: the strip still shows
        window.tabs.setCurrentIndex(COMPARE_TAB if experiment.compare else STEP_TAB)
        wait_until(app, lambda: True)
        written.append(_save(window, out_dir / f"if-{key}.png"))
    window.tabs.setCurrentIndex(STEP_TAB)
    return written


def _fit_dialog(dialog, width: int, height: int) -> None:
    """The dialog at that size, or the screen's where that is smaller (room left for a title bar)."""
    screen = dialog.screen().availableGeometry()
    dialog.resize(min(width, screen.width()), min(height, screen.height() - 40))


def _fill_screen(window) -> None:
    """As large as the screen: maximised by the window manager where there is one (its title bar
    stays on the screen), the screen's size offscreen."""
    if os.environ.get("QT_QPA_PLATFORM", "").startswith("offscreen"):
        window.setGeometry(window.screen().availableGeometry())
    else:
        window.showMaximized()


def _save_presenting(app, window, path: Path) -> Path:
    """The window in presentation mode, its controls hidden as when the mouse rests; left again after."""
    window.presentation.set_active(True)
    wait_until(app, lambda: True)
    time.sleep(0.5)  # the window manager's full-screen switch
    wait_until(app, lambda: True)
    window.presentation.show_controls(False)
    wait_until(app, lambda: True)
    saved = _save(window, path)
    window.presentation.set_active(False)
    wait_until(app, lambda: True)
    return saved


def _save(window, path: Path) -> Path:
    on_display = not os.environ.get("QT_QPA_PLATFORM", "").startswith("offscreen")
    # with a display, the main window as the screen shows it (the window manager's title bar, and
    # whatever lies off the screen, cut); a dialog, or offscreen, as the widget draws itself
    picture = window.screen().grabWindow(0) if on_display and window.isWindow() and window.parent() is None else None
    with atomic_path(path) as temporary:
        if not (picture if picture is not None else window.grab()).save(str(temporary), "PNG"):
            raise OSError(f"could not write {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    parser = argparse.ArgumentParser(prog="python -m diffusion_stepper.visualizer.screenshots")
    parser.add_argument("out_dir", nargs="?", type=Path)
    parser.add_argument("--tiny-if", action="store_true", help="render the part A views on a tiny random IF model")
    parser.add_argument(
        "--only", choices=list(ONLY), help="render only the sampler lab's, the 2D lab's or the diffusers view"
    )
    args = parser.parse_args(argv)
    if args.out_dir is None:
        screen = (QApplication.instance() or QApplication([])).primaryScreen().geometry()
        args.out_dir = SCREENSHOTS / f"{screen.width()}x{screen.height()}"
    written = render_only(args.only, args.out_dir, args.tiny_if) if args.only else render(args.out_dir, args.tiny_if)
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
