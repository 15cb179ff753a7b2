"""The Sample dock: pick a model and its settings, then Generate (Enter) or sweep a guidance list."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core import bundled
from core.checkpoints import display_name, read_sidecar, resolve_checkpoint
from core.errors import UserFacingError
from core.mnist_sampling import DEFAULT_GUIDANCE, DEFAULT_NUM_SAMPLES, SampleRequest
from core.parsing import parse_float_list, parse_int_list

MODEL_DEFAULT_STEPS = 0  # the steps box's "use the model's own number of steps"


class SamplePanel(QWidget):
    generate_requested = Signal()
    sweep_requested = Signal()
    cancel_requested = Signal()
    open_checkpoint_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = QComboBox()
        self.model.setToolTip("A bundled model, or one you trained (File ▸ Add checkpoint, or drop it on the window)")
        self._sidecars: dict[str, dict] = {}  # model key -> sidecar
        for name, sidecar_path in bundled.bundled_models().items():
            self._add_model(name, name, read_sidecar(sidecar_path))
        self.classes = QLineEdit("0-9")
        self.classes.setToolTip("Digits to sample: 0-9, or a list like 3,3,7")
        self.per_class = QSpinBox()
        self.per_class.setRange(1, 20)
        self.num = QSpinBox()
        self.num.setRange(1, 100)
        self.num.setValue(DEFAULT_NUM_SAMPLES)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 50.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setValue(DEFAULT_GUIDANCE)
        self.guidance.setToolTip("Classifier-free guidance scale γ (0: unconditional, 1: conditional, >1: guided)")
        self.steps = QSpinBox()
        self.steps.setRange(MODEL_DEFAULT_STEPS, 1000)
        self.steps.setSpecialValueText("model default")
        self.steps.setToolTip("Sampling steps; fewer steps use strided timesteps")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("The same seed gives the same frames")
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.noisy_test = QCheckBox("noised test digits")
        self.noisy_test.setToolTip("Denoise MNIST test digits noised at σ instead of pure noise (needs MNIST: diffusion-stepper download mnist)")
        self.sigma = QDoubleSpinBox()
        self.sigma.setRange(0.0, 3.0)
        self.sigma.setSingleStep(0.1)
        self.sigma.setValue(0.5)
        self.sigma.setToolTip("The noise level σ added to the test digits")
        self.x0_clip = QComboBox()
        self.x0_clip.addItem("model default", None)
        self.x0_clip.addItem("none (the course's formula)", "none")
        self.x0_clip.addItem("clip to [0, 1]", "static")
        self.x0_clip.setToolTip("DDPM: keep the clean estimate x̂₀ inside the data range before each update")
        self.sweep = QLineEdit("0, 1, 5, 10")
        self.sweep.setToolTip("Guidance scales to sample side by side in the Compare view")

        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Digits", self.classes)
        form.addRow("Per digit", self.per_class)
        form.addRow("Samples", self.num)
        form.addRow("Guidance γ", self.guidance)
        form.addRow("Steps", self.steps)
        form.addRow("x̂₀ clip", self.x0_clip)
        form.addRow("Input", self.noisy_test)
        form.addRow("Noise σ", self.sigma)
        form.addRow("Seed", self.seed)
        form.addRow("Device", self.device)
        self.form = form

        self.generate_button = QPushButton("Generate  (Enter)")
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self.generate_requested)
        self.cancel_button = QPushButton("Cancel  (Esc)")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.sweep_button = QPushButton("Sweep γ")
        self.sweep_button.setToolTip("One run per guidance scale, shown side by side in the Compare view")
        self.sweep_button.clicked.connect(self.sweep_requested)
        add_checkpoint = QPushButton("Add checkpoint…")
        add_checkpoint.clicked.connect(self.open_checkpoint_requested)

        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.cancel_button)
        self.sweep_row = QHBoxLayout()
        self.sweep_row.addWidget(self.sweep, 1)
        self.sweep_row.addWidget(self.sweep_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        form.addRow("Compare γ", self.sweep_row)
        layout.addWidget(add_checkpoint)
        layout.addStretch(1)
        self.model.currentIndexChanged.connect(self._update_fields)
        self.select_model(bundled.DEFAULT_MODEL)
        self._update_fields()

    # --- models ---------------------------------------------------------------------------------

    def _add_model(self, key: str, label: str, sidecar: dict) -> None:
        self._sidecars[key] = sidecar
        self.model.addItem(label, key)

    def add_checkpoint(self, path: str | Path, select: bool = True) -> str:
        """Add a checkpoint file (or its sidecar) to the model list, and select it unless told not to."""
        sidecar_path = resolve_checkpoint(path)
        key = str(sidecar_path)
        if key not in self._sidecars:
            self._add_model(key, display_name(sidecar_path, sidecar_path), read_sidecar(sidecar_path))
        if select:
            self.model.setCurrentIndex(self.model.findData(key))
        return key

    def select_model(self, key: str) -> bool:
        index = self.model.findData(key)
        if index >= 0:
            self.model.setCurrentIndex(index)
        return index >= 0

    @property
    def model_key(self) -> Optional[str]:
        return self.model.currentData()

    @property
    def sidecar(self) -> dict:
        return self._sidecars.get(self.model_key or "", {})

    @property
    def is_class_conditioned(self) -> bool:
        return self.sidecar.get("architecture", {}).get("name") == "class"

    @property
    def is_single_step(self) -> bool:
        return self.sidecar.get("objective", {}).get("name") == "single-step"

    def _update_fields(self) -> None:
        """Show only the settings the selected model takes."""
        conditioned = self.is_class_conditioned
        rows = {
            self.classes: conditioned,
            self.per_class: conditioned,
            self.guidance: conditioned,
            self.sweep_row: conditioned,
            self.num: not conditioned,
            self.steps: not self.is_single_step,
            self.x0_clip: self.sidecar.get("objective", {}).get("name") == "ddpm",
            self.noisy_test: self.is_single_step,
            self.sigma: self.is_single_step,
        }
        for row, visible in rows.items():
            self.form.setRowVisible(row, visible)
        self.sweep_button.setEnabled(conditioned)

    # --- requests -------------------------------------------------------------------------------

    def request(self, guidance: Optional[float] = None) -> SampleRequest:
        """The settings as a core request; bad text raises a one-line UserFacingError."""
        if self.model_key is None:
            raise UserFacingError("no model to sample: add a checkpoint (File ▸ Add checkpoint)")
        request = SampleRequest(checkpoint=self.model_key, seed=self.seed.value(), device=self.device.currentText())
        if not self.is_single_step and self.steps.value() != MODEL_DEFAULT_STEPS:
            request.steps = self.steps.value()
        if self.form.isRowVisible(self.x0_clip):
            request.x0_clip = self.x0_clip.currentData()
        if self.is_class_conditioned:
            try:
                request.classes = parse_int_list(self.classes.text())
            except ValueError as exc:
                raise UserFacingError(f"digits: {exc}") from None
            request.per_class = self.per_class.value()
            request.guidance = self.guidance.value() if guidance is None else guidance
        else:
            request.num = self.num.value()
        if self.is_single_step and self.noisy_test.isChecked():
            request.noisy_test, request.sigma = True, self.sigma.value()
        return request

    def sweep_requests(self) -> list[SampleRequest]:
        if not self.is_class_conditioned:
            raise UserFacingError("a guidance sweep needs a class-conditioned model")
        try:
            scales = parse_float_list(self.sweep.text())
        except ValueError as exc:
            raise UserFacingError(f"compare γ: {exc}") from None
        if not scales:
            raise UserFacingError("compare γ: type the guidance scales to compare, e.g. 0, 5, 10")
        return [self.request(guidance=scale) for scale in scales]

    def set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
