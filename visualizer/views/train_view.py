"""The Train tab: choose a part B model and its recipe, train it, and watch the loss fall.

The settings are on the left (`TrainForm`); the loss curve, the readout and the samples on the
right, redrawn every few seconds of training from one seed so the class sees noise turn into
digits. The run itself belongs to the `TrainingController`: this tab starts it and shows what it
reports. Saved epochs of any run on disk can be sampled side by side from one seed.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.mnist.checkpoints import saved_epochs, training_runs
from diffusion_stepper.core.mnist.experiments import spread_of_epochs
from diffusion_stepper.core.mnist.sampling import MNIST_VALUE_RANGE
from diffusion_stepper.core.parsing import format_int_list, parse_int_list
from diffusion_stepper.core.paths import work_folder
from diffusion_stepper.core.training_progress import format_duration
from diffusion_stepper.visualizer.controllers.training import IDLE, PAUSED, TrainingController
from diffusion_stepper.visualizer.views.train_form import TrainForm
from diffusion_stepper.visualizer.widgets.equation import shrinkable
from diffusion_stepper.visualizer.widgets.fitted_label import FittedLabel
from diffusion_stepper.visualizer.widgets.forms import button, row
from diffusion_stepper.visualizer.widgets.panels import ImagePanel
from diffusion_stepper.visualizer.widgets.plots import NORMAL_TEXT_PX, PLOT_REFRESH_MS, LossPlot


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
        self.keep_button = button(
            "Keep training",
            self.keep_training,
            "Train this run for about another minute from its last checkpoint (Ctrl+K): the loss curve and the "
            "samples go on",
        )
        self.resume_button = button(
            "Resume run…", self.ask_resume, "Continue a stopped run from its last checkpoint, up to the epochs above"
        )
        self.compare_run = QComboBox()
        self.compare_run.setToolTip("A training run on disk: this one, or an earlier one in the work folder")
        self.compare_run.currentIndexChanged.connect(self._offer_saved_epochs)
        self.compare_epochs = QLineEdit()
        self.compare_epochs.setToolTip("Epochs of the run to sample side by side, from the Sample dock's seed")
        self.saved_epochs_label = QLabel()
        self.saved_epochs_label.setObjectName("caption")
        self.compare_button = button("Compare epochs", self._request_epoch_comparison)
        self.compare_group = QGroupBox("Epoch comparison")
        compare_rows = QFormLayout(self.compare_group)
        compare_rows.addRow("Run", self.compare_run)
        compare_rows.addRow("Epochs", self.compare_epochs)
        compare_rows.addRow(self.saved_epochs_label)
        compare_rows.addRow(self.compare_button)
        settings = QWidget()
        column = QVBoxLayout(settings)
        column.addWidget(self.form)
        column.addWidget(self.resume_button)
        column.addWidget(self.compare_group)
        column.addStretch(1)
        scroller = QScrollArea()  # the form is long: on a short screen it scrolls instead of squashing
        scroller.setWidgetResizable(True)
        scroller.setFrameShape(QScrollArea.Shape.NoFrame)
        scroller.setWidget(settings)
        # as wide as the form needs, with room for the vertical scroll bar (a smaller window scrolls sideways)
        settings_width = settings.minimumSizeHint().width() + scroller.verticalScrollBar().sizeHint().width()

        self.loss_plot = LossPlot()
        self.log_scale = QCheckBox("log")  # short: the row beside it holds four buttons on an 800 px screen
        self.log_scale.setToolTip("Show the loss on a log scale")
        self.log_scale.toggled.connect(self.loss_plot.set_log_scale)
        self.readout = shrinkable(QLabel("Choose a model and press Start."))
        self.readout.setObjectName("caption")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.samples = ImagePanel("x_t", "Samples appear here every few seconds of training")
        self.samples.title_may_go_beside = False  # it says how long the model has trained: read whole
        self.samples.set_range_visible(False)  # always [0, 1]: the digits get the room
        self.checkpoint_label = FittedLabel("")  # a long path gives way first; the whole line is the tooltip
        self.checkpoint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        progress = QWidget()  # the buttons always in view (the form above may scroll), the readout, the loss
        progress_column = QVBoxLayout(progress)
        progress_column.setContentsMargins(0, 0, 0, 0)
        progress_column.addLayout(
            row(
                self.start_button,
                self.pause_button,
                self.stop_button,
                self.keep_button,
                self.log_scale,
                stretch_first=False,
            )
        )
        progress_column.addWidget(self.readout)
        progress_column.addWidget(self.loss_plot, 1)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(scroller)
        top.addWidget(progress)
        top.setStretchFactor(1, 1)
        top.setSizes([settings_width, 900])
        # The samples across the whole width: ten class columns of digits need the width far more
        # than the loss curve does (at 1366x768 they show at 2-3x, not 1x beside the plot).
        samples = QWidget()
        samples_column = QVBoxLayout(samples)
        samples_column.setContentsMargins(0, 0, 0, 0)
        samples_column.addWidget(self.samples, 1)
        samples_column.addWidget(self.checkpoint_label)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(samples)
        splitter.setStretchFactor(0, 45)
        splitter.setStretchFactor(1, 55)
        splitter.setSizes([450, 550])
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
        training.preview_ready.connect(self._on_preview)
        training.checkpoint_saved.connect(lambda _: self.refresh_runs())
        self.form.apply_preset()
        self._show_state(training.state)
        self.refresh_runs()

    # --- starting -------------------------------------------------------------------------------

    def start(self) -> bool:
        """Train a new run into the folder field with the form's settings."""
        try:
            config = self.form.config()
        except UserFacingError as exc:
            self.failed.emit(str(exc))
            return False
        self.training.data_dir = self.form.data_dir
        return self.training.start(config, self.form.folder)

    def keep_training(self) -> bool:
        """Go on with the run that ended, for about another minute (TrainingController.keep_training)."""
        return self.training.keep_training(self.form.preview_seconds)

    def ask_resume(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A training run's folder", str(self.form.folder.parent))
        if folder:
            self.resume(folder)

    def resume(self, run_dir: str) -> bool:
        """Continue a run from its last checkpoint, to the Epochs field's count."""
        self.training.data_dir = self.form.data_dir
        if not self.training.resume(
            run_dir, self.form.epochs.value(), self.form.device.currentText(), self.form.preview_seconds
        ):
            return False
        self.form.out_dir.setText(str(run_dir))
        return True

    # --- what the run reports -------------------------------------------------------------------

    def _on_launched(self, out_dir, continuing: bool) -> None:
        if continuing:
            return  # the curve and the last samples stay: the run goes on
        self.loss_plot.clear_history()
        self.samples.show_pending()
        self.checkpoint_label.setText(f"Checkpoints go to {out_dir}")

    def _schedule_redraw(self) -> None:
        if not self.plot_timer.isActive():
            self.plot_timer.start()

    def _show_samples(self, title: str, event) -> None:
        self.samples.set_title(f"{title}: {event.sampling}")
        self.samples.show_images(event.samples, tuple(MNIST_VALUE_RANGE), event.sample_labels, "x_t")

    def _on_preview(self, event) -> None:
        self._show_samples(
            f"After {format_duration(self.training.history.trained_seconds(event.seconds))} of training "
            f"(epoch {event.epoch}, iteration {event.iteration})",
            event,
        )

    def _on_epoch(self, event) -> None:
        if event.samples is not None:
            self._show_samples(f"After epoch {event.epoch} (iteration {event.iteration})", event)
        summary = f"Epoch {event.epoch}: mean loss {event.mean_loss:.4f} in {format_duration(event.seconds)}; saved "
        self.checkpoint_label.set_forms([summary + str(event.checkpoint), summary + Path(event.checkpoint).name])

    def _show_state(self, state: str) -> None:
        idle = state == IDLE
        self.start_button.setEnabled(idle)
        self.resume_button.setEnabled(idle)
        self.keep_button.setEnabled(idle and self.training.last_checkpoint is not None)
        self.pause_button.setEnabled(not idle)
        self.stop_button.setEnabled(not idle)
        self.pause_button.setText("Resume" if state == PAUSED else "Pause")
        self.form.setEnabled(idle)

    def set_presentation(self, text_px: int | None) -> None:
        """Presentation mode's text size for the loss plot; None: the desk's."""
        self.loss_plot.set_text_size(text_px or NORMAL_TEXT_PX)

    # --- epoch comparison -----------------------------------------------------------------------

    def offer_epoch_comparison(self) -> bool:
        """List the runs on disk and put the keyboard in the run's choice; False when there is none."""
        self.refresh_runs()
        if self.has_runs:
            self.compare_run.setFocus()
        return self.has_runs

    def refresh_runs(self) -> None:
        """List the runs with a finished epoch: this tab's run first, then the work folder's, newest first."""
        current = self.compare_run.currentData()
        own = self.training.run_dir
        runs = training_runs(work_folder(), first=own)
        self.compare_run.blockSignals(True)
        self.compare_run.clear()
        for folder, epochs in runs.items():
            self.compare_run.addItem(f"{folder.name} · {len(epochs)} epochs", str(folder))
        if not runs:
            self.compare_run.addItem("no run on disk yet: press Start", None)
        index = self.compare_run.findData(str(own) if own in runs else current)
        self.compare_run.setCurrentIndex(max(index, 0))
        self.compare_run.blockSignals(False)
        self._offer_saved_epochs()

    @property
    def has_runs(self) -> bool:
        return self.compare_run.currentData() is not None

    def _offer_saved_epochs(self) -> None:
        """Fill the epochs with a spread of the chosen run's saved ones, and say which it has."""
        folder = self.compare_run.currentData()
        saved = list(saved_epochs(folder)) if folder else []
        self.compare_epochs.setText(format_int_list(spread_of_epochs(saved)))
        self.saved_epochs_label.setText(f"Saved epochs: {format_int_list(saved)}" if saved else "")
        self.compare_button.setEnabled(bool(saved))

    def _request_epoch_comparison(self) -> None:
        folder = self.compare_run.currentData()
        if folder is None:
            self.failed.emit("no training run on disk yet: press Start (Ctrl+T), then compare its epochs")
            return
        try:
            epochs = parse_int_list(self.compare_epochs.text())
        except ValueError as exc:
            self.failed.emit(f"epochs: {exc}")
            return
        self.compare_epochs_requested.emit(folder, epochs)
