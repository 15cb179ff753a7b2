"""Start the app: one QApplication, the main window, and any files named on the command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from PySide6.QtWidgets import QApplication

from diffusion_stepper.core.jobs import error_message
from diffusion_stepper.visualizer.child_worker import stop_children
from diffusion_stepper.visualizer.main_window import MainWindow
from diffusion_stepper.visualizer.worker import shut_down_runners


def run_app(files: Sequence[str] = ()) -> NoReturn:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("diffusion-stepper")
    app.setOrganizationName("diffusion-stepper")
    app.aboutToQuit.connect(stop_children)  # a training child keeps what it saved and ends with the app
    app.aboutToQuit.connect(shut_down_runners)  # the job threads end before Qt tears anything down
    window = MainWindow()
    install_error_hook(window)
    window.show()
    window.raise_()
    window.activateWindow()  # keyboard shortcuts work at once, even without a window manager
    for path in files:
        window.open_dropped(path)
    status = app.exec()
    # By now the window has saved its settings and stopped every job (closeEvent), and the job
    # threads have ended (aboutToQuit). Leave without Python tearing Qt's and pyqtgraph's objects
    # down one by one: that teardown ended in a segmentation fault once in two hours of soak.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def install_error_hook(window: MainWindow) -> None:
    """An exception escaping a slot on the GUI thread (a bug: Qt would print it and go on) is logged
    with its traceback and shown as one line, naming the log; the window keeps running."""
    previous = sys.excepthook

    def hook(kind, exc, traceback) -> None:
        if not isinstance(exc, Exception):  # KeyboardInterrupt and the like keep their usual meaning
            previous(kind, exc, traceback)
            return
        if exc.__traceback__ is None:
            exc = exc.with_traceback(traceback)
        window.messages.error(f"Something went wrong: {error_message(exc)}")

    sys.excepthook = hook
