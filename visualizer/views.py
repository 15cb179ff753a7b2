"""The views over the session: the step view, the comparison view and the runs list.

Each subscribes to the session and redraws itself on the next turn of the event loop, so a burst
of frames from the worker costs one redraw, not one per frame.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QBoxLayout,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.equations import frame_caption, step_equation
from core.session import CANCELLED, FAILED, RUNNING, Run, Session
from core.theory import CLEAN_EXTRA, frame_histograms, known_clean_image, schedule_curves
from visualizer.panels import FIT, EquationPanel, ImagePanel, panel_title
from visualizer.plots import HistogramPlot, SchedulePlot

NOISE = "noise"  # the panel key for eps_hat or v_hat, whichever the run has
PANEL_KEYS = ("x_t", "x0_hat", NOISE)
EXTRAS = "extras"  # the visibility key of the extras strip
WIDE_GRID = 1.6  # a grid this much wider than tall stacks the panels vertically


class CoalescedRefresh(QObject):
    """Calls `refresh` once on the next event-loop turn after any session event."""

    def __init__(self, session: Session, refresh: Callable[[], None], parent: QObject):
        super().__init__(parent)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(0)
        self.timer.timeout.connect(refresh)
        session.subscribe(self._on_event)

    def _on_event(self, event: str) -> None:
        if not self.timer.isActive():
            self.timer.start()


def run_caption(session: Session, run: Run) -> str:
    view = session.view(run)
    if view.pending:
        return f"step {view.index}/{run.length - 1} · pending"
    caption = frame_caption(run.trajectory.meta, view.frame, run.length)
    if run.state == RUNNING:
        caption += f"   ·   sampling {run.produced}/{run.length}"
    elif run.state in (CANCELLED, FAILED):
        caption += f"   ·   {run.state} after {run.produced} frames"
    return caption


def field_for(run: Run, key: str) -> Optional[str]:
    """The frame field a panel key shows for this run (the noise key means eps_hat or v_hat)."""
    return run.trajectory.noise_field if key == NOISE else key


class StepView(QWidget):
    """The active run at the current step: image panels, the update rule, histogram, schedule."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.panels = {key: ImagePanel(key if key != NOISE else "eps_hat") for key in PANEL_KEYS}
        self.panel_box = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        self.panel_box.setContentsMargins(0, 0, 0, 0)
        for panel in self.panels.values():
            self.panel_box.addWidget(panel, 1)
        self.empty_message = QLabel("Press Generate (Enter) to sample the digits 0–9, or open a trajectory (Ctrl+O).")
        self.empty_message.setObjectName("emptyMessage")
        self.empty_message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.panel_box.addWidget(self.empty_message)
        # The extras strip: a smaller panel per extra image the run carries (CFG's two estimates,
        # each anagram view, a hybrid's two parts, the mask and the original, ...).
        self.extra_panels: dict[str, ImagePanel] = {}
        self.extras_area = QWidget()
        self.extras_box = QHBoxLayout(self.extras_area)
        self.extras_box.setContentsMargins(0, 0, 0, 0)
        self.extras_area.setVisible(False)
        self.note = QLabel("")
        self.note.setObjectName("runNote")
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        panel_column = QVBoxLayout()
        panel_column.setContentsMargins(0, 0, 0, 0)
        panel_column.addWidget(self.note)
        panel_column.addLayout(self.panel_box, 3)
        panel_column.addWidget(self.extras_area, 1)
        panel_area = QWidget()
        panel_area.setLayout(panel_column)

        self.equation = EquationPanel()
        self.histogram = HistogramPlot()
        self.schedule = SchedulePlot()
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.histogram)
        plots.addWidget(self.schedule)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(panel_area)
        self.splitter.addWidget(self.equation)
        self.splitter.addWidget(plots)
        self.splitter.setStretchFactor(0, 5)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 2)
        self.splitter.setSizes([460, 170, 270])  # the images get most of the height
        self.plots_splitter = plots
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self.visible = {key: True for key in PANEL_KEYS + (EXTRAS,)}
        self.through_second_view = False  # anagrams: show the main panels as the second view sees them
        self._schedule_for: Optional[int] = None  # the run whose schedule the plot shows
        self.refresher = CoalescedRefresh(session, self.refresh, self)
        self.refresh()

    def set_panel_visible(self, key: str, visible: bool) -> None:
        self.visible[key] = visible
        self.refresh()

    def set_zoom(self, zoom: int) -> None:
        for panel in self.panels.values():
            panel.set_zoom(zoom)

    def set_through_second_view(self, on: bool) -> None:
        self.through_second_view = on
        self.refresh()

    def _second_view(self, run):
        """The anagram's second view, when the toggle is on and the run is an anagram; else None."""
        views = run.trajectory.meta.get("params", {}).get("views") or []
        if not self.through_second_view or len(views) < 2:
            return None
        from core.if_sampling import make_view

        return make_view(views[1])

    def _sync_extra_panels(self, run) -> list[str]:
        """One panel per extra image of the run, in the run's order; returns the names shown."""
        names = [] if run is None or not self.visible[EXTRAS] else run.trajectory.extra_names()
        if list(self.extra_panels) != names:
            for panel in self.extra_panels.values():
                self.extras_box.removeWidget(panel)
                panel.deleteLater()
            self.extra_panels = {name: ImagePanel(name) for name in names}
            for panel in self.extra_panels.values():
                self.extras_box.addWidget(panel, 1)
        self.extras_area.setVisible(bool(names))
        return names

    def refresh(self) -> None:
        run = self.session.active
        self.empty_message.setVisible(run is None)
        note = "" if run is None else str(run.trajectory.meta.get("note", ""))
        self.note.setText(note)
        self.note.setVisible(bool(note))
        for key, panel in self.panels.items():
            panel.setVisible(run is not None and self.visible[key] and field_for(run, key) is not None)
        extra_names = self._sync_extra_panels(run)
        if run is None:
            self.equation.show_lines("Update rule", ["No run yet."])
            self.histogram.clear_frame()
            self.schedule.set_schedule(None, "")
            self._schedule_for = None
            return
        if self._schedule_for != run.id:
            self._schedule_for = run.id
            self.schedule.set_schedule(
                schedule_curves(run.trajectory.meta), "no schedule: the single-step denoiser jumps in one step"
            )
        view = self.session.view(run)
        if view.pending:
            for panel in list(self.panels.values()) + list(self.extra_panels.values()):
                panel.show_pending()
            self.equation.show_lines("Update rule", [f"step {view.index}: pending, the worker has not reached it yet"])
            return
        frame, trajectory = view.frame, run.trajectory
        second_view = self._second_view(run)
        for name in extra_names:
            images = frame.extras.get(name)
            if images is None and name == CLEAN_EXTRA:  # a run may carry the original on one frame only
                images = known_clean_image(trajectory)
            if images is None:  # e.g. CFG's parts on the final frame, which has no estimate: blank
                images = torch.zeros_like(frame.x_t)
            self.extra_panels[name].show_images(images, trajectory.value_range, trajectory.labels, name)
        for key, panel in self.panels.items():
            name = field_for(run, key)
            if name is not None and panel.isVisibleTo(self):
                images, title = frame.image(name), panel_title(name)
                if second_view is not None:
                    images, title = second_view.apply(images), f"{title}   (seen through {second_view.name})"
                panel.set_title(title)
                panel.show_images(images, trajectory.value_range, trajectory.labels, name)
                # inpainting: tint the region being made anew over x_t and x̂₀
                panel.set_overlay(frame.extras.get("mask") if key in ("x_t", "x0_hat") else None, trajectory.labels)
        self._orient_panels()
        self.equation.show_lines(f"Update rule: {trajectory.meta.get('algorithm', '')}", step_equation(trajectory.meta, frame))
        self.histogram.show_histograms(frame_histograms(trajectory, frame))
        if self.schedule.schedule is not None:
            self.schedule.set_cursor(frame.t)

    def _orient_panels(self) -> None:
        grid = self.panels["x_t"].grid
        if grid is None:
            return
        wide = grid.shape[1] > WIDE_GRID * grid.shape[0]
        direction = QBoxLayout.Direction.TopToBottom if wide else QBoxLayout.Direction.LeftToRight
        if self.panel_box.direction() != direction:
            self.panel_box.setDirection(direction)


class CompareView(QWidget):
    """The compared runs stacked on one shared timeline, aligned by normalized time."""

    FIELDS = {"x_t": "x_t", "x0_hat": "x̂₀ clean estimate", NOISE: "noise estimate"}

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.field = QComboBox()
        for key, label in self.FIELDS.items():
            self.field.addItem(label, key)
        self.field.currentIndexChanged.connect(self.refresh)
        self.hint = QLabel("Tick two or more runs in the Runs list, or press Sweep γ, to compare them here.")
        self.hint.setObjectName("emptyMessage")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show"))
        top.addWidget(self.field)
        top.addStretch(1)
        self.panel_box = QVBoxLayout()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.hint, 1)
        layout.addLayout(self.panel_box, 1)
        self.panels: dict[int, ImagePanel] = {}
        self.zoom = FIT
        self.refresher = CoalescedRefresh(session, self.refresh, self)

    @property
    def field_key(self) -> str:
        return self.field.currentData()

    def set_zoom(self, zoom: int) -> None:
        self.zoom = zoom
        for panel in self.panels.values():
            panel.set_zoom(zoom)

    def refresh(self) -> None:
        runs = self.session.compared
        self.hint.setVisible(len(runs) < 2)
        if [run.id for run in runs] != list(self.panels):
            self._rebuild([run.id for run in runs])
        for run in runs:
            panel = self.panels[run.id]
            view = self.session.view(run)
            panel.set_title(f"{run.name}      {run_caption(self.session, run)}")
            name = field_for(run, self.field_key)
            if view.pending:
                panel.show_pending()
            elif name is not None:
                panel.show_images(view.frame.image(name), run.trajectory.value_range, run.trajectory.labels, name)

    def _rebuild(self, run_ids: list[int]) -> None:
        for panel in self.panels.values():
            self.panel_box.removeWidget(panel)
            panel.deleteLater()
        self.panels = {}
        for run_id in run_ids:
            panel = ImagePanel("x_t")
            panel.set_zoom(self.zoom)
            self.panels[run_id] = panel
            self.panel_box.addWidget(panel, 1)


class RunsList(QListWidget):
    """Every run of the session. Selecting one makes it active; ticking it adds it to Compare."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setToolTip("Select a run to step through it; tick runs to compare them. Del removes, F2 renames.")
        self.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed | QAbstractItemView.EditTrigger.DoubleClicked)
        self.currentItemChanged.connect(self._on_current)
        self.itemChanged.connect(self._on_item_changed)
        self.refresher = CoalescedRefresh(session, self.refresh, self)

    def refresh(self) -> None:
        self.blockSignals(True)
        try:
            runs = self.session.runs
            while self.count() > len(runs):
                self.takeItem(self.count() - 1)
            while self.count() < len(runs):
                item = QListWidgetItem()
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEditable)
                self.addItem(item)
            for row, run in enumerate(runs):
                item = self.item(row)
                item.setData(Qt.ItemDataRole.UserRole, run.id)
                state = "" if run.state in ("done", "loaded") else f"  [{run.state}]"
                if not self.isPersistentEditorOpen(item):
                    item.setText(run.name + state)
                item.setToolTip(run.error or run.name)
                item.setCheckState(Qt.CheckState.Checked if run.id in self.session.compared_ids else Qt.CheckState.Unchecked)
                if run.id == self.session.active_id:
                    self.setCurrentItem(item)
        finally:
            self.blockSignals(False)

    def run_id(self, item: Optional[QListWidgetItem]) -> Optional[int]:
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def _on_current(self, current: Optional[QListWidgetItem], previous) -> None:
        run_id = self.run_id(current)
        if run_id is not None:
            self.session.set_active(run_id)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        run_id = self.run_id(item)
        if run_id is None:
            return
        self.session.set_compared(run_id, item.checkState() == Qt.CheckState.Checked)
        run = self.session.run(run_id)
        text = item.text().split("  [")[0]
        if run is not None and text != run.name:
            self.session.rename_run(run_id, text)
