"""The main window: a shell that lays out the docks, the Step, Compare and Train tabs and the
transport bar, and wires them to the controllers. Menus come from `menus.py`; each job (sampling,
exporting, training, files, settings, presentation) belongs to its controller."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QMainWindow, QProgressBar, QTabWidget, QVBoxLayout, QWidget

from diffusion_stepper.core import __version__
from diffusion_stepper.core.deepfloyd_if.images import IMAGE_SUFFIXES
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.mnist.experiments import EXPERIMENTS
from diffusion_stepper.core.session import PLAYBACK, Session
from diffusion_stepper.visualizer.controllers.deepfloyd_if import IFRunsController
from diffusion_stepper.visualizer.controllers.export import ExportController
from diffusion_stepper.visualizer.controllers.files import FilesController
from diffusion_stepper.visualizer.controllers.judging import JudgeController
from diffusion_stepper.visualizer.controllers.lab2d import Lab2DController
from diffusion_stepper.visualizer.controllers.messages import Messages
from diffusion_stepper.visualizer.controllers.presentation import PresentationController
from diffusion_stepper.visualizer.controllers.quitting import QuitQuestion
from diffusion_stepper.visualizer.controllers.sampling import SamplingController
from diffusion_stepper.visualizer.controllers.settings import SettingsController, default_settings, fit_on_screen
from diffusion_stepper.visualizer.controllers.training import IDLE, TRAINING, TrainingController
from diffusion_stepper.visualizer.dialogs.measure_dialog import stop_measurements
from diffusion_stepper.visualizer.docks.if_dock import IFDock
from diffusion_stepper.visualizer.docks.lab2d_dock import Lab2DDock
from diffusion_stepper.visualizer.docks.sample_dock import SampleDock
from diffusion_stepper.visualizer.gui_thread_gc import collect_garbage_on_gui_thread
from diffusion_stepper.visualizer.menus import COMPARE_TAB, STEP_TAB, TRAIN_TAB, build_menus
from diffusion_stepper.visualizer.style import NORMAL, style_sheet
from diffusion_stepper.visualizer.views.common import CoalescedRefresh, run_caption
from diffusion_stepper.visualizer.views.compare_view import CompareView
from diffusion_stepper.visualizer.views.runs_list import RunsList
from diffusion_stepper.visualizer.views.step_view import StepView
from diffusion_stepper.visualizer.views.train_view import TrainView
from diffusion_stepper.visualizer.widgets.panels import FIT, ZOOM_CHOICES
from diffusion_stepper.visualizer.widgets.timeline import CAPTION_GAP, TransportBar

GIL_SWITCH_SECONDS = 0.0005  # how long a thread may hold the GIL while another waits (Python's default: 5 ms)
PLAY_TICK_MS = 15  # the playback clock; the position itself comes from elapsed time


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        collect_garbage_on_gui_thread()  # so that no worker thread ever destroys a widget
        # The workers' torch code takes the GIL back between operations hundreds of times per
        # step; with Python's 5 ms default the GUI thread's redraws hold it that long each time,
        # which measurably slowed the Train tab's Quick run on 2 cores.
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        self.setWindowTitle(f"diffusion-stepper {__version__}")
        self.setAcceptDrops(True)
        self.setStyleSheet(style_sheet(NORMAL))
        self.session = Session()
        self.zoom = FIT

        self.sample_dock = SampleDock(self)
        self.if_dock = IFDock(self)
        self.lab2d_dock = Lab2DDock(self)
        self.runs_list = RunsList(self.session)
        self.step_view = StepView(self.session)
        self.compare_view = CompareView(self.session)
        self.training = TrainingController(self)
        self.quit_question = QuitQuestion(self)  # closing while training asks first
        self.train_view = TrainView(self.training)
        self.tabs = QTabWidget()
        for view, title in ((self.step_view, "Step"), (self.compare_view, "Compare"), (self.train_view, "Train")):
            self.tabs.addTab(view, title)
        self.transport = TransportBar(self.session)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.transport)
        self.setCentralWidget(central)
        for dock in (self.sample_dock, self.if_dock, self.lab2d_dock):
            self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
            if dock is not self.sample_dock:
                self.tabifyDockWidget(self.sample_dock, dock)
        self.sample_dock.raise_()
        self.runs_dock = QDockWidget("Runs", self)
        self.runs_dock.setObjectName("runsDock")
        self.runs_dock.setWidget(self.runs_list)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.runs_dock)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setFormat("%v / %m frames")
        self.progress.setVisible(False)
        self.statusBar().addPermanentWidget(self.progress)

        self.messages = Messages(self)
        remembered = (self.step_view, self.transport, self.sample_dock)  # each keeps its own settings
        self.settings = SettingsController(settings if settings is not None else default_settings(), remembered, self)
        self.files = FilesController(self.session, self.messages, self.settings, self.sample_dock, self)
        self.sampling = SamplingController(self.session, self.messages, self)
        self.judging = JudgeController(self.session, self.messages, self)
        self.exports = ExportController(self.session, self.messages, self.files, self.step_view.visible_fields, self)
        self.if_runs = IFRunsController(self.session, self.if_dock, self.sampling, self)
        self.lab2d = Lab2DController(self.lab2d_dock, self.messages, self.sampling, self.files, self)
        docks = (self.sample_dock, self.if_dock, self.lab2d_dock, self.runs_dock)
        self.presentation = PresentationController(self, docks, [self.transport], hidden=[self.tabs.tabBar()])
        self._connect()
        self.toggles = build_menus(self, self.menuBar())
        # a toggle's check mark follows its one owner, whoever changed it (the menu, Esc, the settings)
        self.presentation.toggled.connect(self.toggles["presentation"].setChecked)
        self.step_view.part_toggled.connect(lambda key, shown: self.toggles[key].setChecked(shown))
        self.presentation.toggled.connect(self._size_plot_text)
        self.settings.restore(self)
        self.messages.show("Ready: press Enter to sample the digits 0–9", 30_000)

    def _connect(self) -> None:
        self.sample_dock.generate_requested.connect(self.generate)
        self.sample_dock.sweep_requested.connect(self.sweep)
        self.sample_dock.cancel_requested.connect(self.sampling.cancel)
        self.sample_dock.open_checkpoint_requested.connect(self.files.ask_add_checkpoint)
        self.if_dock.run_requested.connect(self.if_runs.run)
        self.if_dock.cancel_requested.connect(self.sampling.cancel)
        for dock in (self.sample_dock, self.if_dock):
            self.sampling.busy_changed.connect(dock.set_busy)
        self.sampling.busy_changed.connect(self.progress.setVisible)
        self.sampling.progress.connect(self._show_progress)
        self.sampling.started.connect(self._show_new_runs)
        self.sampling.race_started.connect(self.compare_view.show_race)
        self.compare_view.save_plot_requested.connect(lambda: self.files.ask_save_plot(self.compare_view.save_plot))
        for source in (self.training, self.train_view):
            source.failed.connect(self.messages.error)
        self.training.checkpoint_saved.connect(lambda path: self.files.add_checkpoint(path, select=False))
        self.training.state_changed.connect(self._show_training_state)
        self.train_view.compare_epochs_requested.connect(self.compare_epochs)
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(PLAY_TICK_MS)
        self.play_timer.timeout.connect(lambda: self.session.playback_tick(time.monotonic()))
        self.session.subscribe(self._on_session_event)
        self.transport_refresher = CoalescedRefresh(self.session, self._refresh_transport, self)

    # --- what the views show --------------------------------------------------------------------

    def _on_session_event(self, event: str) -> None:
        if event == PLAYBACK:
            if self.session.playing and not self.play_timer.isActive():
                self.play_timer.start()
            elif not self.session.playing:
                self.play_timer.stop()

    def _refresh_transport(self) -> None:
        run = self.session.active
        caption = (
            "No run yet: press Generate (Enter)"
            if run is None
            else f"{run.name}{CAPTION_GAP}{run_caption(self.session, run)}"  # the name is cut first
        )
        self.transport.refresh(caption)

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _show_new_runs(self, compared: bool) -> None:
        """New runs show in Compare when they are compared, else in Step: a single run started
        from Compare or Train is not added out of sight."""
        self.show_tab(COMPARE_TAB if compared else STEP_TAB)

    def _size_plot_text(self, presenting: bool) -> None:
        """The plots' text follows presentation mode's size, like the rest of the text."""
        for view in (self.step_view, self.compare_view, self.train_view):
            view.set_presentation(self.presentation.text_px if presenting else None)

    def _show_training_state(self, state: str) -> None:
        if state == TRAINING:
            self.messages.show(f"Training into {self.training.run_dir}: Ctrl+P pauses, Ctrl+Shift+T stops", 0)
        elif state == IDLE:
            self.messages.show("Training ended: the Train tab says how")

    def show_tab(self, index: int) -> None:
        self.tabs.setCurrentIndex(index)

    def set_zoom(self, zoom: int) -> None:
        self.zoom = zoom
        self.step_view.set_zoom(zoom)
        self.compare_view.set_zoom(zoom)
        self.messages.show("Zoom: fit (integer)" if zoom == FIT else f"Zoom: {zoom}×", 3000)

    def change_zoom(self, direction: int) -> None:
        current = self.zoom or self.step_view.zoom_factor
        choices = [choice for choice in ZOOM_CHOICES if choice != FIT]
        if direction > 0:
            self.set_zoom(next((choice for choice in choices if choice > current), choices[-1]))
        else:
            self.set_zoom(next((choice for choice in reversed(choices) if choice < current), choices[0]))

    # --- runs -----------------------------------------------------------------------------------

    def generate(self) -> None:
        """Sample with the Sample dock's settings; the frames appear as they are produced."""
        self.sampling.start(lambda: [self.sample_dock.request()])

    def sweep(self) -> None:
        """One run per guidance scale in the Sample dock, compared side by side."""
        self.sampling.start(self.sample_dock.sweep_requests, compare=True)

    def run_experiment(self, key: str, options=None, nfe: int | None = None) -> None:
        """A part B experiment in one click, shown in Step (one run) or side by side in Compare; a
        sampler race spends `nfe` model evaluations per sampler and lines its runs up by NFE."""
        options = options or self.sample_dock.experiment_options()
        if nfe is not None:
            options.nfe = nfe
        self.sampling.start_experiment(EXPERIMENTS, key, lambda: options)

    def show_epoch_comparison(self) -> None:
        """The Train tab's epoch comparison, with the runs on disk to pick from, or what to do first."""
        self.show_tab(TRAIN_TAB)
        if self.train_view.offer_epoch_comparison():
            self.messages.show("Pick a run and its epochs, then press Compare epochs", 5000)
        else:
            self.messages.show("No training run on disk yet: press Start (Ctrl+T) here, then compare its epochs", 8000)

    def compare_epochs(self, run_dir: str, epochs: list) -> None:
        options = self.sample_dock.experiment_options()
        options.run_dir, options.epochs = run_dir, epochs
        self.run_experiment("epochs", options)

    def start_training(self) -> None:
        self.show_tab(TRAIN_TAB)
        self.train_view.start()

    def escape(self) -> None:
        if self.sampling.busy:
            self.sampling.cancel()
        elif self.presentation.active:
            self.presentation.set_active(False)

    def remove_active_run(self) -> None:
        run = self.session.active
        if run is None:
            return
        try:
            self.session.remove_run_undoably(run.id)
        except UserFacingError as exc:
            self.messages.show(str(exc), 5000)
            return
        self.messages.show(f"Removed {run.name}: Ctrl+Z brings it back")

    def undo_remove_run(self) -> None:
        run = self.session.undo_remove()
        if run is not None:
            self.messages.show(f"Brought back {run.name}")

    # --- help, drops, closing -------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_dropped(url.toLocalFile())
        event.acceptProposedAction()

    def open_dropped(self, path: str) -> None:
        """A trajectory opens as a run; a checkpoint or a folder (a diffusers one) joins the model
        list; a picture becomes the IF dock's image."""
        suffix = Path(path).suffix.lower()
        if suffix in (".safetensors", ".json") or Path(path).is_dir():
            self.files.add_checkpoint(path)
        elif suffix in IMAGE_SUFFIXES:
            self.if_dock.set_image(path)
            self.if_dock.raise_()
            self.messages.show(f"IF image: {Path(path).name} (pick a task in the DeepFloyd IF dock, then Ctrl+R)")
        else:
            self.files.open_trajectory(path)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self.presentation.active and not self.isMaximized():
            fit_on_screen(self)  # now that the window's frame is known

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Stop the workers at their next step and wait for them, so closing mid-run exits cleanly;
        with training running, ask first (the epoch in progress, or a 2D model, would be lost)."""
        if not self.quit_question.allows_quitting():
            event.ignore()
            return
        self.session.set_playing(False)
        self.sampling.stop()
        self.exports.stop()
        self.judging.stop()
        self.lab2d.stop()
        stop_measurements(self)
        self.training.shutdown()
        self.presentation.set_active(False)
        self.settings.save(self)
        super().closeEvent(event)
