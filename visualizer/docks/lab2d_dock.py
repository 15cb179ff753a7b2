"""The 2D lab dock: pick or draw the data, train a small MLP on it in seconds (the loss plotted
live) or take the exact field, then sample thousands of particles (Ctrl+Shift+Enter). A view over
core.toy2d: its fields are Toy2DConfig's, Toy2DSettings' and the experiments' options."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from diffusion_stepper.core.diffusion.rules.catalogue import EPS_SAMPLERS, FLOW_SAMPLERS
from diffusion_stepper.core.limits import LAB2D_GUIDANCE, LAB2D_ITERATIONS, LAB2D_PARTICLES, LAB2D_STEPS, TOY_CLASSES
from diffusion_stepper.core.toy2d.datasets import DATASETS
from diffusion_stepper.core.toy2d.drawn import resolve_dataset
from diffusion_stepper.core.toy2d.experiments import SourceSpec, Toy2DExperimentOptions, Toy2DRequest
from diffusion_stepper.core.toy2d.runs import DEFAULT_PARTICLES, DEFAULT_STEPS, Toy2DSettings
from diffusion_stepper.core.toy2d.training import Toy2DConfig
from diffusion_stepper.core.training_progress import LossHistory
from diffusion_stepper.visualizer.widgets.forms import button, float_box, row, spin_box
from diffusion_stepper.visualizer.widgets.plots import LossPlot


class DockLossPlot(LossPlot):
    """The Train tab's loss plot, asking for a dock's width: pyqtgraph's plots ask for 600 px, and
    the widest tab sets the whole dock column's width when the window opens."""

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(240, 160)


EXACT = ""  # the model list's key for "the exact field"


class Lab2DDock(QDockWidget):
    train_requested = Signal()
    sample_requested = Signal()
    draw_requested = Signal()

    def __init__(self, parent=None):
        super().__init__("2D lab", parent)
        self.setObjectName("lab2dDock")
        self.dataset = QComboBox()
        for name, dataset in DATASETS.items():
            self.dataset.addItem(dataset.title, name)
        self.dataset.setToolTip("The data: a built-in distribution, or one you drew (Draw…)")
        self.dataset.setCurrentIndex(self.dataset.findData("8-gaussians"))  # its exact field samples untrained
        self.objective = QComboBox()
        self.objective.addItem("flow matching (v̂)", "flow")
        self.objective.addItem("DDPM (ε̂)", "ddpm")
        self.classes = QCheckBox("condition on classes (for CFG)")
        self.iterations = spin_box(*LAB2D_ITERATIONS, Toy2DConfig.iterations, "Training iterations (5,000 ≈ 10 s here)")
        self.iterations.setSingleStep(500)
        self.model = QComboBox()
        self.model.setToolTip("What walks the particles: a model you trained, or the exact field of a Gaussian mixture")
        self.model.addItem("exact field (perfect model)", EXACT)
        self.sampler = QComboBox()
        self.steps = spin_box(*LAB2D_STEPS, 50, "Sampling steps")
        self.count = spin_box(*LAB2D_PARTICLES, DEFAULT_PARTICLES, "Particles")
        self.count.setSingleStep(500)
        self.label = spin_box(-1, TOY_CLASSES - 1, -1, "Guide every particle to this class with CFG (-1: no class)")
        self.label.setSpecialValueText("none")
        self.guidance = float_box(*LAB2D_GUIDANCE, 1.0, 0.5, "CFG's γ: 0 ignores the class, 1 is the conditional model")
        self.seed = spin_box(0, 2**31 - 1, tooltip="The same seed gives the same particles")
        self.loss_plot = DockLossPlot()  # the Train tab's: each iteration's loss and its smoothed curve
        self.loss_plot.setMinimumHeight(90)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("Train a model on the data (about 10 s), or sample the exact field of 8 Gaussians.")
        self.status.setWordWrap(True)
        self.train_button = button(
            "Train",
            self.train_requested.emit,
            "Train a small MLP on the data, the loss plotted live; it samples when done (press again to stop)",
        )
        self.sample_button = button("Sample", self.sample_requested.emit, "Sample particles (Ctrl+Shift+Return)")
        for combo in (self.dataset, self.objective, self.model, self.sampler):  # narrow docks fit small screens
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        draw = button("Draw…", self.draw_requested.emit, "Draw a distribution with the mouse (Ctrl+Shift+D)")
        form = QFormLayout()
        form.addRow("Data", row(self.dataset, draw))
        form.addRow("Objective", self.objective)
        form.addRow("", self.classes)
        form.addRow("Iterations", row(self.iterations, self.train_button))
        form.addRow("Model", self.model)
        form.addRow("Sampler", self.sampler)
        form.addRow("Steps", self.steps)
        form.addRow("Particles", self.count)
        form.addRow("Seed", self.seed)
        form.addRow("Class", row(self.label, QLabel("γ"), self.guidance))
        holder = QWidget()
        column = QVBoxLayout(holder)
        column.addLayout(form)
        column.addWidget(self.sample_button)
        column.addWidget(self.progress)
        column.addWidget(self.status)
        column.addWidget(self.loss_plot, 1)
        self.setWidget(holder)
        self._objectives: dict[str, str] = {EXACT: ""}  # model key -> its objective
        self.objective.currentIndexChanged.connect(self._sync_sampler)
        self.model.currentIndexChanged.connect(self._sync_sampler)
        self._sync_sampler()

    # --- what the dock asks for ---------------------------------------------------------------

    def chosen_dataset(self) -> str:
        """The data chosen: a built-in distribution's name, or a drawing's path."""
        return self.dataset.currentData()

    def model_objective(self) -> str:
        return self._objectives.get(self.model.currentData()) or self.objective.currentData()

    def _sync_sampler(self) -> None:
        """The step rules that suit the chosen model's objective, and that objective's default steps."""
        objective = self.model_objective()
        samplers = FLOW_SAMPLERS if objective == "flow" else EPS_SAMPLERS
        current = self.sampler.currentData()
        self.sampler.blockSignals(True)
        self.sampler.clear()
        for name, sampler in samplers.items():
            self.sampler.addItem(sampler.title, name)
        index = self.sampler.findData(current)
        self.sampler.setCurrentIndex(max(0, index))
        self.sampler.blockSignals(False)
        self.steps.setValue(DEFAULT_STEPS[objective])

    def training_config(self) -> Toy2DConfig:
        return Toy2DConfig(
            dataset=self.chosen_dataset(),
            objective=self.objective.currentData(),
            classes=self.classes.isChecked(),
            iterations=self.iterations.value(),
            seed=self.seed.value(),
        )

    def source_spec(self) -> SourceSpec:
        checkpoint = self.model.currentData() or None
        return SourceSpec(checkpoint, self.dataset.currentData(), self.objective.currentData())

    def sample_request(self) -> Toy2DRequest:
        label = self.label.value()
        settings = Toy2DSettings(
            count=self.count.value(),
            seed=self.seed.value(),
            steps=self.steps.value(),
            sampler=self.sampler.currentData(),
            label=None if label < 0 else label,
            guidance=self.guidance.value(),
        )
        return Toy2DRequest(self.source_spec(), settings)

    def experiment_options(self) -> Toy2DExperimentOptions:
        dataset = self.dataset.currentData()
        checkpoint = self.model.currentData() or None
        if checkpoint is None and resolve_dataset(dataset).mixture is None:
            dataset = Toy2DExperimentOptions.dataset  # no exact field here: the experiments use 8 Gaussians'
        return Toy2DExperimentOptions(
            checkpoint=checkpoint, dataset=dataset, count=self.count.value(), seed=self.seed.value()
        )

    # --- what the app tells it ----------------------------------------------------------------

    def add_drawn(self, path: Path) -> None:
        """A drawing joins the data list, chosen."""
        key = str(path)
        if self.dataset.findData(key) < 0:
            self.dataset.addItem(f"Drawn: {path.stem}", key)
        self.dataset.setCurrentIndex(self.dataset.findData(key))

    def add_model(self, sidecar: Path, title: str, objective: str) -> None:
        """A trained model joins the model list, chosen."""
        key = str(sidecar)
        self._objectives[key] = objective
        if self.model.findData(key) < 0:
            self.model.addItem(title, key)
        self.model.setCurrentIndex(self.model.findData(key))

    def start_training(self, iterations: int) -> None:
        self.loss_plot.clear_history()
        self.progress.setRange(0, iterations)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.train_button.setText("Stop")

    def show_loss(self, history: LossHistory) -> None:
        self.loss_plot.show_history(history)
        event = history.last
        self.progress.setValue(event.iteration)
        self.status.setText(f"iteration {event.iteration:,}: loss {event.loss:.4f} after {event.seconds:.1f} s")

    def shows_training(self) -> bool:
        """Whether the dock shows a training going on (started, and not ended since), hidden or not."""
        return not self.progress.isHidden()

    def end_training(self, message: str) -> None:
        self.progress.setVisible(False)
        self.train_button.setText("Train")
        self.status.setText(message)
