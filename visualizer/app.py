"""Start the app: one QApplication, the main window, and any files named on the command line."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from PySide6.QtWidgets import QApplication

from diffusion_stepper.visualizer.main_window import MainWindow


def run_app(files: Sequence[str] = ()) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("diffusion-stepper")
    app.setOrganizationName("diffusion-stepper")
    window = MainWindow()
    window.show()
    window.raise_()
    window.activateWindow()  # keyboard shortcuts work at once, even without a window manager
    for path in files:
        window.open_dropped(path)
    return app.exec()
