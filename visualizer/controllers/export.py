"""Exports of the active run: animations (GIF or MP4) and interactive HTML pages (of the active
run, or of the compared runs on one slider), built on the job runner with a progress dialog whose
Cancel leaves no file behind; the anagram turn; and PNG contact sheets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QInputDialog, QProgressDialog, QWidget

from diffusion_stepper.core.deepfloyd_if.anagrams import anagram_turn
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.exports.animation import export_animation
from diffusion_stepper.core.exports.html_page import (
    PAGE_FRAME_LIMIT,
    PageOptions,
    html_page_items,
    kept_frame_count,
    suggested_every,
)
from diffusion_stepper.core.exports.render import write_png_grid
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.jobs import DONE as JOB_DONE
from diffusion_stepper.core.session import RUNNING, Run, Session
from diffusion_stepper.visualizer.controllers.files import FilesController, with_suffix
from diffusion_stepper.visualizer.controllers.messages import Messages
from diffusion_stepper.visualizer.dialogs.export_dialog import ExportDialog, ExportOptions
from diffusion_stepper.visualizer.worker import Job

ANIMATION_FORMATS = ("gif", "mp4")


def snapshot(trajectory: Trajectory) -> Trajectory:
    """A copy of the frame list for a job to read while the session goes on changing."""
    return Trajectory(trajectory.meta, list(trajectory.frames), trajectory.labels, trajectory.data)


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

    def page_runs(self) -> list[Run]:
        """The runs a page shows: the compared runs when two or more are ticked (the Compare view's),
        else the active run. Empty, with the reason on the status bar, when one is not finished."""
        compared = self.session.compared
        if len(compared) < 2:
            run = self._active_run()
            return [run] if run is not None else []
        unfinished = [run.name for run in compared if run.state == RUNNING or run.produced == 0]
        if unfinished:
            self.messages.error(f"wait for {', '.join(unfinished)} to finish before exporting the page")
            return []
        return compared

    def ask_html_page(self) -> None:
        """File ▸ Export ▸ Interactive page: offers to keep every k-th frame of a long run, then asks where."""
        runs = self.page_runs()
        if not runs:
            return
        longest = max(run.produced for run in runs)
        every = 1
        if longest > PAGE_FRAME_LIMIT:
            suggested = suggested_every(longest)
            every, ok = QInputDialog.getInt(
                self._parent,
                "Interactive page",
                f"{longest} frames make a large page that is slow to open.\n"
                f"Keep every k-th frame (and the last); {suggested} keeps "
                f"{kept_frame_count(longest, suggested)}:",
                suggested,
                1,
                longest - 1,
            )
            if not ok:
                return
        name = "compared-runs.html" if len(runs) > 1 else "run.html"
        path = self.files.ask_save_path("Export interactive page", name, ("html",))
        if path:
            self.export_html_page_to(path, every)

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
        trajectory = snapshot(run.trajectory)
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
        return self._start_job(make_items, path, f"Rendering {path.name}…")

    def export_html_page_to(self, path: str | Path, every: int = 1) -> bool:
        """The page of `page_runs()`, every `every`-th frame, built on the job runner."""
        runs = self.page_runs()
        if not runs:
            return False
        path = with_suffix(path, ("html",))
        named = [(run.name, snapshot(run.trajectory)) for run in runs]
        options = PageOptions(every=every, particle_view=replace(self.session.particle_view))  # as on screen
        try:
            items = html_page_items(named, path, options)  # checks the request here; builds on the job runner
        except ValueError as exc:
            self.messages.error(str(exc))
            return False
        return self._start_job(lambda: items, path, f"Building {path.name}…")

    def _start_job(self, make_items: Callable, path: Path, label: str) -> bool:
        """Run an export generator (yielding (done, total)) on the job runner, with a progress dialog;
        False, said on the status bar, while another export runs."""
        if self.job is not None:
            self.messages.error("an export is already running")
            return False
        self.job, self._path = Job(make_items), path
        self.job.item.connect(self._on_progress)
        self.job.finished.connect(self._on_finished)
        self.job.failed.connect(self._on_failed)
        self.progress_dialog = QProgressDialog(label, "Cancel", 0, 0, self._parent)
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
