"""Sample quality against NFE: each sampler of a class-conditioned model at several budgets, read
by the bundled judge, drawn as the points arrive (Experiments ▸ Samplers ▸ Sample quality…).

A view over core.mnist.sampler_quality: the picture is the one `diffusion-stepper experiment
mnist sampler-quality` writes, drawn by the same code from the same rows.
"""

from __future__ import annotations

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
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.io.line_plot import charts_side_by_side
from diffusion_stepper.core.mnist.sampler_quality import (
    APP_PER_CLASS,
    QUALITY_BUDGETS,
    QualityPlan,
    QualityRequest,
    QualityRow,
    quality_charts,
    quality_plan,
    quality_points,
    write_quality,
)
from diffusion_stepper.core.mnist.sampling import DEFAULT_GUIDANCE
from diffusion_stepper.core.parsing import parse_int_list
from diffusion_stepper.visualizer.widgets.forms import float_box, spin_box
from diffusion_stepper.visualizer.worker import DONE, Job

PLOT_SIZE = (1600, 700)


class QualityDialog(QDialog):
    def __init__(self, models: list[tuple[str, str]], seed: int = 0, device: str = "auto", parent=None):
        """`models`: (label, checkpoint) of the class-conditioned models to offer."""
        super().__init__(parent)
        self.setWindowTitle("Sample quality against model evaluations (NFE)")
        self.seed, self.device = seed, device
        self.model = QComboBox()
        for label, checkpoint in models:
            self.model.addItem(label, checkpoint)
        self.per_class = spin_box(2, 500, APP_PER_CLASS, "Digits of each class per point (the judge's FD needs 13+)")
        self.guidance = float_box(
            0.0, 50.0, DEFAULT_GUIDANCE, 0.5, "CFG's γ: 5 is the app's default, 1 the conditional model alone (no push)"
        )
        self.budgets = QLineEdit(", ".join(str(budget) for budget in QUALITY_BUDGETS))
        self.budgets.setToolTip("Model evaluations each sampler may spend, one point each")
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
        self.status = QLabel(
            "Each point samples every digit with one sampler at one budget, then the judge reads them."
        )
        self.status.setWordWrap(True)
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(800, 350)
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Digits per class", self.per_class)
        form.addRow("Guidance γ", self.guidance)
        form.addRow("NFE budgets", self.budgets)
        buttons = QHBoxLayout()
        for widget in (self.start_button, self.cancel_button, self.save_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.picture, 1)
        self.rows: list[QualityRow] = []
        self.plan: QualityPlan | None = None
        self.job: Job | None = None

    def request(self) -> QualityRequest:
        try:
            budgets = parse_int_list(self.budgets.text())
        except ValueError as exc:
            raise UserFacingError(f"NFE budgets: {exc}") from None
        if not budgets or min(budgets) < 1:
            raise UserFacingError("NFE budgets: give positive numbers, e.g. 5, 10, 20")
        return QualityRequest(
            checkpoint=self.model.currentData(),
            budgets=budgets,
            per_class=self.per_class.value(),
            guidance=self.guidance.value(),
            seed=self.seed,
            device=self.device,
        )

    def start(self) -> None:
        try:
            request = self.request()
        except UserFacingError as exc:
            self.status.setText(str(exc))
            return
        self.rows, self.plan = [], None
        self.job = Job(lambda: self._items(request), self)
        self.job.item.connect(self._on_item)
        self.job.finished.connect(self._on_end)
        self.job.failed.connect(lambda message: self._on_end(f"failed: {message}"))
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.status.setText("Loading the model and the judge…")
        self.job.start()

    @staticmethod
    def _items(request: QualityRequest):
        plan = quality_plan(request)
        yield plan
        yield from quality_points(request, plan)

    def _on_item(self, item) -> None:
        if isinstance(item, QualityPlan):
            self.plan = item
            self.progress.setRange(0, len(item.points))
            self.progress.setValue(0)
            return
        self.rows.append(item)
        self.progress.setValue(len(self.rows))
        self.status.setText(
            f"{item.sampler} at NFE {item.nfe}: {item.accuracy:.1%} read as the right digit, FD {item.fd:.2f} "
            f"(real digits {item.fd_real:.2f}), {item.seconds:.1f} s"
        )
        self._draw()
        self.save_button.setEnabled(True)

    def _draw(self) -> None:
        if self.plan is None or not self.rows:
            return
        picture = charts_side_by_side(quality_charts(self.rows, self.plan.model, self.plan.flow), *PLOT_SIZE)
        pixels = np.ascontiguousarray(np.asarray(picture.convert("RGB")))
        image = QImage(pixels.data, pixels.shape[1], pixels.shape[0], pixels.strides[0], QImage.Format.Format_RGB888)
        pixmap = QPixmap.fromImage(image.copy())
        self.picture.setPixmap(
            pixmap.scaled(
                self.picture.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        )

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._draw()

    def _on_end(self, outcome: str) -> None:
        self.job = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, max(1, len(self.plan.points) if self.plan else 1))
        if outcome.startswith("failed"):
            self.status.setText(f"Quality measurement {outcome}")
        elif outcome != DONE:
            self.status.setText(f"Cancelled after {len(self.rows)} points")
        else:
            self.status.setText(f"Done: {len(self.rows)} points. Save them as PNG and CSV.")

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def ask_save(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for sampler-quality.png and .csv")
        if folder:
            self.save(folder)

    def save(self, folder: str | Path) -> tuple[Path, Path]:
        paths = write_quality(self.rows, folder, self.plan.model, self.plan.flow)
        self.status.setText(f"Wrote {paths[0]} and {paths[1]}")
        return paths

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.job is not None:
            self.job.stop()
        super().closeEvent(event)


def open_quality_dialog(window) -> QualityDialog | None:
    """Experiments ▸ Samplers ▸ Sample quality against NFE, for the main window `window`: the
    Sample dock's class-conditioned models (its selected one first), seed and device."""
    dock = window.sample_dock
    models = dock.class_models()
    if not models:
        window.messages.error("quality against NFE needs a class-conditioned model: add one (File ▸ Add checkpoint)")
        return None
    dialog = QualityDialog(models, dock.seed.value(), dock.device.currentText(), window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    window.quality_dialog = dialog  # for tests and screenshots
    dialog.show()
    return dialog
