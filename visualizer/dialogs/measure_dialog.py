"""A measurement that samples and judges in the background and draws its plot as the points arrive:
the shared frame of the sampler-quality and guidance trade-off dialogs.

The charts are the ones the CLI writes (core.formats.charts), drawn from the same rows, so the
dialog's Save and the command line give the same PNG and CSV; on screen they are drawn at the
dialog's own size, so that their text reads at any size of the dialog (a 1920 px picture scaled
into a small dialog had 5 px text). A subclass adds its settings to the form (`self.form`), turns them
into a core request (`request`), and says how rows are produced, charted and saved (`items`,
`charts`, `save_rows`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
)

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.formats.charts import Chart, charts_side_by_side
from diffusion_stepper.core.jobs import DONE
from diffusion_stepper.visualizer.worker import Job

MIN_PICTURE_WIDTH, MIN_PICTURE_HEIGHT = 640, 260  # the charts' least size: a 1280x720 screen holds the dialog


class Total(int):
    """An item a measurement yields first: how many rows will follow (for the progress bar)."""


class MeasureDialog(QDialog):
    TITLE = ""
    HINT = ""
    SAVE_WHAT = "the PNG and CSV"

    def __init__(self, seed: int = 0, device: str = "auto", parent=None):
        super().__init__(parent)
        self.setWindowTitle(self.TITLE)
        self.seed, self.device = seed, device
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.save_button = QPushButton("Save PNG and CSV…")
        self.save_button.clicked.connect(self.ask_save)
        self.save_button.setEnabled(False)
        self.progress = QProgressBar()
        self.status = QLabel(self.HINT)
        self.status.setWordWrap(True)
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(MIN_PICTURE_WIDTH, MIN_PICTURE_HEIGHT)
        # the pixmap drawn at the label's size must not make the label (and the dialog) grow
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.form = QFormLayout()
        self.buttons = QHBoxLayout()
        for widget in (self.start_button, self.cancel_button, self.save_button):
            self.buttons.addWidget(widget)
        self.buttons.addStretch(1)
        self.layout_ = QVBoxLayout(self)
        self.layout_.addLayout(self.form)
        self.layout_.addLayout(self.buttons)
        self.layout_.addWidget(self.progress)
        self.layout_.addWidget(self.status)
        self.layout_.addWidget(self.picture, 1)
        self.rows: list = []
        self.total = 0
        self.job: Job | None = None
        self._charts: list[Chart] = []

    # --- what a subclass says ---------------------------------------------------------------------

    def request(self):
        """The settings as a core request; a bad field raises UserFacingError."""
        raise NotImplementedError

    def items(self, request) -> Iterator:
        """Run on the worker: a `Total`, then the rows."""
        raise NotImplementedError

    def charts(self) -> list[Chart]:
        """The rows so far as the charts the saved PNG shows."""
        raise NotImplementedError

    def row_added(self, row) -> None:
        """A row arrived (after it is charted): a subclass may offer something for it."""

    def save_rows(self, folder: Path) -> tuple[Path, Path]:
        raise NotImplementedError

    def describe(self, row) -> str:
        return ""

    # --- the frame ----------------------------------------------------------------------------------

    def start(self) -> None:
        try:
            request = self.request()
        except UserFacingError as exc:
            self.status.setText(str(exc))
            return
        self.rows, self.total = [], 0
        self.job = Job(lambda: self.items(request))
        self.job.item.connect(self._on_item)
        self.job.finished.connect(self._on_end)
        self.job.failed.connect(lambda message: self._on_end(f"failed: {message}"))
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.status.setText("Loading the model and the judge…")
        self.job.start()

    def _on_item(self, item) -> None:
        if isinstance(item, Total):
            self.total = int(item)
            self.progress.setRange(0, self.total)
            self.progress.setValue(0)
            return
        self.rows.append(item)
        self.progress.setValue(len(self.rows))
        self.status.setText(self.describe(item))
        self.row_added(item)
        self._charts = self.charts()
        self._show_image()
        self.save_button.setEnabled(True)

    def _show_image(self) -> None:
        """Draw the charts at the picture's size on screen (their text is sized from it)."""
        if not self._charts:
            return
        width, height = max(MIN_PICTURE_WIDTH, self.picture.width()), max(MIN_PICTURE_HEIGHT, self.picture.height())
        picture = charts_side_by_side(self._charts, width, height)
        pixels = np.ascontiguousarray(np.asarray(picture.convert("RGB")))
        image = QImage(pixels.data, pixels.shape[1], pixels.shape[0], pixels.strides[0], QImage.Format.Format_RGB888)
        self.picture.setPixmap(QPixmap.fromImage(image.copy()))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._show_image()

    def _on_end(self, outcome: str) -> None:
        self.job = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, max(1, self.total))
        if outcome.startswith("failed"):
            self.status.setText(f"Measurement {outcome}")
        elif outcome != DONE:
            self.status.setText(f"Cancelled after {len(self.rows)} points")
        else:
            self.status.setText(f"Done: {len(self.rows)} points. Save {self.SAVE_WHAT}.")

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def ask_save(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the plot (PNG) and its numbers (CSV)")
        if folder:
            self.save(folder)

    def save(self, folder: str | Path) -> tuple[Path, Path]:
        paths = self.save_rows(Path(folder))
        self.status.setText(f"Wrote {paths[0]} and {paths[1]}")
        return paths

    def set_context(self, models: list[tuple[str, str]], seed: int, device: str) -> None:
        """Opened again: the Sample dock's models, seed and device as they are now (the settings of
        a measurement still running stay as they were)."""
        if self.job is not None:
            return
        self.seed, self.device = seed, device
        chosen = self.model.currentData()
        self.model.clear()
        for label, checkpoint in models:
            self.model.addItem(label, checkpoint)
        self.model.setCurrentIndex(max(0, self.model.findData(chosen)))

    def done(self, result: int) -> None:  # Esc, the close button and Accept all end here
        """Hidden, not deleted (the window keeps one of each dialog): a measurement still running is
        cancelled at its next point."""
        self.cancel()
        super().done(result)

    def stop(self) -> None:
        """Cancel and wait for the worker (the window is closing)."""
        if self.job is not None:
            self.job.stop()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.cancel()
        super().closeEvent(event)


def model_choice(models: list[tuple[str, str]]) -> QComboBox:
    """The class-conditioned models to measure: (label, checkpoint), the first selected."""
    combo = QComboBox()
    for label, checkpoint in models:
        combo.addItem(label, checkpoint)
    return combo


def open_measure_dialog(window, dialog_class, attribute: str):
    """Open `dialog_class` over the main window with the Sample dock's class-conditioned models, seed
    and device; kept as `window.<attribute>`."""
    dock = window.sample_dock
    models = dock.class_models()
    if not models:
        window.messages.error("this measurement needs a class-conditioned model: add one (File ▸ Add checkpoint)")
        return None
    # One dialog of each kind, made once and shown again: closing hides it, so that no dialog (nor
    # the job it runs) is deleted while the app runs (see widgets/pool.py).
    dialog = getattr(window, attribute, None)
    if dialog is None:
        dialog = dialog_class(models, dock.seed.value(), dock.device.currentText(), window)
        setattr(window, attribute, dialog)
    else:
        dialog.set_context(models, dock.seed.value(), dock.device.currentText())
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def stop_measurements(window) -> None:
    """Cancel the measuring dialogs' jobs and wait for them (the window is closing)."""
    for attribute in ("quality_dialog", "tradeoff_dialog"):
        dialog = getattr(window, attribute, None)
        if dialog is not None:
            dialog.stop()
