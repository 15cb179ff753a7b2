"""The main window. For now a placeholder that names the bundled models and the CLI commands;
the step-through viewer is the Visualizer issue's work."""

from __future__ import annotations

import sys
from typing import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

from core import __version__, bundled
from core.errors import UserFacingError
from core.trajectory_file import load_trajectory

PLACEHOLDER_TEXT = """<h2>diffusion-stepper {version}</h2>
<p>Bundled models: {models}</p>
<p>The step-through viewer is on its way. Meanwhile every step works from the command line:</p>
<pre>diffusion-stepper sample mnist --checkpoint mnist-class-ddpm --out run.npz
diffusion-stepper export run.npz --gif run.gif</pre>"""


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("diffusion-stepper")
        self.resize(900, 600)
        models = ", ".join(bundled.bundled_models()) or "none found"
        self.message = QLabel(PLACEHOLDER_TEXT.format(version=__version__, models=models))
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.setCentralWidget(self.message)
        self.statusBar().showMessage("Ready")

    def open_trajectory(self, path: str) -> None:
        try:
            trajectory = load_trajectory(path)
        except UserFacingError as exc:
            self.statusBar().showMessage(str(exc))
            return
        self.statusBar().showMessage(
            f"Opened {path}: {len(trajectory)} frames, {trajectory.meta['algorithm']} ({trajectory.meta['model']})"
        )


def run_app(files: Sequence[str] = ()) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow()
    for path in files:
        window.open_trajectory(path)
    window.show()
    return app.exec()
