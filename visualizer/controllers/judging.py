"""Run ▸ Judge the active run: the bundled judge's figures for the active MNIST run's final digits
(the share read as the digit asked for, and the FD beside as many real digits), computed on the
job runner and shown in the status bar, as `diffusion-stepper inspect RUN.npz --judge` prints them."""

from __future__ import annotations

from PySide6.QtCore import QObject

from diffusion_stepper.core.mnist.judge import describe_figures, judge_run
from diffusion_stepper.core.session import Session
from diffusion_stepper.visualizer.controllers.messages import Messages
from diffusion_stepper.visualizer.worker import Job


class JudgeController(QObject):
    def __init__(self, session: Session, messages: Messages, parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.messages = session, messages
        self.job: Job | None = None
        self.last = ""  # the last figures shown, for tests

    def judge_active(self) -> None:
        run = self.session.active
        if run is None or not run.is_complete or run.produced == 0:
            self.messages.error("judge: sample or open a finished MNIST run first")
            return
        if self.job is not None:
            return  # one at a time; the first answer arrives in a moment
        trajectory = run.trajectory
        self.job = Job(lambda: iter([judge_run(trajectory)]))
        self.job.item.connect(self._show)
        self.job.failed.connect(self._failed)
        self.job.finished.connect(self._done)
        self.messages.show("The judge is reading the digits…", 0)
        self.job.start()

    def stop(self) -> None:
        """Wait for a reading in flight: the window is closing."""
        if self.job is not None:
            self.job.stop()

    def _show(self, figures) -> None:
        self.last = describe_figures(figures)
        self.messages.show(self.last)

    def _failed(self, message: str) -> None:
        self.job = None
        self.messages.error(message)

    def _done(self, _outcome: str) -> None:
        self.job = None
