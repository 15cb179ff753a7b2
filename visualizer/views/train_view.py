"""The Train tab: choose a part B model and its recipe, train it, and watch the loss fall.

The settings are on the left (`TrainForm`); the loss curve, the readout and each epoch's samples
on the right. The run itself belongs to the `TrainingController`: this tab starts it and shows
what it reports. Picked epochs of the run can be sampled side by side from one seed.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QFileDialog, QGroupBox, QLabel, QLineEdit, QSplitter, QVBoxLayout, QWidget

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.mnist.sampling import MNIST_VALUE_RANGE
from diffusion_stepper.core.parsing import parse_int_list
from diffusion_stepper.core.training_progress import format_duration
from diffusion_stepper.visualizer.controllers.training import IDLE, PAUSED, TrainingController
from diffusion_stepper.visualizer.views.train_form import TrainForm
from diffusion_stepper.visualizer.widgets.equation import shrinkable
from diffusion_stepper.visualizer.widgets.forms import button, row
from diffusion_stepper.visualizer.widgets.panels import ImagePanel
from diffusion_stepper.visualizer.widgets.plots import LossPlot

PLOT_REFRESH_MS = 100  # the loss plot redraws at most this often, however fast events arrive


class TrainView(QWidget):
    compare_epochs_requested = Signal(str, list)  # run folder, epochs
    failed = Signal(str)  # a setting the run cannot start with (the controller reports the run's own errors)

    def __init__(self, training: TrainingController, parent=None):
        super().__init__(parent)
        self.training = training
        self.form = TrainForm()
        self.start_button = button("Start", self.start, "Train with these settings (Ctrl+T)")
        self.pause_button = button("Pause", training.toggle_pause)
        self.stop_button = button(
            "Stop", training.stop, "Stop after the current batch; the checkpoints of finished epochs stay"
        )
        self.resume_button = button(
            "Resume run…", self.ask_resume, "Continue a stopped run from its last checkpoint, up to the epochs above"
        )
        self.compare_epochs = QLineEdit("1, 5, 10, 20")
        self.compare_epochs.setToolTip("Epochs of this run to sample side by side, from the Sample dock's seed")
        self.compare_button = button("Compare epochs", self._request_epoch_comparison)
        compare_group = QGroupBox("Epoch comparison")
        QVBoxLayout(compare_group).addLayout(row(self.compare_epochs, self.compare_button))
        settings = QWidget()
        column = QVBoxLayout(settings)
        column.addWidget(self.form)
        column.addLayout(row(self.start_button, self.pause_button, self.stop_button, stretch_first=False))
        column.addWidget(self.resume_button)
        column.addWidget(compare_group)
        column.addStretch(1)

        self.loss_plot = LossPlot()
        self.log_scale = QCheckBox("log scale")
        self.log_scale.toggled.connect(self.loss_plot.set_log_scale)
        self.readout = shrinkable(QLabel("Choose a model and press Start."))
        self.readout.setObjectName("caption")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.samples = ImagePanel("x_t", "Samples after the latest epoch")
        self.checkpoint_label = QLabel("")
        self.checkpoint_label.setWordWrap(True)
        self.checkpoint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        plots = QSplitter(Qt.Orientation.Vertical)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.samples)
        plots.setSizes([420, 380])
        results = QWidget()
        results_column = QVBoxLayout(results)
        results_column.setContentsMargins(0, 0, 0, 0)
        results_column.addLayout(row(self.readout, self.log_scale))
        results_column.addWidget(plots, 1)
        results_column.addWidget(self.checkpoint_label)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(settings)
        splitter.addWidget(results)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(splitter)

        self.plot_timer = QTimer(self)
        self.plot_timer.setSingleShot(True)
        self.plot_timer.setInterval(PLOT_REFRESH_MS)
        self.plot_timer.timeout.connect(lambda: self.loss_plot.show_history(self.training.history))
        training.state_changed.connect(self._show_state)
        training.readout_changed.connect(self.readout.setText)
        training.readout_changed.connect(self.readout.setToolTip)  # the whole line, where the label cuts it
        training.launched.connect(self._on_launched)
        training.progressed.connect(self._schedule_redraw)
        training.epoch_finished.connect(self._on_epoch)
        self.form.apply_preset()
        self._show_state(training.state)

    # --- starting -------------------------------------------------------------------------------

    def start(self) -> bool:
        """Train a new run into the folder field with the form's settings."""
        try:
            config = self.form.config()
        except UserFacingError as exc:
            self.failed.emit(str(exc))
            return False
        return self.training.start(config, self.form.folder)

    def ask_resume(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A training run's folder", str(self.form.folder.parent))
        if folder:
            self.resume(folder)

    def resume(self, run_dir: str) -> bool:
        """Continue a run from its last checkpoint, to the Epochs field's count."""
        if not self.training.resume(run_dir, self.form.epochs.value(), self.form.device.currentText()):
            return False
        self.form.out_dir.setText(str(run_dir))
        return True

    # --- what the run reports -------------------------------------------------------------------

    def _on_launched(self, out_dir) -> None:
        self.loss_plot.clear_history()
        self.samples.show_pending()
        self.checkpoint_label.setText(f"Checkpoints go to {out_dir}")

    def _schedule_redraw(self) -> None:
        if not self.plot_timer.isActive():
            self.plot_timer.start()

    def _on_epoch(self, event) -> None:
        if event.samples is not None:
            self.samples.set_title(f"Samples after epoch {event.epoch}: {event.sampling}")
            self.samples.show_images(event.samples, tuple(MNIST_VALUE_RANGE), event.sample_labels, "x_t")
        self.checkpoint_label.setText(
            f"Epoch {event.epoch}: mean loss {event.mean_loss:.4f} in {format_duration(event.seconds)}; "
            f"saved {event.checkpoint}"
        )

    def _show_state(self, state: str) -> None:
        idle = state == IDLE
        self.start_button.setEnabled(idle)
        self.resume_button.setEnabled(idle)
        self.pause_button.setEnabled(not idle)
        self.stop_button.setEnabled(not idle)
        self.pause_button.setText("Resume" if state == PAUSED else "Pause")
        self.form.setEnabled(idle)

    # --- epoch comparison -----------------------------------------------------------------------

    def _request_epoch_comparison(self) -> None:
        if self.training.run_dir is None:
            self.failed.emit("train a run first (or resume one): the comparison samples its epoch checkpoints")
            return
        try:
            epochs = parse_int_list(self.compare_epochs.text())
        except ValueError as exc:
            self.failed.emit(f"epochs: {exc}")
            return
        self.compare_epochs_requested.emit(str(self.training.run_dir), epochs)
