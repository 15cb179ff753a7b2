"""Training: one run of `core.mnist.training` in a child process, with Pause, Stop and Resume.

The run trains in its own process (child_worker.py), so the window stays responsive and the run
goes as fast as from the command line. Pause holds the child between two loss events; Stop closes
its generator, so only whole epochs are ever saved and the last checkpoint stays as it was. The
loss history and a one-line readout of where the run stands are kept here for the Train tab.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.jobs import DONE as JOB_DONE
from diffusion_stepper.core.mnist.recipes import TrainConfig, config_for_resume
from diffusion_stepper.core.mnist.training import EpochEvent, LossEvent, PreviewEvent, train_on_mnist
from diffusion_stepper.core.training_progress import LossHistory
from diffusion_stepper.visualizer.child_worker import ChildJob

IDLE, TRAINING, PAUSED = "idle", "training", "paused"
READOUT_SECONDS = 0.25  # the readout follows the batches at most this often: each change is drawn
KEEP_TRAINING_SECONDS = 60.0  # "Keep training" adds the epochs that take about this long at the run's pace


class TrainingController(QObject):
    state_changed = Signal(str)
    readout_changed = Signal(str)  # one line: epoch, batch, loss, speed, time left; or how the run ended
    launched = Signal(object, bool)  # the run's folder, and whether it goes on ("Keep training") or begins
    progressed = Signal()  # new losses or a finished epoch are in `history`
    epoch_finished = Signal(object)  # the EpochEvent: its samples and checkpoint
    preview_ready = Signal(object)  # a PreviewEvent: the sample grid drawn mid-epoch
    checkpoint_saved = Signal(str)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.job: ChildJob | None = None
        # What the child runs: a picklable function of (config, out_dir, data_dir, resume_from)
        # that yields training events (tests put one of their own here).
        self.train_items = train_on_mnist
        self.state = IDLE
        self.config: TrainConfig | None = None
        self.run_dir: Path | None = None
        self.history = LossHistory()
        self.last_checkpoint: Path | None = None
        self.data_dir: str | None = None  # MNIST's folder; None: the default places
        self._readout_at = 0.0  # when the readout last changed (time.monotonic)

    def start(self, config: TrainConfig, out_dir: Path) -> bool:
        """Train a new run into `out_dir`."""
        if self.state != IDLE:
            self.failed.emit("a training run is already going: stop it first")
            return False
        return self._launch(config, out_dir, None)

    def resume(self, run_dir: str | Path, epochs: int, device: str, preview_seconds: float = 0.0) -> bool:
        """Continue a run from its last checkpoint, up to `epochs`."""
        if self.state != IDLE:
            self.failed.emit("a training run is already going: stop it first")
            return False
        try:
            config = config_for_resume(run_dir, epochs=epochs, device=device)
        except UserFacingError as exc:
            self.failed.emit(str(exc))
            return False
        config.log_every = 1  # every iteration reaches the plot, and Pause acts within one batch
        config.preview_seconds = preview_seconds
        return self._launch(config, Path(run_dir), Path(run_dir))

    def keep_training(self, preview_seconds: float = 0.0) -> bool:
        """Go on with the run that ended (finished or stopped) for about another minute: the epochs
        that take that long at its pace, from its last checkpoint, on a schedule of their own
        (core.mnist.recipes.config_for_resume); the loss curve and the samples go on."""
        if self.state != IDLE:
            self.failed.emit("a training run is already going: it goes on by itself")
            return False
        if self.last_checkpoint is None:
            self.failed.emit("no epoch has finished in this window yet: press Start (Ctrl+T), then keep training")
            return False
        try:
            config = config_for_resume(
                self.last_checkpoint, more_epochs=self.epochs_lasting(KEEP_TRAINING_SECONDS), device=self.config.device
            )
        except UserFacingError as exc:
            self.failed.emit(str(exc))
            return False
        config.log_every, config.preview_seconds = 1, preview_seconds
        self.history.new_launch(from_iteration=self.history.epoch_ends[-1][0] if self.history.epoch_ends else 0)
        return self._launch(config, self.run_dir, self.last_checkpoint, continuing=True)

    def epochs_lasting(self, seconds: float) -> int:
        """How many epochs take about `seconds` at this launch's pace of training (at least one)."""
        per_epoch = self.history.seconds_per_epoch()
        return 1 if per_epoch is None else max(1, round(seconds / per_epoch))

    def _launch(self, config: TrainConfig, out_dir: Path, resume_from: Path | None, continuing: bool = False) -> bool:
        if not continuing:
            self.history, self.last_checkpoint = LossHistory(), None
        self.config, self.run_dir = config, out_dir
        self.launched.emit(out_dir, continuing)
        self.readout_changed.emit("Loading MNIST…")
        self.job = ChildJob(
            partial(self.train_items, config, out_dir, self.data_dir, resume_from), "diffusion-stepper training"
        )
        self.job.item.connect(self._on_event)
        self.job.finished.connect(self._on_finished)
        self.job.failed.connect(self._on_failed)
        self.job.held.connect(self._on_held)
        self._set_state(TRAINING)
        self.job.start()
        return True

    def toggle_pause(self) -> None:
        if self.job is None:
            return
        if self.state == TRAINING:
            self.job.pause()
            self._set_state(PAUSED)
            self.readout_changed.emit("Pausing after this batch…")
        elif self.state == PAUSED:
            self.job.resume()
            self._set_state(TRAINING)

    def stop(self) -> None:
        """Stop after the current batch; finished epochs keep their checkpoints."""
        if self.job is not None:
            self.job.cancel()
            self.readout_changed.emit("Stopping after this batch…")

    def shutdown(self) -> None:
        """Stop and wait for the worker: the window is closing."""
        if self.job is not None:
            self.job.stop()

    def _readout(self) -> str:
        return self.history.readout(self.config.epochs)

    def _on_held(self) -> None:
        if self.state == PAUSED:  # the batch in flight is done: now it really is paused
            self.readout_changed.emit(self._readout() + " · paused")

    def _on_event(self, event) -> None:
        if isinstance(event, LossEvent):
            self.history.add_losses(event)
            now = time.monotonic()
            if self.state == TRAINING and now - self._readout_at >= READOUT_SECONDS:
                self._readout_at = now
                self.readout_changed.emit(self._readout())
        elif isinstance(event, PreviewEvent):
            self.preview_ready.emit(event)
        elif isinstance(event, EpochEvent):
            self.history.add_epoch(event)
            self.last_checkpoint = event.checkpoint
            self.epoch_finished.emit(event)
            self.checkpoint_saved.emit(str(event.checkpoint))
        self.progressed.emit()

    def saved_text(self) -> str:
        """What a stop now keeps: "finished epochs are saved in DIR (last checkpoint ...)"."""
        if self.last_checkpoint is None:
            return f"no epoch has finished yet, so nothing is saved in {self.run_dir}"
        return f"finished epochs are saved in {self.run_dir} (last: {Path(self.last_checkpoint).name})"

    def _kept(self) -> str:
        return (
            f"last checkpoint {self.last_checkpoint}" if self.last_checkpoint else "no epoch finished, so no checkpoint"
        )

    def _on_finished(self, outcome: str) -> None:
        last = self.history.last
        self._end()
        if outcome == JOB_DONE:
            epochs = self.config.epochs
            self.readout_changed.emit(
                f"Finished {epochs} epoch{'s' if epochs > 1 else ''} · {self._kept()} · "
                "Keep training (Ctrl+K) goes on for about a minute"
            )
        else:
            where = f" at epoch {last.epoch}, iteration {last.iteration}" if last else ""
            self.readout_changed.emit(f"Stopped{where} · {self._kept()}")

    def _on_failed(self, message: str) -> None:
        self._end()
        kept = f"; the last checkpoint is intact: {self.last_checkpoint}" if self.last_checkpoint else ""
        self.readout_changed.emit(f"Training stopped: {message}")
        self.failed.emit(f"Training stopped: {message}{kept}")

    def _end(self) -> None:
        self.job = None
        self.progressed.emit()
        self._set_state(IDLE)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)
