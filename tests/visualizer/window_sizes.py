"""Measure what the real window shows on a screen of a given size; run in its own process, since
the screen is fixed when Qt starts:

    QT_QPA_PLATFORM=offscreen:configfile=SCREEN.json python -m tests.visualizer.window_sizes RUN.npz [RUN.npz ...]

For each run it prints one JSON line: the on-screen size of one image at the desk (window as large
as the screen, docks shown) and in presentation mode with its controls hidden and shown, the text
sizes presentation mode uses, and whether the window still fits the screen.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication


def settle(app: QApplication, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def measure(app: QApplication, window, run: str) -> dict:
    from diffusion_stepper.visualizer.views.common import PANEL_KEYS

    screen = app.primaryScreen().geometry()
    assert window.files.open_trajectory(run), window.messages.last_error
    window.session.seek(1)
    settle(app)
    panels = window.step_view.panels

    def image_sizes() -> list[float]:
        return [panels[key].image_size for key in PANEL_KEYS if panels[key].isVisible()]

    result = {"screen": [screen.width(), screen.height()], "desk": image_sizes()}
    window.presentation.set_active(True)
    settle(app, 0.6)
    window.presentation.show_controls(False)  # as when the mouse has rested
    settle(app)
    result["presentation"] = image_sizes()
    result["fits_screen"] = window.width() <= screen.width() and window.height() <= screen.height()
    result["text_px"] = {
        "panel title": panels["x_t"].title_label.fontInfo().pixelSize(),
        "panel range": panels["x_t"].range_label.fontInfo().pixelSize(),
        "caption": window.transport.caption.fontInfo().pixelSize(),
        "equation": window.step_view.equation.shown_px,
        "plots": window.step_view.histogram.text_px,
    }
    window.presentation.show_controls(True)
    settle(app)
    result["presentation_with_controls"] = image_sizes()
    result["controls_shown"] = window.transport.isVisible()
    window.presentation.set_active(False)
    settle(app)
    return result


def main(runs: list[str]) -> None:
    app = QApplication.instance() or QApplication([])
    from diffusion_stepper.visualizer.main_window import MainWindow

    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(QSettings(str(Path(folder) / "settings.ini"), QSettings.Format.IniFormat))
        screen = app.primaryScreen().geometry()
        window.resize(screen.width(), screen.height())
        window.show()
        settle(app)
        for run in runs:
            print(json.dumps(measure(app, window, run)), flush=True)
        window.close()


if __name__ == "__main__":
    main(sys.argv[1:])
