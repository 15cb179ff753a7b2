"""The 2D lab's jobs: train an MLP in a child process (the loss shown live, the model saved and
sampled when done), sample, run an experiment, and draw a distribution."""

from __future__ import annotations

import re
import time
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.paths import work_folder
from diffusion_stepper.core.toy2d.checkpoints import Toy2DSaved, train_and_save_toy2d
from diffusion_stepper.core.toy2d.drawn import DRAWN_SUFFIX, save_drawn
from diffusion_stepper.core.toy2d.experiments import TOY2D_EXPERIMENTS
from diffusion_stepper.core.toy2d.training import Toy2DLoss
from diffusion_stepper.core.training_progress import LossHistory
from diffusion_stepper.visualizer.child_worker import ChildJob
from diffusion_stepper.visualizer.controllers.files import FilesController
from diffusion_stepper.visualizer.controllers.messages import Messages
from diffusion_stepper.visualizer.controllers.sampling import SamplingController
from diffusion_stepper.visualizer.dialogs.draw_dialog import DrawDialog
from diffusion_stepper.visualizer.docks.lab2d_dock import Lab2DDock
from diffusion_stepper.visualizer.widgets.plots import PLOT_REFRESH_MS


def model_folder_name(dataset: str, objective: str, classes: bool) -> str:
    """models/<data>-<objective>[-classes]: a drawing's path becomes its stem."""
    stem = Path(dataset).stem if dataset.endswith(DRAWN_SUFFIX) else dataset
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{stem}-{objective}" + ("-classes" if classes else ""))


class Lab2DController(QObject):
    def __init__(
        self, dock: Lab2DDock, messages: Messages, sampling: SamplingController, files: FilesController, parent: QWidget
    ):
        super().__init__(parent)
        self.dock, self.messages, self.sampling, self.files = dock, messages, sampling, files
        self._parent = parent  # the drawing dialog's
        self.job: ChildJob | None = None
        self._iterations = 0  # the training's, to draw its last loss whenever it comes
        self.history = LossHistory()
        self._drawn_at = 0.0  # when the loss plot was last redrawn (time.monotonic)
        self.last_trained: Path | None = None
        self.dock.train_requested.connect(self.train)
        self.dock.sample_requested.connect(self.sample)
        self.dock.draw_requested.connect(self.ask_draw)

    @property
    def training(self) -> bool:
        return self.job is not None

    def train(self) -> None:
        """Train with the dock's settings; while training, the same button (and shortcut) stops it."""
        if self.job is not None:
            self.job.cancel()
            return
        config = self.dock.training_config()
        try:
            config.validate()
        except UserFacingError as exc:
            self.messages.error(str(exc))
            return
        self.history = LossHistory()
        self._drawn_at = 0.0
        self._iterations = config.iterations
        self.dock.start_training(config.iterations)
        folder = work_folder("toy2d", model_folder_name(config.dataset, config.objective, config.classes))
        self.job = ChildJob(partial(train_and_save_toy2d, config, folder), "diffusion-stepper 2D training")
        self.job.item.connect(self._on_event)
        self.job.failed.connect(self._on_failed)
        self.job.finished.connect(lambda _outcome: self._end())
        self.job.start()

    def _on_event(self, event) -> None:
        if isinstance(event, Toy2DLoss):
            self.history.add_losses(event)
            now = time.monotonic()
            if now - self._drawn_at >= PLOT_REFRESH_MS / 1000 or event.iteration == self._iterations:
                self._drawn_at = now  # redraws share the CPU with the training: at most every PLOT_REFRESH_MS
                self.dock.show_loss(self.history)
        elif isinstance(event, Toy2DSaved):
            config = event.config
            self.last_trained = event.sidecar
            title = f"{event.title} · {config.objective}" + (" · classes" if config.classes else "")
            self.dock.add_model(event.sidecar, f"trained: {title}", config.objective)
            self.dock.end_training(
                f"Trained {config.iterations:,} iterations in {event.seconds:.1f} s (loss {event.final_loss:.4f}); "
                f"saved in {event.sidecar.parent}. Sampling it now."
            )
            self.sample()

    def _on_failed(self, message: str) -> None:
        self.dock.end_training(f"Training stopped: {message}")
        self.messages.error(message)

    def _end(self) -> None:
        if self.job is not None and self.dock.shows_training():
            done = self.history.last.iteration if self.history.last else 0
            self.dock.end_training(f"Training stopped after {done:,} iterations: nothing saved")
        self.job = None

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()
            self.job = None

    def sample(self) -> None:
        self.sampling.start(lambda: [self.dock.sample_request()])

    def run_experiment(self, key: str) -> None:
        experiment = TOY2D_EXPERIMENTS[key]
        options = self.dock.experiment_options()
        where = "the model chosen" if options.checkpoint else f"the exact field of {options.dataset}"
        if not options.checkpoint and options.dataset != self.dock.chosen_dataset():
            where += " (the data chosen has no exact field: train a model on it to use it here)"
        self.messages.show(f"2D lab: {experiment.title}, {experiment.summary}, on {where}", 8000)
        self.sampling.start_experiment(TOY2D_EXPERIMENTS, key, lambda: options)

    def ask_draw(self) -> None:
        dialog = DrawDialog(self._parent)
        dialog.accepted.connect(lambda: self._save_drawing(dialog))
        dialog.open()

    def _save_drawing(self, dialog) -> None:
        folder = work_folder("drawings")
        folder.mkdir(parents=True, exist_ok=True)
        path = self.files.ask_save_path("Save the drawing", "drawing.json", ("json",), folder / "drawing.json")
        if path is not None:
            self.save_drawing(dialog.points(), path)

    def save_drawing(self, points, path: Path) -> Path | None:
        try:
            saved = save_drawn(path if path.suffix == DRAWN_SUFFIX else path.with_suffix(DRAWN_SUFFIX), points)
        except (UserFacingError, OSError) as exc:
            self.messages.error(str(exc).splitlines()[0])
            return None
        self.dock.add_drawn(saved)
        self.messages.show(f"Saved the drawing in {saved}: it is the 2D lab's data now (Train, or Sample)")
        return saved
