"""Files in and out of the window: trajectories opened and saved, checkpoints added, and the one
save dialog every export uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QWidget

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.formats.trajectory_file import load_trajectory, save_trajectory
from diffusion_stepper.core.session import LOADED, Session
from diffusion_stepper.visualizer.controllers.messages import Messages
from diffusion_stepper.visualizer.controllers.settings import SettingsController

TRAJECTORY_FILTER = "Trajectories (*.npz)"
CHECKPOINT_FILTER = "Checkpoints (*.safetensors *.json)"


def with_suffix(path: str | Path, suffixes: Sequence[str]) -> Path:
    """`path` as typed if it ends in one of `suffixes` ("gif", "mp4", ...), else with the first added."""
    path = Path(path)
    return path if path.suffix.lower().lstrip(".") in suffixes else path.with_name(f"{path.name}.{suffixes[0]}")


class FilesController(QObject):
    def __init__(
        self, session: Session, messages: Messages, settings: SettingsController, sample_dock, parent: QWidget
    ):
        super().__init__(parent)
        self.session, self.messages, self.settings = session, messages, settings
        self._sample_dock = sample_dock  # where added checkpoints go
        self._parent = parent

    def ask_save_path(
        self, title: str, suggested_name: str, suffixes: Sequence[str], start: Path | None = None
    ) -> Path | None:
        """A save dialog starting in the last folder; the answer ends in one of `suffixes`. None if cancelled."""
        filters = ";;".join(f"{suffix.upper()} (*.{suffix})" for suffix in suffixes)
        suggested = str(start or Path(self.settings.last_folder()) / suggested_name)
        path, _ = QFileDialog.getSaveFileName(self._parent, title, suggested, filters)
        return with_suffix(path, suffixes) if path else None

    def ask_save_plot(self, save: Callable[[Path], tuple[Path, ...]]) -> None:
        """Ask where the Compare view's plot goes; `save(path)` writes it (and its CSV beside it)."""
        path = self.ask_save_path("Save the x̂₀ distance plot and its numbers", "x0-distance.png", ("png",))
        if path is None:
            return
        try:
            written = save(path)
        except (OSError, UserFacingError) as exc:
            self.messages.error(f"Could not save the plot: {exc}")
            return
        self.messages.show(f"Wrote {' and '.join(str(p) for p in written)}")

    # --- trajectories ---------------------------------------------------------------------------

    def ask_open(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self._parent, "Open trajectories", self.settings.last_folder(), TRAJECTORY_FILTER
        )
        for path in paths:
            self.open_trajectory(path)

    def open_trajectory(self, path: str | Path) -> bool:
        """Open a trajectory file as a new run; a bad file is reported and changes nothing."""
        try:
            trajectory = load_trajectory(path)
        except UserFacingError as exc:
            self.messages.error(str(exc))
            return False
        self.session.add_run(
            trajectory.meta,
            len(trajectory),
            trajectory.labels,
            frames=trajectory.frames,
            state=LOADED,
            path=Path(path),
            data=trajectory.data,
        )
        self.settings.remember_folder(path)
        meta = trajectory.run_meta
        self.messages.show(f"Opened {Path(path).name}: {len(trajectory)} frames, {meta.algorithm} ({meta.model})")
        return True

    def ask_save(self) -> None:
        try:
            run = self.session.finished_active_run("save")
        except UserFacingError as exc:
            self.messages.error(str(exc))
            return
        path = self.ask_save_path("Save trajectory", "run.npz", ("npz",), start=run.path)
        if path:
            self.save_trajectory_to(path)

    def save_trajectory_to(self, path: str | Path) -> bool:
        try:
            run = self.session.finished_active_run("save")
            save_trajectory(run.trajectory, path)
        except UserFacingError as exc:
            self.messages.error(str(exc))
            return False
        except (OSError, ValueError) as exc:
            self.messages.error(f"could not save {path}: {exc}")
            return False
        run.path = Path(path)
        self.settings.remember_folder(path)
        self.messages.show(f"Saved {path}")
        return True

    # --- checkpoints ----------------------------------------------------------------------------

    def ask_add_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._parent,
            "Add a checkpoint (a diffusers DDPM/DDIM folder: pick its model_index.json)",
            self.settings.last_folder(),
            CHECKPOINT_FILTER,
        )
        if path:
            self.add_checkpoint(path)

    def add_checkpoint(self, path: str | Path, select: bool = True) -> bool:
        """Add a checkpoint, or a diffusers DDPM/DDIM folder, to the Sample dock's models (and select
        it, unless told not to)."""
        try:
            self._sample_dock.add_checkpoint(path, select=select)
        except UserFacingError as exc:
            self.messages.error(str(exc))
            return False
        if select:
            self.settings.remember_folder(path)
            self.messages.show(f"Added {self._sample_dock.model.currentText()}: press Enter to sample it")
        return True
