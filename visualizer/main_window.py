"""The main window: the Sample and Runs docks, the Step and Compare views, the transport bar,
menus with keyboard shortcuts, presentation mode, files, export and settings."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QEvent, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QProgressDialog,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core import __version__
from core.errors import UserFacingError
from core.experiments import EXPERIMENTS, ExperimentOptions, experiment_requests
from core.export import anagram_turn, export_animation, write_png_grid
from core.frames import Trajectory
from core.session import CANCELLED, DONE, FAILED, LOADED, PLAYBACK, RUNNING, Session
from core.trajectory_file import load_trajectory, save_trajectory
from visualizer.export_dialog import ExportDialog, ExportOptions
from visualizer.if_panel import IMAGE_SUFFIXES, PART_A_EXPERIMENTS, IFPanel
from visualizer.panels import FIT, ZOOM_CHOICES
from visualizer.sample_panel import MODEL_DEFAULT_STEPS, SamplePanel
from visualizer.timeline import TransportBar
from visualizer.train_view import TrainView
from visualizer.views import EXTRAS, NOISE, PANEL_KEYS, CompareView, CoalescedRefresh, RunsList, StepView, field_for, run_caption
from visualizer.worker import DONE as JOB_DONE
from visualizer.worker import Job, RunHeader, sampling_items

PLAY_TICK_MS = 15  # the playback clock; the position itself comes from elapsed time
HIDE_CONTROLS_MS = 2500  # presentation mode hides the controls this long after the mouse stops
TRAJECTORY_FILTER = "Trajectories (*.npz)"
CHECKPOINT_FILTER = "Checkpoints (*.safetensors *.json)"
STEP_TAB, COMPARE_TAB, TRAIN_TAB = 0, 1, 2

PRESENTATION_STYLE = """
QWidget { background: #000; color: #fff; font-size: 16pt; }
QLabel#equation { font-size: 20pt; }
QLabel#caption { font-size: 20pt; }
QLabel#panelTitle { font-size: 18pt; font-weight: bold; }
QLabel#panelRange { font-size: 13pt; color: #bbb; }
QLabel#runNote { font-size: 15pt; color: #ffd; }
QToolButton { font-size: 22pt; min-width: 48px; }
QTabBar::tab { padding: 6px 18px; }
"""
NORMAL_STYLE = """
QLabel#panelTitle { font-weight: bold; }
QLabel#caption { font-size: 13pt; }
QLabel#emptyMessage { font-size: 15pt; color: #888; }
QLabel#runNote { font-size: 11pt; padding: 4px; background: #fff8dc; color: #333; border: 1px solid #e0d090; }
"""


def default_settings() -> QSettings:
    return QSettings("diffusion-stepper", "diffusion-stepper")


class MainWindow(QMainWindow):
    def __init__(self, settings: Optional[QSettings] = None):
        super().__init__()
        self.settings = settings if settings is not None else default_settings()
        self.setWindowTitle(f"diffusion-stepper {__version__}")
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self.setStyleSheet(NORMAL_STYLE)
        self.session = Session()
        self.last_error: Optional[str] = None
        self.error_box: Optional[QMessageBox] = None
        self.zoom = FIT
        self.presentation = False
        self._sampling_job: Optional[Job] = None
        self._sampling_run_id: Optional[int] = None
        self._sampling_started = 0.0
        self._queue: list = []  # sample requests waiting their turn (a guidance sweep)
        self._queue_compares = False
        self._export_job: Optional[Job] = None
        self._export_path: Optional[Path] = None
        self.export_progress: Optional[QProgressDialog] = None
        self._removed_runs: list = []  # for Undo

        self.sample_panel = SamplePanel()
        self.if_panel = IFPanel()
        self.runs_list = RunsList(self.session)
        self.step_view = StepView(self.session)
        self.compare_view = CompareView(self.session)
        self.train_view = TrainView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.step_view, "Step")
        self.tabs.addTab(self.compare_view, "Compare")
        self.tabs.addTab(self.train_view, "Train")
        self.transport = TransportBar(self.session)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.transport)
        self.setCentralWidget(central)
        self.sample_dock = self._dock("Sample", self.sample_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        if_scroll = QScrollArea()  # the IF dock is tall: let it scroll on small screens, not widen the window
        if_scroll.setWidget(self.if_panel)
        if_scroll.setWidgetResizable(True)
        if_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        if_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.if_dock = self._dock("DeepFloyd IF", if_scroll, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tabifyDockWidget(self.sample_dock, self.if_dock)
        self.sample_dock.raise_()
        self.runs_dock = self._dock("Runs", self.runs_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setFormat("%v / %m frames")
        self.progress.setVisible(False)
        self.statusBar().addPermanentWidget(self.progress)

        self.sample_panel.generate_requested.connect(self.generate)
        self.sample_panel.sweep_requested.connect(self.sweep)
        self.sample_panel.cancel_requested.connect(self.cancel)
        self.sample_panel.open_checkpoint_requested.connect(self.ask_add_checkpoint)
        self.if_panel.run_requested.connect(self.run_if)
        self.if_panel.cancel_requested.connect(self.cancel)
        self.train_view.failed.connect(self.show_error)
        self.train_view.checkpoint_saved.connect(self._on_checkpoint_saved)
        self.train_view.compare_epochs_requested.connect(self.compare_epochs)
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(PLAY_TICK_MS)
        self.play_timer.timeout.connect(lambda: self.session.playback_tick(time.monotonic()))
        self.hide_timer = QTimer(self)
        self.hide_timer.setSingleShot(True)
        self.hide_timer.setInterval(HIDE_CONTROLS_MS)
        self.hide_timer.timeout.connect(lambda: self._show_presentation_controls(False))
        self.session.subscribe(self._on_session_event)
        self.transport_refresher = CoalescedRefresh(self.session, self._refresh_transport, self)
        self._build_actions()
        self._restore_settings()
        self.statusBar().showMessage("Ready: press Enter to sample the digits 0–9")

    # --- construction ---------------------------------------------------------------------------

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}Dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, menu, text: str, slot, shortcuts=(), checkable: bool = False, checked: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcuts:
            action.setShortcuts([QKeySequence(shortcut) for shortcut in shortcuts])
        action.setCheckable(checkable)
        if checkable:
            action.setChecked(checked)
            action.toggled.connect(slot)
        else:
            action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)  # shortcuts keep working with the menu bar hidden (presentation)
        return action

    def _build_actions(self) -> None:
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        self._action(file_menu, "&Open trajectory…", self.ask_open, ["Ctrl+O"])
        self._action(file_menu, "&Save trajectory…", self.ask_save, ["Ctrl+S"])
        self._action(file_menu, "Add &checkpoint…", self.ask_add_checkpoint)
        file_menu.addSeparator()
        self._action(file_menu, "&Export animation (GIF/MP4)…", self.ask_export, ["Ctrl+E"])
        self._action(file_menu, "Export contact &sheet (PNG)…", self.ask_contact_sheet, ["Ctrl+Shift+E"])
        self._action(file_menu, "Export the anagram &turn (GIF/MP4)…", self.ask_anagram_turn)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, ["Ctrl+Q"])

        edit_menu = menus.addMenu("&Edit")
        self._action(edit_menu, "&Undo remove run", self.undo_remove_run, ["Ctrl+Z"])
        self._action(edit_menu, "&Remove run", self.remove_active_run, ["Delete"])

        run_menu = menus.addMenu("&Run")
        self._action(run_menu, "&Generate", self.generate, ["Return", "Enter"])
        self._action(run_menu, "&Sweep guidance", self.sweep, ["Ctrl+G"])
        self._action(run_menu, "&Run DeepFloyd IF", self.run_if, ["Ctrl+R"])
        self._action(run_menu, "&Branch IF run from this step", self.branch_from_step, ["Ctrl+B"])
        self._action(run_menu, "&Upscale this IF run with stage II", self.upscale_active_run, ["Ctrl+U"])
        self._action(run_menu, "&Cancel / leave presentation", self.escape, ["Escape"])
        run_menu.addSeparator()
        self._action(run_menu, "Start &training", self.start_training, ["Ctrl+T"])
        self._action(run_menu, "&Pause / resume training", self.train_view.toggle_pause, ["Ctrl+P"])
        self._action(run_menu, "S&top training", self.train_view.stop, ["Ctrl+Shift+T"])

        experiments_menu = menus.addMenu("E&xperiments")
        for number, experiment in enumerate(EXPERIMENTS.values(), 1):
            if experiment.key == "epochs":
                self._action(experiments_menu, f"{experiment.title}…", self.show_training, [f"Alt+{number}"])
            else:
                self._action(experiments_menu, experiment.title, partial(self.run_experiment, experiment.key), [f"Alt+{number}"])

        experiments_menu.addSeparator()
        part_a = experiments_menu.addMenu("Part &A: DeepFloyd IF (the IF dock's model and image)")
        for number, (key, (title, _)) in enumerate(PART_A_EXPERIMENTS.items(), 1):
            self._action(part_a, title, partial(self.run_if_experiment, key), [f"Alt+Shift+{number}"])

        play_menu = menus.addMenu("&Playback")
        session = self.session
        self._action(play_menu, "&Play / pause", session.toggle_playing, ["Space"])
        self._action(play_menu, "&Next frame", lambda: session.step(1), ["Right"])
        self._action(play_menu, "&Previous frame", lambda: session.step(-1), ["Left"])
        self._action(play_menu, "Forward 10", lambda: session.step(10), ["PgDown"])
        self._action(play_menu, "Back 10", lambda: session.step(-10), ["PgUp"])
        self._action(play_menu, "&First frame", session.first, ["Home"])
        self._action(play_menu, "&Last frame", session.last, ["End"])
        self._action(play_menu, "Faster", lambda: session.set_fps(session.fps * 1.5), ["]"])
        self._action(play_menu, "Slower", lambda: session.set_fps(session.fps / 1.5), ["["])
        self._action(play_menu, "L&oop", lambda: session.set_loop(not session.loop), ["L"])

        view_menu = menus.addMenu("&View")
        self.panel_actions = {}
        for number, (key, label) in enumerate((("x_t", "x_t"), ("x0_hat", "x̂₀ clean estimate"), (NOISE, "ε̂ / v̂ noise estimate")), 1):
            self.panel_actions[key] = self._action(
                view_menu, f"Show {label}", partial(self.set_panel_visible, key), [str(number)], checkable=True, checked=True
            )
        for number, (key, widget) in enumerate(
            (("equation", self.step_view.equation), ("histogram", self.step_view.histogram), ("schedule", self.step_view.schedule)), 4
        ):
            self.panel_actions[key] = self._action(
                view_menu, f"Show {key}", partial(self.set_panel_visible, key), [str(number)], checkable=True, checked=True
            )
        self.panel_actions[EXTRAS] = self._action(
            view_menu, "Show the extras (CFG parts, views, mask, …)", partial(self.set_panel_visible, EXTRAS), ["7"],
            checkable=True, checked=True,
        )
        self.second_view_action = self._action(
            view_menu, "See an &anagram through its second view", self.step_view.set_through_second_view, ["V"], checkable=True
        )
        view_menu.addSeparator()
        self._action(view_menu, "Zoom &in", lambda: self.change_zoom(+1), ["+", "="])
        self._action(view_menu, "Zoom &out", lambda: self.change_zoom(-1), ["-"])
        self._action(view_menu, "Zoom to &fit", lambda: self.set_zoom(FIT), ["0"])
        view_menu.addSeparator()
        self._action(view_menu, "&Step view", lambda: self.tabs.setCurrentIndex(STEP_TAB), ["Ctrl+1"])
        self._action(view_menu, "&Compare view", lambda: self.tabs.setCurrentIndex(COMPARE_TAB), ["Ctrl+2"])
        self._action(view_menu, "&Train view", self.show_training, ["Ctrl+3"])
        self.presentation_action = self._action(
            view_menu, "&Presentation mode", self.set_presentation, ["F5", "F11"], checkable=True
        )
        help_menu = menus.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, ["F1"])

    # --- session events -------------------------------------------------------------------------

    def _on_session_event(self, event: str) -> None:
        if event == PLAYBACK:
            if self.session.playing and not self.play_timer.isActive():
                self.play_timer.start()
            elif not self.session.playing:
                self.play_timer.stop()

    def _refresh_transport(self) -> None:
        run = self.session.active
        caption = "No run yet: press Generate (Enter)" if run is None else f"{run.name}      {run_caption(self.session, run)}"
        self.transport.refresh(caption)

    # --- sampling -------------------------------------------------------------------------------

    @property
    def is_sampling(self) -> bool:
        return self._sampling_job is not None

    def generate(self) -> None:
        """Sample with the Sample dock's settings; the frames appear as they are produced."""
        self._sample(lambda: [self.sample_panel.request()], compare=False)

    def sweep(self) -> None:
        """One run per guidance scale in the Sample dock, compared side by side."""
        self._sample(self.sample_panel.sweep_requests, compare=True)

    def run_if(self) -> None:
        """The IF dock's task; an SDEdit strip (several i_start) is compared side by side."""
        self.if_dock.raise_()
        try:
            requests = self.if_panel.requests()
        except UserFacingError as exc:
            self.show_error(str(exc))
            return
        self._sample(lambda: requests, compare=len(requests) > 1)

    def branch_from_step(self) -> None:
        """Continue the active IF run from the step on screen with the IF dock's prompt, γ and
        seed, as a new run compared beside it."""
        from core.if_tasks import BranchPoint

        run = self.session.active
        if run is None or self.session.view(run).pending:
            self.show_error("no step to branch from: run IF (Ctrl+R) or open an IF trajectory, then pick a step")
            return
        meta = run.trajectory.meta
        try:
            point = BranchPoint.from_run(meta, run.trajectory.frames, self.session.view(run).index, source=run.name)
            request = self.if_panel.requests(task=meta["params"].get("task", "sample"))[0]
        except UserFacingError as exc:
            self.show_error(str(exc))
            return
        request.branch = point
        if Path(str(meta.get("checkpoint", ""))).is_dir():  # the same stage I folder the run used
            request.model_dir, request.size = str(meta["checkpoint"]), None
        source_id = run.id
        self._sample(lambda: [request], compare=True)
        self.session.set_compared(source_id, True)

    def upscale_active_run(self) -> None:
        """Stage II on the active stage I run's result, as a stepped run of its own."""
        from visualizer.train_view import WORK_FOLDER

        run = self._complete_active_run("upscale")
        if run is None:
            return
        meta = run.trajectory.meta
        if meta.get("params", {}).get("stage") != 1:
            self.show_error("upscaling takes a finished IF stage I run: run IF (Ctrl+R) or open one, then Ctrl+U")
            return
        final = run.trajectory.frames[-1]
        source = Trajectory(meta, [final], run.trajectory.labels)  # stage II reads the final sample
        try:
            path = save_trajectory(source, WORK_FOLDER / "upscale-inputs" / f"run-{run.id}-{time.strftime('%Y%m%d-%H%M%S')}.npz")
            request = self.if_panel.requests(task="upscale")[0]
        except (UserFacingError, OSError) as exc:
            self.show_error(str(exc))
            return
        request.image, request.prompt = str(path), list(meta.get("prompts") or request.prompt)[:1]
        self._sample(lambda: [request], compare=False)

    def run_if_experiment(self, key: str) -> None:
        """A part A experiment in one click, with the IF dock's model, embeddings, image and seed."""
        self.if_dock.raise_()
        try:
            requests = self.if_panel.experiment_requests(key)
        except UserFacingError as exc:
            self.show_error(str(exc))
            return
        self._sample(lambda: requests, compare=PART_A_EXPERIMENTS[key][1] and len(requests) > 1)

    def _sample(self, make_requests, compare: bool) -> None:
        """Queue the requests and start the first; runs of a comparison replace the compared set."""
        if self.is_sampling:
            self.statusBar().showMessage("Already sampling: wait for it, or press Esc to cancel", 5000)
            return
        try:
            requests = make_requests()
        except UserFacingError as exc:
            self.show_error(str(exc))
            return
        if compare:
            for run_id in list(self.session.compared_ids):
                self.session.set_compared(run_id, False)
            self.tabs.setCurrentIndex(COMPARE_TAB)
        elif self.tabs.currentIndex() == TRAIN_TAB:
            self.tabs.setCurrentIndex(STEP_TAB)
        self._queue, self._queue_compares = requests, compare
        self._start_next_request()

    def _start_next_request(self) -> None:
        request = self._queue.pop(0)
        self._sampling_started = time.monotonic()
        self._sampling_run_id = None
        job = Job(partial(sampling_items, request), self)
        job.worker.item.connect(self._on_sampling_item)
        job.worker.finished.connect(self._on_sampling_finished)
        job.worker.failed.connect(self._on_sampling_failed)
        self._sampling_job = job
        self.sample_panel.set_busy(True)
        self.if_panel.set_busy(True)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.statusBar().showMessage("Loading the model…")
        job.start()

    def _on_sampling_item(self, item) -> None:
        if isinstance(item, RunHeader):
            run = self.session.add_run(item.meta, item.num_frames, item.labels)
            self._sampling_run_id = run.id
            if self._queue_compares:
                self.session.set_compared(run.id, True)
            self.progress.setRange(0, item.num_frames)
            self.progress.setValue(0)
            self.statusBar().showMessage(f"Sampling {run.name}…")
            return
        self.session.append_frame(self._sampling_run_id, item)
        self.progress.setValue(item.index + 1)

    def _on_sampling_finished(self, outcome: str) -> None:
        seconds = time.monotonic() - self._sampling_started
        run = self.session.run(self._sampling_run_id)
        self._end_sampling_job()
        if run is not None:
            self.session.finish_run(run.id, DONE if outcome == JOB_DONE else CANCELLED)
        if outcome != JOB_DONE:
            self._queue = []
            self.statusBar().showMessage(f"Cancelled after {run.produced if run else 0} frames", 8000)
        elif run is not None:
            self.statusBar().showMessage(f"Sampled {run.produced} frames in {seconds:.1f} s: scrub with ← →, play with Space", 8000)
        if self._queue:
            self._start_next_request()

    def _on_sampling_failed(self, message: str) -> None:
        run_id = self._sampling_run_id
        self._end_sampling_job()
        self._queue = []
        if run_id is not None:
            self.session.finish_run(run_id, FAILED, message)
        self.show_error(f"Sampling failed: {message}")

    def _end_sampling_job(self) -> None:
        self.if_panel.update_status()  # a run may have loaded an IF stage, or changed GPU memory
        job, self._sampling_job = self._sampling_job, None
        if job is not None:
            job.stop()
            job.deleteLater()
        self.sample_panel.set_busy(False)
        self.if_panel.set_busy(False)
        self.progress.setVisible(False)

    # --- experiments and training ----------------------------------------------------------------

    def experiment_options(self) -> ExperimentOptions:
        """The Sample dock's seed, device and steps; test digits from MNIST's default place
        (or the ten shipped in resources/data)."""
        steps = self.sample_panel.steps.value()
        return ExperimentOptions(
            seed=self.sample_panel.seed.value(),
            device=self.sample_panel.device.currentText(),
            steps=None if steps == MODEL_DEFAULT_STEPS else steps,
        )

    def run_experiment(self, key: str, options: Optional[ExperimentOptions] = None) -> None:
        """One click: the experiment's runs, shown in Step (one run) or side by side in Compare."""
        options = options or self.experiment_options()
        self._sample(lambda: experiment_requests(key, options), compare=EXPERIMENTS[key].compare)

    def compare_epochs(self, run_dir: str, epochs: list) -> None:
        options = self.experiment_options()
        options.run_dir, options.epochs = run_dir, epochs
        self.run_experiment("epochs", options)

    def show_training(self) -> None:
        self.tabs.setCurrentIndex(TRAIN_TAB)

    def start_training(self) -> None:
        self.show_training()
        self.train_view.start()

    def _on_checkpoint_saved(self, path: str) -> None:
        """Each epoch's checkpoint can be sampled at once from the Sample dock."""
        try:
            self.sample_panel.add_checkpoint(path, select=False)
        except UserFacingError as exc:
            self.show_error(str(exc))

    def cancel(self) -> None:
        """Stop sampling at the next step (the frames so far stay) and drop queued runs."""
        self._queue = []
        if self._sampling_job is not None:
            self._sampling_job.cancel()
            self.statusBar().showMessage("Cancelling at the next step…")

    def escape(self) -> None:
        if self.is_sampling:
            self.cancel()
        elif self.presentation:
            self.set_presentation(False)

    # --- runs -----------------------------------------------------------------------------------

    def remove_active_run(self) -> None:
        run = self.session.active
        if run is None:
            return
        if run.state == RUNNING:
            self.statusBar().showMessage("Cancel the run (Esc) before removing it", 5000)
            return
        self._removed_runs.append((run, run.id in self.session.compared_ids))
        self.session.remove_run(run.id)
        self.statusBar().showMessage(f"Removed {run.name}: Ctrl+Z brings it back", 8000)

    def undo_remove_run(self) -> None:
        if not self._removed_runs:
            return
        run, compared = self._removed_runs.pop()
        restored = self.session.add_run(
            run.trajectory.meta, run.length, run.trajectory.labels, run.name, run.trajectory.frames, run.state, run.path
        )
        if compared:
            self.session.set_compared(restored.id, True)

    # --- files ----------------------------------------------------------------------------------

    def _last_folder(self) -> str:
        return str(self.settings.value("last_folder", str(Path.home())))

    def _remember_folder(self, path: str | Path) -> None:
        self.settings.setValue("last_folder", str(Path(path).parent))

    def ask_open(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open trajectories", self._last_folder(), TRAJECTORY_FILTER)
        for path in paths:
            self.open_trajectory(path)

    def open_trajectory(self, path: str | Path) -> bool:
        """Open a trajectory file as a new run; a bad file is reported and changes nothing."""
        try:
            trajectory = load_trajectory(path)
        except UserFacingError as exc:
            self.show_error(str(exc))
            return False
        self.session.add_run(
            trajectory.meta, len(trajectory), trajectory.labels, frames=trajectory.frames, state=LOADED, path=Path(path)
        )
        self._remember_folder(path)
        self.statusBar().showMessage(
            f"Opened {Path(path).name}: {len(trajectory)} frames, {trajectory.meta['algorithm']} ({trajectory.meta['model']})", 8000
        )
        return True

    def ask_add_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a checkpoint", self._last_folder(), CHECKPOINT_FILTER)
        if path:
            self.add_checkpoint(path)

    def add_checkpoint(self, path: str | Path) -> bool:
        try:
            self.sample_panel.add_checkpoint(path)
        except UserFacingError as exc:
            self.show_error(str(exc))
            return False
        self._remember_folder(path)
        self.statusBar().showMessage(f"Added {Path(path).name}: press Enter to sample it", 8000)
        return True

    def _complete_active_run(self, verb: str):
        run = self.session.active
        if run is None:
            self.show_error(f"nothing to {verb}: generate or open a run first")
            return None
        if run.state == RUNNING:
            self.show_error(f"the run is still sampling: wait for it or cancel it (Esc) before you {verb} it")
            return None
        return run

    def ask_save(self) -> None:
        run = self._complete_active_run("save")
        if run is None:
            return
        suggested = str(run.path or Path(self._last_folder()) / "run.npz")
        path, _ = QFileDialog.getSaveFileName(self, "Save trajectory", suggested, TRAJECTORY_FILTER)
        if path:
            self.save_trajectory_to(path if path.endswith(".npz") else path + ".npz")

    def save_trajectory_to(self, path: str | Path) -> bool:
        run = self._complete_active_run("save")
        if run is None:
            return False
        try:
            save_trajectory(run.trajectory, path)
        except (OSError, ValueError) as exc:
            self.show_error(f"could not save {path}: {exc}")
            return False
        run.path = Path(path)
        self._remember_folder(path)
        self.statusBar().showMessage(f"Saved {path}", 8000)
        return True

    # --- export ---------------------------------------------------------------------------------

    def visible_fields(self, run) -> list[str]:
        keys = [key for key in PANEL_KEYS if self.step_view.visible[key]]
        return [name for name in (field_for(run, key) for key in keys) if name is not None] or ["x_t"]

    def ask_export(self) -> None:
        run = self._complete_active_run("export")
        if run is None:
            return
        dialog = ExportDialog(run.trajectory, self.session.fps, self.visible_fields(run), self)
        if not dialog.exec():
            return
        try:
            options = dialog.options()
        except UserFacingError as exc:
            self.show_error(str(exc))
            return
        suffix = f".{options.format}"
        suggested = str(Path(self._last_folder()) / f"run{suffix}")
        path, _ = QFileDialog.getSaveFileName(self, "Export animation", suggested, f"{options.format.upper()} (*{suffix})")
        if path:
            self.export_animation_to(path if path.lower().endswith(suffix) else path + suffix, options)

    def ask_anagram_turn(self) -> None:
        """The active anagram's result turning into its second view, as a GIF or MP4."""
        run = self._complete_active_run("export")
        if run is None:
            return
        suggested = str(Path(self._last_folder()) / "anagram-turn.gif")
        path, _ = QFileDialog.getSaveFileName(self, "Export the anagram turn", suggested, "GIF (*.gif);;MP4 (*.mp4)")
        if path:
            self.export_anagram_turn_to(path)

    def export_anagram_turn_to(self, path: str | Path) -> bool:
        path = Path(path)
        kind = "mp4" if path.suffix.lower() == ".mp4" else "gif"
        options = ExportOptions(panels=["x_t"], start=0, end=None, fps=12.0, scale=6, format=kind)
        return self.export_animation_to(path, options, transform=anagram_turn)

    def export_animation_to(self, path: str | Path, options: ExportOptions, transform=None) -> bool:
        """Render on a worker with a progress dialog whose Cancel leaves no file behind.
        `transform` makes the trajectory to render from the run's (the anagram turn)."""
        run = self._complete_active_run("export")
        if run is None:
            return False
        if self._export_job is not None:
            self.show_error("an export is already running")
            return False
        trajectory = Trajectory(run.trajectory.meta, list(run.trajectory.frames), run.trajectory.labels)
        if transform is not None:
            try:
                trajectory = transform(trajectory)
            except ValueError as exc:
                self.show_error(str(exc))
                return False
        path = Path(path)
        if path.suffix.lower() != f".{options.format}":
            path = path.with_suffix(f".{options.format}")
        make_items = partial(
            export_animation, trajectory, path, options.panels, options.fps, options.every, options.scale, options.start, options.end
        )
        job = Job(make_items, self)
        job.worker.item.connect(self._on_export_progress)
        job.worker.finished.connect(self._on_export_finished)
        job.worker.failed.connect(self._on_export_failed)
        self._export_job, self._export_path = job, path
        self.export_progress = QProgressDialog(f"Rendering {path.name}…", "Cancel", 0, 0, self)
        self.export_progress.setWindowTitle("Export")
        self.export_progress.setMinimumDuration(0)
        self.export_progress.canceled.connect(job.cancel)
        self.export_progress.show()
        job.start()
        return True

    def _on_export_progress(self, progress: tuple[int, int]) -> None:
        done, total = progress
        if self.export_progress is not None:
            self.export_progress.setMaximum(total)
            self.export_progress.setValue(done)
            if done == total:
                self.export_progress.setLabelText("Encoding…")

    def _end_export_job(self) -> None:
        job, self._export_job = self._export_job, None
        if job is not None:
            job.stop()
            job.deleteLater()
        if self.export_progress is not None:
            self.export_progress.canceled.disconnect()
            self.export_progress.close()
            self.export_progress.deleteLater()
            self.export_progress = None

    def _on_export_finished(self, outcome: str) -> None:
        self._end_export_job()
        if outcome == JOB_DONE:
            self._remember_folder(self._export_path)
            self.statusBar().showMessage(f"Wrote {self._export_path}", 10000)
        else:
            self.statusBar().showMessage("Export cancelled: nothing was written", 8000)

    def _on_export_failed(self, message: str) -> None:
        self._end_export_job()
        self.show_error(f"Export failed: {message}")

    def ask_contact_sheet(self) -> None:
        run = self._complete_active_run("export")
        if run is None:
            return
        suggested = str(Path(self._last_folder()) / "contact-sheet.png")
        path, _ = QFileDialog.getSaveFileName(self, "Export contact sheet", suggested, "PNG (*.png)")
        if path:
            self.export_contact_sheet_to(path if path.lower().endswith(".png") else path + ".png")

    def export_contact_sheet_to(self, path: str | Path, steps_shown: Optional[list[int]] = None) -> bool:
        """Eight evenly spaced steps (or `steps_shown`), one row each, of the panels on screen."""
        run = self._complete_active_run("export")
        if run is None:
            return False
        try:
            write_png_grid(run.trajectory, path, steps_shown, self.visible_fields(run), scale=2)
        except (OSError, ValueError) as exc:
            self.show_error(f"could not write {path}: {exc}")
            return False
        self._remember_folder(path)
        self.statusBar().showMessage(f"Wrote {path}", 10000)
        return True

    # --- view settings --------------------------------------------------------------------------

    def set_panel_visible(self, key: str, visible: bool) -> None:
        widgets = {"equation": self.step_view.equation, "histogram": self.step_view.histogram, "schedule": self.step_view.schedule}
        if key in widgets:
            widgets[key].setVisible(visible)
        else:
            self.step_view.set_panel_visible(key, visible)
        if self.panel_actions[key].isChecked() != visible:
            self.panel_actions[key].setChecked(visible)

    def set_zoom(self, zoom: int) -> None:
        self.zoom = zoom
        self.step_view.set_zoom(zoom)
        self.compare_view.set_zoom(zoom)
        self.statusBar().showMessage("Zoom: fit (integer)" if zoom == FIT else f"Zoom: {zoom}×", 3000)

    def change_zoom(self, direction: int) -> None:
        current = self.zoom or self.step_view.panels["x_t"].factor
        choices = [choice for choice in ZOOM_CHOICES if choice != FIT]
        if direction > 0:
            bigger = [choice for choice in choices if choice > current]
            self.set_zoom(bigger[0] if bigger else choices[-1])
        else:
            smaller = [choice for choice in choices if choice < current]
            self.set_zoom(smaller[-1] if smaller else choices[0])

    # --- presentation mode ----------------------------------------------------------------------

    def set_presentation(self, on: bool) -> None:
        """Full screen, large high-contrast text, controls hidden until the mouse moves."""
        if on == self.presentation:
            return
        self.presentation = on
        if self.presentation_action.isChecked() != on:
            self.presentation_action.setChecked(on)
        app = QApplication.instance()
        if on:
            self._state_before_presentation = self.saveState()
            self.setStyleSheet(PRESENTATION_STYLE)
            for dock in (self.sample_dock, self.if_dock, self.runs_dock):
                dock.hide()
            self.menuBar().hide()
            self.statusBar().hide()
            self._show_presentation_controls(False)
            app.installEventFilter(self)
            self.showFullScreen()
        else:
            app.removeEventFilter(self)
            self.hide_timer.stop()
            self.setStyleSheet(NORMAL_STYLE)
            self.menuBar().show()
            self.statusBar().show()
            self.transport.show()
            self.tabs.tabBar().show()
            self.restoreState(self._state_before_presentation)
            self.showNormal()

    def _show_presentation_controls(self, visible: bool) -> None:
        if not self.presentation:
            return
        self.transport.setVisible(visible)
        self.tabs.tabBar().setVisible(visible)
        if visible:
            self.hide_timer.start()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if self.presentation and event.type() == QEvent.Type.MouseMove:
            self._show_presentation_controls(True)
        return super().eventFilter(watched, event)

    # --- errors, help, drops --------------------------------------------------------------------

    def show_error(self, message: str) -> None:
        """The status bar and a dialog say what went wrong; nothing else changes."""
        self.last_error = message
        self.statusBar().showMessage(message, 15000)
        if self.error_box is not None:
            self.error_box.close()
        self.error_box = QMessageBox(QMessageBox.Icon.Warning, "diffusion-stepper", message, QMessageBox.StandardButton.Ok, self)
        self.error_box.finished.connect(self.activateWindow)  # keys go back to the window's shortcuts
        self.error_box.open()

    def show_shortcuts(self) -> None:
        lines = [f"{action.shortcut().toString():>14}   {action.text().replace('&', '')}" for action in self.actions() if not action.shortcut().isEmpty()]
        box = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts", "\n".join(lines), QMessageBox.StandardButton.Ok, self)
        box.open()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_dropped(url.toLocalFile())
        event.acceptProposedAction()

    def open_dropped(self, path: str) -> None:
        """A trajectory opens as a run; a checkpoint joins the model list; a picture becomes the
        IF dock's image."""
        suffix = Path(path).suffix.lower()
        if suffix in (".safetensors", ".json"):
            self.add_checkpoint(path)
        elif suffix in IMAGE_SUFFIXES:
            self.if_panel.set_image(path)
            self.if_dock.raise_()
            self.statusBar().showMessage(f"IF image: {Path(path).name} (pick a task in the DeepFloyd IF dock, then Ctrl+R)", 8000)
        else:
            self.open_trajectory(path)

    # --- settings and closing -------------------------------------------------------------------

    def _restore_settings(self) -> None:
        settings = self.settings
        geometry = settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = settings.value("window_state")
        if state is not None:
            self.restoreState(state)
        splitter = settings.value("step_splitter")
        if splitter is not None:
            self.step_view.splitter.restoreState(splitter)
        for key in self.panel_actions:
            self.set_panel_visible(key, _as_bool(settings.value(f"panels/{key}", True)))
        self.session.set_fps(float(settings.value("fps", self.session.fps)))
        self.session.set_loop(_as_bool(settings.value("loop", self.session.loop)))
        zoom = int(settings.value("zoom", FIT))
        if zoom in ZOOM_CHOICES and zoom != FIT:
            self.set_zoom(zoom)
        model = settings.value("model")
        if model:
            self.sample_panel.select_model(str(model))

    def save_settings(self) -> None:
        settings = self.settings
        settings.setValue("geometry", self.saveGeometry())
        if not self.presentation:
            settings.setValue("window_state", self.saveState())
        settings.setValue("step_splitter", self.step_view.splitter.saveState())
        for key, action in self.panel_actions.items():
            settings.setValue(f"panels/{key}", action.isChecked())
        settings.setValue("fps", self.session.fps)
        settings.setValue("loop", self.session.loop)
        settings.setValue("zoom", self.zoom)
        if self.sample_panel.model_key:
            settings.setValue("model", self.sample_panel.model_key)
        settings.sync()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Stop the workers at their next step and wait for them, so closing mid-run exits cleanly."""
        self.session.set_playing(False)
        self._queue = []
        for job in (self._sampling_job, self._export_job):
            if job is not None:
                job.stop()
        self.train_view.shutdown()
        if self.presentation:
            self.set_presentation(False)
        self.save_settings()
        super().closeEvent(event)


def _as_bool(value) -> bool:
    """QSettings gives back "true"/"false" strings from INI files."""
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)
