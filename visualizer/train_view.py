"""The Train tab: choose a part B model and its recipe, train it on a worker, watch the loss.

The training generator (`core.training.train`) runs on a `Job`. Pause holds the worker between
two loss events; Stop closes the generator, so only whole epochs are ever saved and the last
checkpoint stays as it was. Each epoch's sample grid appears here and its checkpoint joins the
Sample dock's model list; picked epochs can be sampled side by side from one seed.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.errors import UserFacingError
from core.mnist_sampling import MNIST_VALUE_RANGE
from core.parsing import parse_int_list
from core.training import PRESETS, EpochEvent, LossEvent, TrainConfig, config_for_resume, preset_config, train
from core.training_progress import LossHistory, format_duration
from visualizer.panels import ImagePanel
from visualizer.worker import DONE as JOB_DONE
from visualizer.worker import Job

PRESET_LABELS = {"course": "Course recipe", "quick": "Quick (CPU, ~1 min)"}
OBJECTIVES = ("ddpm", "flow")
PLOT_REFRESH_MS = 100  # the loss plot redraws at most this often, however fast events arrive
RAW_COLOUR = (140, 190, 255, 150)
SMOOTH_COLOUR = (255, 165, 60)

# training states
IDLE, TRAINING, PAUSED = "idle", "training", "paused"


WORK_FOLDER = Path.home() / "diffusion-stepper-runs"  # where the app puts what it makes by default


def default_run_folder(model: str, objective: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"mnist-{model}" if model == "single-step" else f"mnist-{model}-{objective}"
    return WORK_FOLDER / f"{name}-{stamp}"


def training_items(config: TrainConfig, out_dir: Path, data_dir: Optional[str], resume_from: Optional[Path]):
    """Load MNIST on the worker thread, then train."""
    from core.mnist_data import load_mnist

    data = load_mnist("train", data_dir)
    yield from train(config, data, out_dir, resume_from=resume_from)


class LossPlot(pg.PlotWidget):
    """Raw and smoothed loss per iteration, epoch markers, log scale on a toggle."""

    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.setTitle("Training loss")
        self.setLabel("bottom", "iteration")
        self.setLabel("left", "loss")
        self.addLegend(offset=(-10, 30))
        self.raw = pg.PlotDataItem(pen=pg.mkPen(RAW_COLOUR, width=1), name="per iteration")
        self.smoothed = pg.PlotDataItem(pen=pg.mkPen(SMOOTH_COLOUR, width=2.5), name="smoothed")
        self.addItem(self.raw)
        self.addItem(self.smoothed)
        self.markers: list[pg.InfiniteLine] = []

    def show_history(self, history: LossHistory) -> None:
        x, raw, smoothed = history.arrays()
        self.raw.setData(x, raw)
        self.smoothed.setData(x, smoothed)
        for iteration, epoch in history.epoch_ends[len(self.markers):]:
            marker = pg.InfiniteLine(
                iteration, angle=90, movable=False, pen=pg.mkPen((200, 200, 200), style=Qt.PenStyle.DashLine),
                label=f"epoch {epoch}", labelOpts={"position": 0.97, "color": (220, 220, 220)},
            )
            self.addItem(marker)
            self.markers.append(marker)

    def clear_history(self) -> None:
        for marker in self.markers:
            self.removeItem(marker)
        self.markers = []
        self.raw.setData([], [])
        self.smoothed.setData([], [])

    def set_log_scale(self, on: bool) -> None:
        self.setLogMode(y=on)


class TrainView(QWidget):
    """Settings on the left; the loss curve, readout and the latest epoch's samples on the right."""

    checkpoint_saved = Signal(str)  # the sidecar path of a new epoch checkpoint
    failed = Signal(str)
    compare_epochs_requested = Signal(str, list)  # run folder, epochs
    state_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.state = IDLE
        self.job: Optional[Job] = None
        self.config: Optional[TrainConfig] = None
        self.run_dir: Optional[Path] = None
        self.history = LossHistory()
        self.last_checkpoint: Optional[Path] = None
        self.data_dir: Optional[str] = None  # None: --data-dir's default ($DIFFUSION_STEPPER_DATA or the cache)
        self._build_form()
        self._build_results()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.form_box)
        splitter.addWidget(self.results)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(splitter)
        self.plot_timer = QTimer(self)
        self.plot_timer.setSingleShot(True)
        self.plot_timer.setInterval(PLOT_REFRESH_MS)
        self.plot_timer.timeout.connect(self._redraw)
        self.apply_preset()
        self._update_buttons()

    # --- construction ---------------------------------------------------------------------------

    def _build_form(self) -> None:
        self.preset = QComboBox()
        for key in PRESETS:
            self.preset.addItem(PRESET_LABELS[key], key)
        self.preset.setToolTip("Course recipe: the hyperparameters of CS180 part B. Quick: a small model on 3,000 digits.")
        self.model = QComboBox()
        for kind, label in (("class", "class-conditioned"), ("time", "time-conditioned"), ("single-step", "single-step denoiser")):
            self.model.addItem(label, kind)
        self.objective = QComboBox()
        self.objective.addItem("DDPM", "ddpm")
        self.objective.addItem("flow matching", "flow")
        self.epochs = _spin(1, 1000)
        self.hidden = _spin(1, 512)
        self.hidden.setToolTip("The UNet's hidden size D")
        self.batch_size = _spin(1, 8192)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr_decay = QCheckBox("decay to 0.1× by the last epoch")
        self.p_uncond = QDoubleSpinBox()
        self.p_uncond.setRange(0.0, 0.99)
        self.p_uncond.setSingleStep(0.05)
        self.p_uncond.setToolTip("How often the class is dropped in training, so the model also learns the unconditional estimate CFG needs")
        self.sigma = QDoubleSpinBox()
        self.sigma.setRange(0.0, 5.0)
        self.sigma.setSingleStep(0.1)
        self.pure_noise = QCheckBox("pure noise z = ε (learns the average digit)")
        self.pure_noise.setToolTip("Part B's \"denoising pure noise\": the input is noise alone")
        self.limit = _spin(0, 60000)
        self.limit.setSpecialValueText("all 60,000")
        self.limit.setToolTip("Train on the first N digits only")
        self.seed = _spin(0, 2**31 - 1)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.out_dir = QLineEdit()
        self.out_dir.setToolTip("Checkpoints are written here, one per epoch")
        browse = QPushButton("…")
        browse.setMaximumWidth(32)
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir, 1)
        out_row.addWidget(browse)

        form = QFormLayout()
        form.addRow("Preset", self.preset)
        form.addRow("Model", self.model)
        form.addRow("Objective", self.objective)
        form.addRow("Epochs", self.epochs)
        form.addRow("Hidden D", self.hidden)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("", self.lr_decay)
        form.addRow("Class dropout", self.p_uncond)
        form.addRow("Noise σ", self.sigma)
        form.addRow("Input", self.pure_noise)
        form.addRow("Digits", self.limit)
        form.addRow("Seed", self.seed)
        form.addRow("Device", self.device)
        form.addRow("Folder", out_row)
        self.form = form

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Train with these settings (Ctrl+T)")
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current batch; the checkpoints of finished epochs stay")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume run…")
        self.resume_button.setToolTip("Continue a stopped run from its last checkpoint, up to the epochs above")
        self.resume_button.clicked.connect(self.ask_resume)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)

        self.compare_epochs = QLineEdit("1, 5, 10, 20")
        self.compare_epochs.setToolTip("Epochs of this run to sample side by side, from the Sample dock's seed")
        self.compare_button = QPushButton("Compare epochs")
        self.compare_button.clicked.connect(self._request_epoch_comparison)
        compare_row = QHBoxLayout()
        compare_row.addWidget(self.compare_epochs, 1)
        compare_row.addWidget(self.compare_button)

        self.form_box = QWidget()
        box = QVBoxLayout(self.form_box)
        box.addLayout(form)
        box.addLayout(buttons)
        box.addWidget(self.resume_button)
        compare_group = QGroupBox("Epoch comparison")
        compare_layout = QVBoxLayout(compare_group)
        compare_layout.addLayout(compare_row)
        box.addWidget(compare_group)
        box.addStretch(1)

        self.preset.currentIndexChanged.connect(self.apply_preset)
        self.model.currentIndexChanged.connect(self.apply_preset)
        self.objective.currentIndexChanged.connect(self.apply_preset)

    def _build_results(self) -> None:
        self.loss_plot = LossPlot()
        self.log_scale = QCheckBox("log scale")
        self.log_scale.toggled.connect(self.loss_plot.set_log_scale)
        self.readout = QLabel("Choose a model and press Start.")
        self.readout.setObjectName("caption")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.samples = ImagePanel("x_t", "Samples after the latest epoch")
        self.checkpoint_label = QLabel("")
        self.checkpoint_label.setWordWrap(True)
        self.checkpoint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(self.readout, 1)
        top.addWidget(self.log_scale)
        self.results = QWidget()
        layout = QVBoxLayout(self.results)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.loss_plot)
        splitter.addWidget(self.samples)
        splitter.setSizes([420, 380])
        layout.addWidget(splitter, 1)
        layout.addWidget(self.checkpoint_label)

    # --- settings -------------------------------------------------------------------------------

    @property
    def model_kind(self) -> str:
        return self.model.currentData()

    def _preset_config(self) -> TrainConfig:
        single_step = self.model_kind == "single-step"
        return preset_config(self.preset.currentData(), self.model_kind, None if single_step else self.objective.currentData())

    def apply_preset(self) -> None:
        """Fill the form with the chosen preset's values for this model and objective."""
        single_step = self.model_kind == "single-step"
        self.form.setRowVisible(self.objective, not single_step)
        self.form.setRowVisible(self.sigma, single_step)
        self.form.setRowVisible(self.pure_noise, single_step)
        self.form.setRowVisible(self.p_uncond, self.model_kind == "class")
        config = self._preset_config()
        self.epochs.setValue(config.epochs)
        self.hidden.setValue(config.hidden)
        self.batch_size.setValue(config.batch_size)
        self.lr.setValue(config.lr)
        self.lr_decay.setChecked(config.lr_decay)
        self.p_uncond.setValue(config.p_uncond)
        self.sigma.setValue(config.sigma)
        self.limit.setValue(config.limit or 0)
        if self.state == IDLE:
            self.out_dir.setText(str(default_run_folder(self.model_kind, config.objective)))

    def config_from_form(self) -> TrainConfig:
        """The preset's recipe with the form's values; what the form does not show stays the preset's."""
        single_step = self.model_kind == "single-step"
        config = self._preset_config()
        config.epochs, config.hidden, config.batch_size = self.epochs.value(), self.hidden.value(), self.batch_size.value()
        config.lr, config.lr_decay = self.lr.value(), self.lr_decay.isChecked()
        config.p_uncond, config.sigma = self.p_uncond.value(), self.sigma.value()
        config.pure_noise = single_step and self.pure_noise.isChecked()
        config.limit = self.limit.value() or None
        config.seed, config.device = self.seed.value(), self.device.currentText()
        config.log_every = 1  # every iteration reaches the plot, and Pause acts within one batch
        config.validate()
        return config

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the checkpoints", str(Path(self.out_dir.text()).parent))
        if folder:
            self.out_dir.setText(folder)

    # --- training -------------------------------------------------------------------------------

    def start(self) -> bool:
        """Train a new run into the folder field with the form's settings."""
        if self.state != IDLE:
            self.failed.emit("a training run is already going: stop it first")
            return False
        try:
            config = self.config_from_form()
        except UserFacingError as exc:
            self.failed.emit(str(exc))
            return False
        out_dir = Path(self.out_dir.text()).expanduser()
        return self._launch(config, out_dir, None)

    def ask_resume(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A training run's folder", str(Path(self.out_dir.text()).parent))
        if folder:
            self.resume(folder)

    def resume(self, run_dir: str | Path) -> bool:
        """Continue a run from its last checkpoint, to the Epochs field's count."""
        if self.state != IDLE:
            self.failed.emit("a training run is already going: stop it first")
            return False
        try:
            config = config_for_resume(run_dir, epochs=self.epochs.value(), device=self.device.currentText())
        except UserFacingError as exc:
            self.failed.emit(str(exc))
            return False
        config.log_every = 1
        self.out_dir.setText(str(run_dir))
        return self._launch(config, Path(run_dir), Path(run_dir))

    def _launch(self, config: TrainConfig, out_dir: Path, resume_from: Optional[Path]) -> bool:
        self.config, self.run_dir = config, out_dir
        self.history = LossHistory()
        self.loss_plot.clear_history()
        self.samples.show_pending()
        self.checkpoint_label.setText(f"Checkpoints go to {out_dir}")
        self.readout.setText("Loading MNIST…")
        job = Job(partial(training_items, config, out_dir, self.data_dir, resume_from), self)
        job.worker.item.connect(self._on_event)
        job.worker.finished.connect(self._on_finished)
        job.worker.failed.connect(self._on_failed)
        job.worker.held.connect(self._on_held)
        self.job = job
        self._set_state(TRAINING)
        job.start()
        return True

    def toggle_pause(self) -> None:
        if self.job is None:
            return
        if self.state == TRAINING:
            self.job.pause()
            self._set_state(PAUSED)
            self.readout.setText("Pausing after this batch…")
        elif self.state == PAUSED:
            self.job.resume()
            self._set_state(TRAINING)

    def _on_held(self) -> None:
        if self.state == PAUSED:
            self.readout.setText(self.history.readout(self.config.epochs, self.config.batch_size) + " · paused")

    def stop(self) -> None:
        """Stop after the current batch; finished epochs keep their checkpoints."""
        if self.job is not None:
            self.job.cancel()
            self.readout.setText("Stopping after this batch…")

    def shutdown(self) -> None:
        """Stop and wait for the worker, for closing the window."""
        if self.job is not None:
            self.job.stop()

    def _on_event(self, event) -> None:
        if isinstance(event, LossEvent):
            self.history.add_losses(event)
            if self.state == TRAINING:
                self.readout.setText(self.history.readout(self.config.epochs, self.config.batch_size))
        elif isinstance(event, EpochEvent):
            self.history.add_epoch(event)
            self.last_checkpoint = event.checkpoint
            if event.samples is not None:
                self.samples.set_title(f"Samples after epoch {event.epoch} (seed {self.config.seed})")
                self.samples.show_images(event.samples, tuple(MNIST_VALUE_RANGE), event.sample_labels, "x_t")
            self.checkpoint_label.setText(
                f"Epoch {event.epoch}: mean loss {event.mean_loss:.4f} in {format_duration(event.seconds)}; saved {event.checkpoint}"
            )
            self.checkpoint_saved.emit(str(event.checkpoint))
        if not self.plot_timer.isActive():
            self.plot_timer.start()

    def _redraw(self) -> None:
        self.loss_plot.show_history(self.history)

    def _on_finished(self, outcome: str) -> None:
        last = self.history.last
        self._end_job()
        kept = f"last checkpoint {self.last_checkpoint}" if self.last_checkpoint else "no epoch finished, so no checkpoint"
        if outcome == JOB_DONE:
            self.readout.setText(f"Finished {self.config.epochs} epoch{'s' if self.config.epochs > 1 else ''} · {kept}")
        else:
            where = f" at epoch {last.epoch}, iteration {last.iteration}" if last else ""
            self.readout.setText(f"Stopped{where} · {kept}")

    def _on_failed(self, message: str) -> None:
        self._end_job()
        kept = f"; the last checkpoint is intact: {self.last_checkpoint}" if self.last_checkpoint else ""
        self.readout.setText(f"Training stopped: {message}")
        self.failed.emit(f"Training stopped: {message}{kept}")

    def _end_job(self) -> None:
        job, self.job = self.job, None
        if job is not None:
            job.stop()
            job.deleteLater()
        self._redraw()
        self._set_state(IDLE)

    def _set_state(self, state: str) -> None:
        self.state = state
        self._update_buttons()
        self.state_changed.emit(state)

    def _update_buttons(self) -> None:
        idle = self.state == IDLE
        self.start_button.setEnabled(idle)
        self.resume_button.setEnabled(idle)
        self.pause_button.setEnabled(not idle)
        self.stop_button.setEnabled(not idle)
        self.pause_button.setText("Resume" if self.state == PAUSED else "Pause")
        for widget in (self.preset, self.model, self.objective, self.epochs, self.hidden, self.batch_size, self.lr,
                       self.lr_decay, self.p_uncond, self.sigma, self.pure_noise, self.limit, self.seed, self.device, self.out_dir):
            widget.setEnabled(idle)

    # --- epoch comparison -----------------------------------------------------------------------

    def _request_epoch_comparison(self) -> None:
        if self.run_dir is None:
            self.failed.emit("train a run first (or resume one): the comparison samples its epoch checkpoints")
            return
        try:
            epochs = parse_int_list(self.compare_epochs.text())
        except ValueError as exc:
            self.failed.emit(f"epochs: {exc}")
            return
        self.compare_epochs_requested.emit(str(self.run_dir), epochs)


def _spin(low: int, high: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    return spin
