"""Exports of the active run: animations (GIF or MP4) rendered on the job runner with a progress
dialog whose Cancel leaves no file behind, the anagram turn, and PNG contact sheets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QProgressDialog, QWidget

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.io.export import anagram_turn, export_animation, write_png_grid
from diffusion_stepper.core.session import Run, Session
from diffusion_stepper.visualizer.controllers.files import FilesController, with_suffix
from diffusion_stepper.visualizer.controllers.messages import Messages
from diffusion_stepper.visualizer.dialogs.export_dialog import ExportDialog, ExportOptions
from diffusion_stepper.visualizer.worker import DONE as JOB_DONE
from diffusion_stepper.visualizer.worker import Job

ANIMATION_FORMATS = ("gif", "mp4")


class ExportController(QObject):
    def __init__(
        self,
        session: Session,
        messages: Messages,
        files: FilesController,
        visible_fields: Callable[[Run], list[str]],
        parent: QWidget,
    ):
        super().__init__(parent)
        self.session, self.messages, self.files = session, messages, files
        self._visible_fields = visible_fields  # the fields on screen, exported unless told otherwise
        self._parent = parent
        self.job: Job | None = None
        self.progress_dialog: QProgressDialog | None = None
        self._path: Path | None = None

    def _active_run(self) -> Run | None:
        try:
            return self.session.finished_active_run("export")
        except UserFacingError as exc:
            self.messages.error(str(exc))
            return None

    # --- asking ---------------------------------------------------------------------------------

    def ask_animation(self) -> None:
        run = self._active_run()
        if run is None:
            return
        dialog = ExportDialog(run.trajectory, self.session.fps, self._visible_fields(run), self._parent)
        if not dialog.exec():
            return
        try:
            options = dialog.options()
        except UserFacingError as exc:
            self.messages.error(str(exc))
            return
        path = self.files.ask_save_path("Export animation", f"run.{options.format}", (options.format,))
        if path:
            self.export_animation_to(path, options)

    def ask_anagram_turn(self) -> None:
        """The active anagram's result turning into its second view, as a GIF or MP4."""
        if self._active_run() is None:
            return
        path = self.files.ask_save_path("Export the anagram turn", "anagram-turn.gif", ANIMATION_FORMATS)
        if path:
            self.export_anagram_turn_to(path)

    def ask_contact_sheet(self) -> None:
        if self._active_run() is None:
            return
        path = self.files.ask_save_path("Export contact sheet", "contact-sheet.png", ("png",))
        if path:
            self.export_contact_sheet_to(path)

    # --- writing --------------------------------------------------------------------------------

    def export_anagram_turn_to(self, path: str | Path) -> bool:
        path = with_suffix(path, ANIMATION_FORMATS)
        options = ExportOptions(
            panels=["x_t"], start=0, end=None, fps=12.0, scale=6, format=path.suffix.lower().lstrip(".")
        )
        return self.export_animation_to(path, options, transform=anagram_turn)

    def export_animation_to(
        self, path: str | Path, options: ExportOptions, transform: Callable[[Trajectory], Trajectory] | None = None
    ) -> bool:
        """Render on the job runner with a progress dialog. `transform` makes the trajectory to
        render from the run's (the anagram turn)."""
        run = self._active_run()
        if run is None:
            return False
        if self.job is not None:
            self.messages.error("an export is already running")
            return False
        trajectory = Trajectory(
            run.trajectory.meta, list(run.trajectory.frames), run.trajectory.labels, run.trajectory.data
        )
        if transform is not None:
            try:
                trajectory = transform(trajectory)
            except ValueError as exc:
                self.messages.error(str(exc))
                return False
        path = Path(path)
        if path.suffix.lower() != f".{options.format}":
            path = path.with_suffix(f".{options.format}")
        try:
            layout = replace(options.layout(), particle_view=replace(self.session.particle_view))  # as on screen
        except ValueError as exc:
            self.messages.error(str(exc))
            return False
        make_items = partial(
            export_animation,
            trajectory,
            path,
            options.panels,
            options.fps,
            options.every,
            options.scale,
            options.start,
            options.end,
            layout=layout,
        )
        self.job, self._path = Job(make_items, self), path
        self.job.item.connect(self._on_progress)
        self.job.finished.connect(self._on_finished)
        self.job.failed.connect(self._on_failed)
        self.progress_dialog = QProgressDialog(f"Rendering {path.name}…", "Cancel", 0, 0, self._parent)
        self.progress_dialog.setWindowTitle("Export")
        self.progress_dialog.setMinimumDuration(0)
        self.progress_dialog.canceled.connect(self.job.cancel)
        self.progress_dialog.show()
        self.job.start()
        return True

    def export_contact_sheet_to(self, path: str | Path, steps_shown: list[int] | None = None) -> bool:
        """Eight evenly spaced steps (or `steps_shown`), one row each, of the panels on screen."""
        run = self._active_run()
        if run is None:
            return False
        try:
            write_png_grid(run.trajectory, path, steps_shown, self._visible_fields(run), scale=2)
        except (OSError, ValueError) as exc:
            self.messages.error(f"could not write {path}: {exc}")
            return False
        self.files.settings.remember_folder(path)
        self.messages.show(f"Wrote {path}", 10000)
        return True

    def stop(self) -> None:
        """Cancel and wait: the window is closing (a cancelled export writes nothing)."""
        if self.job is not None:
            self.job.stop()

    # --- the job --------------------------------------------------------------------------------

    def _on_progress(self, progress: tuple[int, int]) -> None:
        done, total = progress
        if self.progress_dialog is not None:
            self.progress_dialog.setMaximum(total)
            self.progress_dialog.setValue(done)
            if done == total:
                self.progress_dialog.setLabelText("Encoding…")

    def _end(self) -> None:
        self.job = None
        if self.progress_dialog is not None:
            self.progress_dialog.canceled.disconnect()
            self.progress_dialog.close()
            self.progress_dialog.deleteLater()
            self.progress_dialog = None

    def _on_finished(self, outcome: str) -> None:
        self._end()
        if outcome == JOB_DONE:
            self.files.settings.remember_folder(self._path)
            self.messages.show(f"Wrote {self._path}", 10000)
        else:
            self.messages.show("Export cancelled: nothing was written")

    def _on_failed(self, message: str) -> None:
        self._end()
        self.messages.error(f"Export failed: {message}")
