"""Walk the real window through a lecture on a screen of a given size and report, as JSON lines,
what a lecturer would see; run in its own process, since the screen is fixed when Qt starts:

    QT_QPA_PLATFORM=offscreen:configfile=SCREEN.json python -m tests.visualizer.screen_walk [--not-every-sampler]

Lines it prints (tests/visualizer/test_fits_the_screen.py reads them):
- {"check": "fits", "after": ACTION, "outside": [...], "overlaps": [...]}: after each action, every
  window of the app (the main window, each dialog) that lies outside the screen or asks more than
  it, and every picture with a caption drawn over it (none is fine);
- {"check": "equation", "model": ..., "sampler": ..., "clip": ..., "cut_steps": [...], "layouts": [...]}:
  in presentation mode, the steps whose update rule is cut, and each different set of picture
  sizes seen while stepping through the run (one set: the pictures do not move);
- {"check": "step_f5", "layouts": [...], "cut_steps": [...]}: the same for the default run;
- {"check": "race_f5", ...}: a six-sampler race in presentation mode: the smallest digit, whether the
  timeline, when shown, lies on the screen, whether the x̂₀ plot shows, whether each row's header
  has room for two lines (what tells the runs apart, and where each is);
- {"check": "train_grid", ...}: the Train tab's 4-per-digit grid: digit size, labels above the grid.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWidget

from tests.visualizer.window_sizes import settle

RACE_NFE = 10
SAMPLING_STEPS = 5  # enough for every kind of step (the first, the middle, the last) of each sampler


def report(**fields) -> None:
    print(json.dumps(fields), flush=True)


def wait_until(app: QApplication, condition, timeout_s: float = 300.0) -> None:
    from diffusion_stepper.visualizer.screenshots import wait_until as run_until

    run_until(app, condition, timeout_s)
    settle(app, 0.2)


def outside_the_screen(app: QApplication) -> list[str]:
    """Every shown window of the app that lies outside the available screen, or whose least size
    is larger than it."""
    screen = app.primaryScreen().availableGeometry()
    found = []
    for widget in app.topLevelWidgets():
        if not widget.isVisible() or not widget.isWindow():
            continue
        name = f"{type(widget).__name__} '{widget.windowTitle()}'"
        frame = widget.frameGeometry()
        if not screen.contains(frame):
            found.append(f"{name} at {frame.x()},{frame.y()} {frame.width()}x{frame.height()}")
        least = widget.minimumSizeHint().expandedTo(widget.minimumSize())
        if least.width() > screen.width() or least.height() > screen.height():
            found.append(f"{name} asks at least {least.width()}x{least.height()}")
    return found


def labels_over_pictures(app: QApplication) -> list[str]:
    """Every shown image panel whose title or values line lies over its picture (a panel squeezed
    below the room its parts need)."""
    from diffusion_stepper.visualizer.widgets.panels import ImagePanel

    found = []
    for widget in app.topLevelWidgets():
        for panel in widget.findChildren(ImagePanel) if widget.isVisible() else []:
            if not panel.isVisible():
                continue
            picture = panel.view.geometry()
            for label in (panel.title_label, panel.range_label):
                if label.isVisible() and label.geometry().intersects(picture):
                    found.append(f"{label.text()[:40]!r} over its picture ({panel.height()} px tall panel)")
    return found


def check_fits(app: QApplication, after: str) -> None:
    settle(app, 0.3)
    report(check="fits", after=after, outside=outside_the_screen(app), overlaps=labels_over_pictures(app))


def equation_cut(window) -> bool:
    """The update rule does not show whole: its text needs more height than the panel shows (it
    would scroll), or the panel reaches past the window."""
    equation = window.step_view.equation
    body, shown = equation.body, equation.scroller.viewport()
    if not body.isVisible():
        return True
    needs = body.heightForWidth(body.width())
    bottom = shown.mapTo(window, shown.rect().bottomLeft()).y()
    return needs > shown.height() or bottom > window.height()


def step_through(app: QApplication, window) -> tuple[list[int], list[list[float]]]:
    """Every frame of the active run: the steps whose rule is cut, and each different set of
    picture sizes seen (one set: the pictures did not move while stepping)."""
    run = window.session.active
    cut, layouts = [], []
    for index in range(run.length):
        window.session.seek(window.session.position_of(run, index))
        settle(app, 0.05)
        if equation_cut(window):
            cut.append(index)
        sizes = [round(panel.image_size, 1) for panel in window.step_view.panels.values() if panel.isVisible()]
        if sizes not in layouts:
            layouts.append(sizes)
    return cut, layouts


def walk_samplers(app: QApplication, window) -> None:
    """In presentation mode, each bundled model with each of its samplers (and x̂₀ clipping on)."""
    dock = window.sample_dock
    dock.steps.setValue(SAMPLING_STEPS)
    for model_index in range(dock.model.count()):
        dock.model.setCurrentIndex(model_index)
        settle(app, 0.05)
        samplers = range(dock.sampler.count()) if dock.sampler.isVisibleTo(dock) else [0]
        clips = [0, dock.x0_clip.findData("static")] if dock.x0_clip.isVisibleTo(dock) else [0]
        for sampler_index in samplers:
            for clip_index in clips:
                dock.sampler.setCurrentIndex(sampler_index)
                dock.x0_clip.setCurrentIndex(clip_index)
                window.generate()
                wait_until(app, lambda: not window.sampling.busy)
                cut, layouts = step_through(app, window)
                report(
                    check="equation",
                    model=dock.model.currentText(),
                    sampler=dock.sampler.currentText(),
                    clip=dock.x0_clip.currentText(),
                    cut_steps=cut,
                    layouts=layouts,
                )
    dock.steps.setValue(0)


def race_in_presentation(app: QApplication, window) -> None:
    from diffusion_stepper.visualizer.main_window import COMPARE_TAB

    window.run_experiment("samplers", nfe=RACE_NFE)
    wait_until(app, lambda: not window.sampling.busy)
    window.tabs.setCurrentIndex(COMPARE_TAB)
    check_fits(app, "a sampler race")
    window.presentation.set_active(True)
    settle(app, 0.6)
    window.presentation.show_controls(True)  # as when the mouse moves: the timeline shows
    settle(app)
    view, transport = window.compare_view, window.transport
    screen = app.primaryScreen().geometry()
    timeline = transport.rect().translated(transport.mapToGlobal(transport.rect().topLeft()))
    sizes = [panel.image_size for row in view.panels.values() for panel in row]
    report(
        check="race_f5",
        runs=len(view.panels),
        smallest_digit=min(sizes),
        timeline_on_screen=transport.isVisible() and screen.contains(timeline),
        plot_shown=view.plot.isVisible() and view.plot.height() >= 100,
        headers_readable=all(header.height() >= header.fontMetrics().height() * 2 for header in view.titles.values()),
    )
    window.presentation.show_controls(False)
    check_fits(app, "a sampler race in presentation mode")
    window.presentation.set_active(False)
    check_fits(app, "leaving presentation mode")


def default_run_in_presentation(app: QApplication, window) -> None:
    from diffusion_stepper.visualizer.main_window import STEP_TAB

    window.tabs.setCurrentIndex(STEP_TAB)
    window.generate()
    wait_until(app, lambda: not window.sampling.busy)
    check_fits(app, "Generate")
    window.presentation.set_active(True)
    settle(app, 0.6)
    window.presentation.show_controls(False)
    cut, layouts = step_through(app, window)
    report(check="step_f5", layouts=layouts, cut_steps=cut)
    check_fits(app, "presentation mode")


def train_grid(app: QApplication, window) -> None:
    """The Train tab's epoch grid (4 digits of each class, one column per class) as it shows one."""
    from diffusion_stepper.visualizer.main_window import TRAIN_TAB

    window.tabs.setCurrentIndex(TRAIN_TAB)
    panel = window.train_view.samples
    generator = torch.Generator().manual_seed(0)
    panel.show_images(torch.rand(40, 1, 28, 28, generator=generator), (0.0, 1.0), torch.arange(10).repeat(4))
    settle(app)
    grid_top = panel.image_item.mapRectToScene(panel.image_item.boundingRect()).top()
    labels = [label for label in panel.column_labels if label.isVisible()]
    report(
        check="train_grid",
        digit=panel.image_size,
        columns=panel.columns,
        labels=len(labels),
        labels_above_grid=all(label.mapRectToScene(label.boundingRect()).bottom() <= grid_top + 1 for label in labels),
        labels_inside_view=all(label.mapRectToScene(label.boundingRect()).top() >= 0 for label in labels),
    )
    check_fits(app, "the Train tab")


def dialogs(app: QApplication, window) -> None:
    """Each dialog of the app, opened as a lecturer opens it."""
    from diffusion_stepper.visualizer.dialogs.export_dialog import ExportDialog
    from diffusion_stepper.visualizer.dialogs.quality_dialog import open_quality_dialog
    from diffusion_stepper.visualizer.dialogs.tradeoff_dialog import open_tradeoff_dialog
    from diffusion_stepper.visualizer.menus import show_shortcuts

    show_shortcuts(window)
    check_fits(app, "F1")
    window.shortcuts_box.close()
    for opener in (open_tradeoff_dialog, open_quality_dialog):
        dialog = opener(window)
        check_fits(app, f"opening {type(dialog).__name__}")
        dialog.close()
    run = window.session.active
    export = ExportDialog(run.trajectory, window.session.fps, ["x_t"], window)
    export.show()
    check_fits(app, "File ▸ Animation")
    export.close()
    window.lab2d.ask_draw()
    check_fits(app, "2D lab ▸ Draw a distribution")
    for widget in app.topLevelWidgets():
        if widget.isVisible() and widget is not window and isinstance(widget, QWidget):
            widget.close()
    window.messages.error("a test of the error box: the file is not a trajectory")
    check_fits(app, "an error")


def main(every_sampler: bool = True) -> None:
    app = QApplication.instance() or QApplication([])
    from diffusion_stepper.visualizer.main_window import MainWindow

    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(QSettings(str(Path(folder) / "settings.ini"), QSettings.Format.IniFormat))
        window.show()
        settle(app)
        check_fits(app, "launch")
        window.showMaximized()
        check_fits(app, "maximise")
        default_run_in_presentation(app, window)
        if every_sampler:
            walk_samplers(app, window)
        window.presentation.set_active(False)
        check_fits(app, "leaving presentation mode")
        race_in_presentation(app, window)
        window.sweep()
        wait_until(app, lambda: not window.sampling.busy)
        check_fits(app, "Sweep γ")
        train_grid(app, window)
        dialogs(app, window)
        window.close()


if __name__ == "__main__":
    main(every_sampler="--not-every-sampler" not in sys.argv)
