"""The Train tab's settings: the model, its objective and the recipe, prefilled from a preset.

A view over `core.mnist.training.TrainConfig`: each field is one of its fields (and one of
`diffusion-stepper train`'s flags); what the form does not show stays the preset's.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QLabel, QLineEdit, QWidget

from diffusion_stepper.core.mnist.training import PRESETS, TrainConfig, default_run_folder, preset_config
from diffusion_stepper.visualizer.widgets.forms import button, float_box, row, show_rows, spin_box

PRESET_LABELS = {"course": "Course recipe", "quick": "Quick (CPU, ~1 min)"}
MODEL_LABELS = {"class": "class-conditioned", "time": "time-conditioned", "single-step": "single-step denoiser"}


class TrainForm(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.preset = QComboBox()
        for key in PRESETS:
            self.preset.addItem(PRESET_LABELS.get(key, key), key)
        self.preset.setToolTip("Course: the hyperparameters of CS180 part B. Quick: a small model on 3,000 digits.")
        self.model = QComboBox()
        for kind, label in MODEL_LABELS.items():
            self.model.addItem(label, kind)
        self.objective = QComboBox()
        self.objective.addItem("DDPM", "ddpm")
        self.objective.addItem("flow matching", "flow")
        self.epochs = spin_box(1, 1000)
        self.hidden = spin_box(1, 512, tooltip="The UNet's hidden size D")
        self.batch_size = spin_box(1, 8192)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr_decay = QCheckBox("decay to 0.1× by the last epoch")
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
        self.seed = spin_box(0, 2**31 - 1)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
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
            ("", self.lr_decay),
            ("Class dropout", self.p_uncond),
            ("Noise σ", self.sigma),
            ("Input", self.pure_noise),
            ("Digits", self.limit),
            ("Seed", self.seed),
            ("Device", self.device),
        ):
            self.rows.addRow(label, field)
        # the run's folder on a line of its own, the form's whole width: a path needs the room
        self.rows.addRow(QLabel("Folder for the checkpoints"))
        self.rows.addRow(row(self.out_dir, browse))
        self.preset.currentIndexChanged.connect(self.apply_preset)
        self.model.currentIndexChanged.connect(self.apply_preset)
        self.objective.currentIndexChanged.connect(self.apply_preset)

    @property
    def model_kind(self) -> str:
        return self.model.currentData()

    def is_shown(self, field: QWidget) -> bool:
        return self.rows.isRowVisible(field)

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
        self.lr_decay.setChecked(config.lr_decay)
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
        config.lr, config.lr_decay = self.lr.value(), self.lr_decay.isChecked()
        config.p_uncond, config.sigma = self.p_uncond.value(), self.sigma.value()
        config.pure_noise = self.model_kind == "single-step" and self.pure_noise.isChecked()
        config.limit = self.limit.value() or None
        config.seed, config.device = self.seed.value(), self.device.currentText()
        config.log_every = 1  # every iteration reaches the plot, and Pause acts within one batch
        config.validate()
        return config

    @property
    def folder(self) -> Path:
        return Path(self.out_dir.text()).expanduser()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the checkpoints", str(self.folder.parent))
        if folder:
            self.out_dir.setText(folder)
