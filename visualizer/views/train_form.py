"""The Train tab's settings: the model, its objective and the recipe, prefilled from a preset.

A view over `core.mnist.recipes.TrainConfig`: each field is one of its fields (and one of
`diffusion-stepper train`'s flags); what the form does not show stays the preset's.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QLabel, QLineEdit, QWidget

from diffusion_stepper.core.devices import DEVICE_CHOICES
from diffusion_stepper.core.mnist.data import mnist_source
from diffusion_stepper.core.mnist.recipes import (
    PRESET_OBJECTIVES,
    PRESETS,
    QUICK_SUMMARY,
    TrainConfig,
    default_run_folder,
    preset_config,
)
from diffusion_stepper.visualizer.widgets.equation import shrinkable
from diffusion_stepper.visualizer.widgets.forms import button, combo_box, float_box, row, show_rows, spin_box

PRESET_LABELS = {"course": "Course recipe (CS180 part B)", "quick": "Quick: digits in a minute or so"}
PRESET_TIPS = {
    "course": "The hyperparameters of CS180 part B: D = 64 on all 60,000 digits (minutes per epoch on a CPU)",
    "quick": f"Quick: {QUICK_SUMMARY}",
}
MODEL_LABELS = {"class": "class-conditioned", "time": "time-conditioned", "single-step": "single-step denoiser"}
OBJECTIVE_LABELS = {"ddpm": "DDPM", "flow": "flow matching"}
LR_SCHEDULE_LABELS = {
    "exponential": "fall to 0.1× by the last epoch (course)",
    "constant": "constant",
    "warmup-cosine": "warm up, then cosine to zero",
}
PREVIEW_SECONDS = 4.0  # the samples refresh this often during training, so the class sees them form


class TrainForm(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.preset = QComboBox()
        for key in PRESETS:
            self.preset.addItem(PRESET_LABELS.get(key, key), key)
            self.preset.setItemData(self.preset.count() - 1, PRESET_TIPS[key], Qt.ItemDataRole.ToolTipRole)
        self.preset.setCurrentIndex(PRESETS.index("quick"))  # what a lecture without a GPU can show live
        self.model = combo_box(MODEL_LABELS)
        self.objective = combo_box(OBJECTIVE_LABELS)
        self.epochs = spin_box(1, 1000)
        self.hidden = spin_box(1, 512, tooltip="The UNet's hidden size D")
        self.batch_size = spin_box(1, 8192)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr_schedule = combo_box(LR_SCHEDULE_LABELS)
        self.ema_decay = float_box(
            0.0,
            0.9999,
            0.0,
            0.001,
            "Samples and checkpoints use a moving average of the weights with this decay (0: the weights "
            "themselves); it smooths out the noise of a short, fast run",
        )
        self.ema_decay.setDecimals(4)
        self.ema_decay.setSpecialValueText("off")
        self.p_uncond = float_box(
            0.0,
            0.99,
            0.1,
            0.05,
            "How often the class is dropped in training, so the model also learns the unconditional estimate CFG needs",
        )
        self.sigma = float_box(0.0, 5.0, 0.5, 0.1)
        self.pure_noise = QCheckBox("pure noise z = ε (learns the average digit)")
        self.pure_noise.setToolTip('Part B\'s "denoising pure noise": the input is noise alone')
        self.limit = spin_box(0, 60000, tooltip="Train on the first N digits only")
        self.limit.setSpecialValueText("all 60,000")
        self.preview_seconds = PREVIEW_SECONDS
        self.data_dir: str | None = None  # another copy of MNIST; None: the usual places (the bundled copy)
        self.data_label = shrinkable(QLabel())  # a long folder is cut; the tooltip has it whole
        self.data_browse = button("…", self._browse_data, "Train on another copy of MNIST (the four IDX files)")
        self.data_browse.setMaximumWidth(32)
        self.data_reset = button(
            "Bundled", lambda: self.set_data_dir(None), "Use the copy of MNIST bundled with the app"
        )
        self.seed = spin_box(0, 2**31 - 1)
        self.device = QComboBox()
        self.device.addItems(DEVICE_CHOICES)
        self.out_dir = QLineEdit()
        self.out_dir.textChanged.connect(
            lambda text: self.out_dir.setToolTip(f"Checkpoints go here, one per epoch: {text}")
        )
        browse = button("…", self._browse)
        browse.setMaximumWidth(32)

        self.rows = QFormLayout(self)
        self.rows.setContentsMargins(0, 0, 0, 0)
        for label, field in (
            ("Preset", self.preset),
            ("Model", self.model),
            ("Objective", self.objective),
            ("Epochs", self.epochs),
            ("Hidden D", self.hidden),
            ("Batch size", self.batch_size),
            ("Learning rate", self.lr),
            ("LR schedule", self.lr_schedule),
            ("Weight average", self.ema_decay),
            ("Class dropout", self.p_uncond),
            ("Noise σ", self.sigma),
            ("Input", self.pure_noise),
            ("Digits", self.limit),
            ("Data", row(self.data_label, self.data_browse, self.data_reset)),
            ("Seed", self.seed),
            ("Device", self.device),
        ):
            self.rows.addRow(label, field)
        # the run's folder on a line of its own, the form's whole width: a path needs the room
        self.rows.addRow(QLabel("Folder for the checkpoints"))
        self.rows.addRow(row(self.out_dir, browse))
        self.preset.currentIndexChanged.connect(self._use_preset_objective)
        self.preset.currentIndexChanged.connect(self.apply_preset)
        self.model.currentIndexChanged.connect(self.apply_preset)
        self.objective.currentIndexChanged.connect(self.apply_preset)
        self._use_preset_objective()
        self.set_data_dir(None)

    @property
    def model_kind(self) -> str:
        return self.model.currentData()

    def is_shown(self, field: QWidget) -> bool:
        return self.rows.isRowVisible(field)

    def _use_preset_objective(self) -> None:
        """Each preset has its objective (quick: flow matching); choosing a preset selects it."""
        self.objective.blockSignals(True)
        self.objective.setCurrentIndex(self.objective.findData(PRESET_OBJECTIVES[self.preset.currentData()]))
        self.objective.blockSignals(False)

    def _preset_config(self) -> TrainConfig:
        single_step = self.model_kind == "single-step"
        return preset_config(
            self.preset.currentData(), self.model_kind, None if single_step else self.objective.currentData()
        )

    def apply_preset(self) -> None:
        """Fill the form with the chosen preset's values for this model and objective, and a new run folder."""
        single_step = self.model_kind == "single-step"
        show_rows(
            self.rows,
            {
                self.objective: not single_step,
                self.sigma: single_step,
                self.pure_noise: single_step,
                self.p_uncond: self.model_kind == "class",
            },
        )
        config = self._preset_config()
        self.epochs.setValue(config.epochs)
        self.hidden.setValue(config.hidden)
        self.batch_size.setValue(config.batch_size)
        self.lr.setValue(config.lr)
        self.lr_schedule.setCurrentIndex(self.lr_schedule.findData(config.lr_schedule))
        self.ema_decay.setValue(config.ema_decay)
        self.p_uncond.setValue(config.p_uncond)
        self.sigma.setValue(config.sigma)
        self.limit.setValue(config.limit or 0)
        self.out_dir.setText(str(default_run_folder(self.model_kind, config.objective)))

    def config(self) -> TrainConfig:
        """The preset's recipe with the form's values; a UserFacingError names a bad one."""
        config = self._preset_config()
        config.epochs, config.hidden, config.batch_size = (
            self.epochs.value(),
            self.hidden.value(),
            self.batch_size.value(),
        )
        config.lr, config.lr_schedule = self.lr.value(), self.lr_schedule.currentData()
        config.ema_decay = self.ema_decay.value()
        config.p_uncond, config.sigma = self.p_uncond.value(), self.sigma.value()
        config.pure_noise = self.model_kind == "single-step" and self.pure_noise.isChecked()
        config.limit = self.limit.value() or None
        config.seed, config.device = self.seed.value(), self.device.currentText()
        config.log_every = 1  # every iteration reaches the plot, and Pause acts within one batch
        config.preview_seconds = self.preview_seconds
        config.validate()
        return config

    @property
    def folder(self) -> Path:
        return Path(self.out_dir.text()).expanduser()

    def set_data_dir(self, folder: str | None) -> None:
        """Train on MNIST in `folder`, or (None) where the app finds it: the bundled copy unless
        $DIFFUSION_STEPPER_DATA or a downloaded copy says otherwise."""
        self.data_dir = folder or None
        source = mnist_source(self.data_dir)
        self.data_label.setText(source.describe())
        self.data_label.setToolTip(str(source.folder))
        self.data_reset.setVisible(self.data_dir is not None)

    def _browse_data(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder with the four MNIST IDX files", self.data_dir or "")
        if folder:
            self.set_data_dir(folder)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the checkpoints", str(self.folder.parent))
        if folder:
            self.out_dir.setText(folder)
