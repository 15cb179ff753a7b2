"""The Sample dock: pick a model and its settings, then Generate (Enter) or sweep a guidance list.
A view over `core.mnist.sampling.SampleRequest` (each field is one of its fields), or for a
diffusers DDPM/DDIM folder over `core.own_model.diffusers_sampling.DiffusersSampleRequest`."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDockWidget, QFormLayout, QLineEdit, QVBoxLayout, QWidget

from diffusion_stepper.core.devices import DEVICE_CHOICES
from diffusion_stepper.core.diffusion.rules.catalogue import EPS_SAMPLERS, FLOW_SAMPLERS
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.mnist import bundled
from diffusion_stepper.core.mnist.checkpoints import display_name, read_sidecar, resolve_checkpoint, sampler_of
from diffusion_stepper.core.mnist.experiments import ExperimentOptions
from diffusion_stepper.core.mnist.sampling import DEFAULT_GUIDANCE, DEFAULT_NUM_SAMPLES, SampleRequest
from diffusion_stepper.core.own_model.diffusers_folder import FolderConfig, diffusers_folder_of, read_folder
from diffusion_stepper.core.own_model.diffusers_sampling import DiffusersSampleRequest
from diffusion_stepper.core.parsing import parse_float_list, parse_int_list
from diffusion_stepper.visualizer.widgets.forms import button, float_box, row, show_rows, spin_box

MODEL_DEFAULT_STEPS = 0  # the steps box's "use the model's own number of steps"


class SampleDock(QDockWidget):
    generate_requested = Signal()
    sweep_requested = Signal()
    cancel_requested = Signal()
    open_checkpoint_requested = Signal()

    def __init__(self, parent=None):
        super().__init__("Sample", parent)
        self.setObjectName("sampleDock")
        self.model = QComboBox()
        self.model.setToolTip(
            "A bundled model, one you trained, or a diffusers DDPM/DDIM folder "
            "(File ▸ Add checkpoint, or drop it on the window)"
        )
        self._sidecars: dict[str, dict] = {}  # model key -> sidecar
        self._folders: dict[str, FolderConfig] = {}  # model key -> a diffusers folder's checked configs
        for name, sidecar_path in bundled.bundled_models().items():
            self._add_model(name, name, read_sidecar(sidecar_path))
        self.classes = QLineEdit("0-9")
        self.classes.setToolTip("Digits to sample: 0-9, or a list like 3,3,7")
        self.per_class = spin_box(1, 20)
        self.num = spin_box(1, 100, DEFAULT_NUM_SAMPLES)
        self.guidance = float_box(
            0.0,
            50.0,
            DEFAULT_GUIDANCE,
            0.5,
            "Classifier-free guidance scale γ (0: unconditional, 1: conditional, >1: guided)",
        )
        self.steps = spin_box(MODEL_DEFAULT_STEPS, 1000, tooltip="Sampling steps; fewer steps use strided timesteps")
        self.steps.setSpecialValueText("model default")
        self.seed = spin_box(0, 2**31 - 1, tooltip="The same seed gives the same frames")
        self.device = QComboBox()
        self.device.addItems(DEVICE_CHOICES)
        self.noisy_test = QCheckBox("noised test digits")
        self.noisy_test.setToolTip(
            "Denoise MNIST test digits noised at σ instead of pure noise "
            "(needs MNIST: diffusion-stepper download mnist)"
        )
        self.sigma = float_box(0.0, 3.0, 0.5, 0.1, "The noise level σ added to the test digits")
        self.x0_clip = QComboBox()
        self.x0_clip.addItem("model default", None)
        self.x0_clip.addItem("none (the course's formula)", "none")
        self.x0_clip.addItem("clip to [0, 1]", "static")
        self.x0_clip.setToolTip("DDPM: keep the clean estimate x̂₀ inside the data range before each update")
        self.sampler = QComboBox()
        self.sampler.setToolTip(
            "The step rule that walks the model from noise to a digit (Experiments ▸ Samplers race)"
        )
        self.sampler.currentIndexChanged.connect(self._update_eta)
        self.eta = float_box(0.0, 1.0, 0.0, 0.1, "DDIM's noise scale η: 0 deterministic, 1 the DDPM posterior's noise")
        self.sweep = QLineEdit("0, 1, 5, 10")
        self.sweep.setToolTip("Guidance scales to sample side by side in the Compare view")

        self.generate_button = button("Generate  (Enter)", self.generate_requested)
        self.generate_button.setDefault(True)
        self.cancel_button = button("Cancel  (Esc)", self.cancel_requested)
        self.cancel_button.setEnabled(False)
        self.sweep_button = button(
            "Sweep γ", self.sweep_requested, "One run per guidance scale, shown side by side in the Compare view"
        )
        self.sweep_row = row(self.sweep, self.sweep_button)

        self.form = QFormLayout()
        for label, field in (
            ("Model", self.model),
            ("Digits", self.classes),
            ("Per digit", self.per_class),
            ("Samples", self.num),
            ("Guidance γ", self.guidance),
            ("Steps", self.steps),
            ("Sampler", self.sampler),
            ("DDIM η", self.eta),
            ("x̂₀ clip", self.x0_clip),
            ("Input", self.noisy_test),
            ("Noise σ", self.sigma),
            ("Seed", self.seed),
            ("Device", self.device),
            ("Compare γ", self.sweep_row),
        ):
            self.form.addRow(label, field)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addLayout(self.form)
        layout.addLayout(row(self.generate_button, self.cancel_button, stretch_first=False))
        layout.addWidget(button("Add checkpoint…", self.open_checkpoint_requested))
        layout.addStretch(1)
        self.setWidget(content)
        self.model.currentIndexChanged.connect(self._update_fields)
        self.select_model(bundled.DEFAULT_MODEL)
        self._update_fields()

    # --- models ---------------------------------------------------------------------------------

    def _add_model(self, key: str, label: str, sidecar: dict) -> None:
        self._sidecars[key] = sidecar
        self.model.addItem(label, key)

    def add_checkpoint(self, path: str | Path, select: bool = True) -> str:
        """Add a checkpoint file (or its sidecar), or a diffusers folder (or a file in it), to the model
        list, and select it unless told not to."""
        folder = diffusers_folder_of(path)
        if folder is not None:
            key = str(folder)
            if key not in self._folders:
                self._folders[key] = config = read_folder(folder)
                self.model.addItem(f"{config.name} (diffusers)", key)
                self.model.setItemData(self.model.count() - 1, config.describe(), Qt.ItemDataRole.ToolTipRole)
        else:
            sidecar_path = resolve_checkpoint(path)
            key = str(sidecar_path)
            if key not in self._sidecars:
                self._add_model(key, display_name(sidecar_path, sidecar_path), read_sidecar(sidecar_path))
        if select:
            self.model.setCurrentIndex(self.model.findData(key))
        return key

    def class_models(self) -> list[tuple[str, str]]:
        """(label, key) of the class-conditioned models in the list, the selected one first."""
        models = [
            (self.model.itemText(index), self.model.itemData(index))
            for index in range(self.model.count())
            if self._sidecars.get(self.model.itemData(index), {}).get("architecture", {}).get("name") == "class"
        ]
        return sorted(models, key=lambda model: model[1] != self.model_key)

    def select_model(self, key: str) -> bool:
        index = self.model.findData(key)
        if index >= 0:
            self.model.setCurrentIndex(index)
        return index >= 0

    @property
    def model_key(self) -> str | None:
        return self.model.currentData()

    def settings(self) -> dict:
        """What the dock keeps for the next launch, by the settings file's keys: the model chosen."""
        return {"model": self.model_key}

    def restore(self, settings: dict) -> None:
        if settings.get("model"):
            self.select_model(str(settings["model"]))

    @property
    def sidecar(self) -> dict:
        return self._sidecars.get(self.model_key or "", {})

    @property
    def folder(self) -> FolderConfig | None:
        """The selected diffusers folder (None: an MNIST model is selected)."""
        return self._folders.get(self.model_key or "")

    @property
    def is_class_conditioned(self) -> bool:
        return self.sidecar.get("architecture", {}).get("name") == "class"

    @property
    def is_single_step(self) -> bool:
        return self.sidecar.get("objective", {}).get("name") == "single-step"

    @property
    def objective_name(self) -> str | None:
        return self.sidecar.get("objective", {}).get("name")

    @property
    def model_sampler(self) -> str | None:
        """The step rule the selected model samples with unless told (None: it has none)."""
        if self.folder is not None:
            return self.folder.default_sampler
        return sampler_of(self.sidecar) if self.sidecar else None

    def _offer_samplers(self) -> None:
        """The samplers that suit the selected model (ε-model samplers for DDPM, flow's for flow),
        after "model default", which names the model's own."""
        table = FLOW_SAMPLERS if self.objective_name == "flow" else EPS_SAMPLERS
        chosen = self.sampler.currentData()
        self.sampler.blockSignals(True)
        self.sampler.clear()
        own = table.get(self.model_sampler)
        self.sampler.addItem(f"model default ({own.title})" if own else "model default", None)
        for name, sampler in table.items():
            self.sampler.addItem(sampler.title, name)
            self.sampler.setItemData(self.sampler.count() - 1, sampler.summary, Qt.ItemDataRole.ToolTipRole)
        self.sampler.setCurrentIndex(0 if chosen is None else max(0, self.sampler.findData(chosen)))
        self.sampler.blockSignals(False)
        self._update_eta()

    @property
    def chosen_sampler(self) -> str:
        """The step rule Generate will use: the one picked, or the model's own."""
        return self.sampler.currentData() or self.model_sampler

    def _update_eta(self) -> None:
        show_rows(self.form, {self.eta: self.chosen_sampler == "ddim" and self.form.isRowVisible(self.sampler)})

    def _update_fields(self) -> None:
        """Show only the settings the selected model takes."""
        self._offer_samplers()
        conditioned = self.is_class_conditioned
        show_rows(
            self.form,
            {
                self.classes: conditioned,
                self.per_class: conditioned,
                self.guidance: conditioned,
                self.sweep_row: conditioned,
                self.num: not conditioned,
                self.steps: not self.is_single_step,
                self.sampler: not self.is_single_step,
                self.x0_clip: self.sidecar.get("objective", {}).get("name") == "ddpm",
                self.noisy_test: self.is_single_step,
                self.sigma: self.is_single_step,
            },
        )
        self.sweep_button.setEnabled(conditioned)
        self._update_eta()

    # --- requests -------------------------------------------------------------------------------

    @property
    def chosen_steps(self) -> int | None:
        """The steps box, or None for each model's own."""
        return None if self.steps.value() == MODEL_DEFAULT_STEPS else self.steps.value()

    def request(self, guidance: float | None = None) -> SampleRequest | DiffusersSampleRequest:
        """The settings as a core request; bad text raises a one-line UserFacingError."""
        if self.model_key is None:
            raise UserFacingError("no model to sample: add a checkpoint (File ▸ Add checkpoint)")
        if self.folder is not None:  # no classes, guidance, x̂₀ choice or test digits: those rows are hidden
            return DiffusersSampleRequest(
                model_dir=self.model_key,
                sampler=self.sampler.currentData(),  # None: the scheduler's own
                steps=self.chosen_steps,
                eta=self.eta.value() if self.chosen_sampler == "ddim" else None,
                num=self.num.value(),
                seed=self.seed.value(),
                device=self.device.currentText(),
            )
        request = SampleRequest(checkpoint=self.model_key, seed=self.seed.value(), device=self.device.currentText())
        if not self.is_single_step:
            request.steps = self.chosen_steps
            request.sampler = self.sampler.currentData()  # None: the model's own
            if self.chosen_sampler == "ddim":
                request.eta = self.eta.value()
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

    def experiment_options(self) -> ExperimentOptions:
        """The part B experiments with this dock's seed, device and steps (the bundled models;
        test digits from MNIST's default place, or the ten shipped in resources/data)."""
        return ExperimentOptions(seed=self.seed.value(), device=self.device.currentText(), steps=self.chosen_steps)

    def set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
