"""Quitting while training runs: ask first, since the epoch in progress (or a 2D model not yet
saved) would be lost; stopping keeps every finished epoch's checkpoint."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from diffusion_stepper.visualizer.controllers.training import IDLE


class QuitQuestion:
    """The question, made once and kept (as every dialog of the app: widgets/pool.py)."""

    def __init__(self, window):
        self.window = window
        self.box: QMessageBox | None = None

    def training_that_would_stop(self) -> list[str]:
        """What quitting now would end, and what of it stays saved (nothing when no training runs)."""
        running = []
        if self.window.training.state != IDLE:
            running.append(f"MNIST training: {self.window.training.saved_text()}; the epoch in progress is lost")
        if self.window.lab2d.training:
            running.append("the 2D lab's training: its model is saved when training ends, so it would be lost")
        return running

    def allows_quitting(self) -> bool:
        """True when nothing trains, or the user chose "Stop training and quit"; False to keep
        training (the default, and Esc)."""
        if not self.training_that_would_stop():
            return True
        if self.box is None:
            self.box = QMessageBox(QMessageBox.Icon.Question, "Training is running", "", parent=self.window)
            self.box.addButton("&Stop training and quit", QMessageBox.ButtonRole.DestructiveRole)
            keep = self.box.addButton("&Keep training", QMessageBox.ButtonRole.RejectRole)
            self.box.setDefaultButton(keep)
            self.box.setEscapeButton(keep)
            # training goes on while the question waits: an epoch that ends meanwhile is saved, say so
            self.window.training.epoch_finished.connect(self._say_what_runs)
        self._say_what_runs()
        self.box.exec()
        return self.box.buttonRole(self.box.clickedButton()) == QMessageBox.ButtonRole.DestructiveRole

    def _say_what_runs(self, *_event) -> None:
        running = self.training_that_would_stop()
        if self.box is not None and running:
            self.box.setText("Quit while training?\n\n" + "\n".join(f"• {line}" for line in running))
