"""The Step view: the active run at the current step. Its image panels (x_t, x̂₀, the noise
estimate and the extras strip), the update rule with this step's numbers, the histogram against
theory and the schedule with a cursor. Each part can be shown or hidden (`set_part_visible`), and
the view says so (`part_toggled`), so the menu's check marks follow it wherever the change came from."""

from __future__ import annotations

import torch
from PySide6.QtCore import QByteArray, QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QBoxLayout, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from diffusion_stepper.core.deepfloyd_if.anagrams import make_view
from diffusion_stepper.core.diffusion.equations import step_equation
from diffusion_stepper.core.diffusion.labels import guidance_gap_curve, guidance_gap_label
from diffusion_stepper.core.diffusion.theory import (
    CLEAN_EXTRA,
    frame_histograms,
    known_clean_image,
    no_schedule_reason,
    schedule_curves,
)
from diffusion_stepper.core.session import Run, Session
from diffusion_stepper.visualizer.views.common import NOISE, PANEL_KEYS, CoalescedRefresh, field_for
from diffusion_stepper.visualizer.views.rule_sizing import RuleSizing
from diffusion_stepper.visualizer.widgets.equation import DESK_PX, EquationPanel
from diffusion_stepper.visualizer.widgets.panels import ImagePanel, panel_title
from diffusion_stepper.visualizer.widgets.particles import ParticleControls, ParticlePanel, drawn_as_particles
from diffusion_stepper.visualizer.widgets.plots import NORMAL_TEXT_PX, HistogramPlot, SchedulePlot
from diffusion_stepper.visualizer.widgets.pool import WidgetPool

EXTRAS = "extras"  # the key of the extras strip
EQUATION, HISTOGRAM, SCHEDULE = "equation", "histogram", "schedule"
PART_KEYS = PANEL_KEYS + (EQUATION, HISTOGRAM, SCHEDULE, EXTRAS)  # what View ▸ Show … toggles (keys 1-7)
IMAGES_SHARE = 66  # percent of the view's height the images get at first; the update rule and the plots the rest
DETAILS_SHARES = (5, 3, 3)  # the widths of the update rule, the histogram and the schedule under the images


class StepView(QWidget):
    """The active run at the current step: image panels, the update rule, histogram, schedule."""

    part_toggled = Signal(str, bool)  # a part's key, and whether it shows now

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.panels = {key: ImagePanel(key if key != NOISE else "eps_hat") for key in PANEL_KEYS}
        # The main panels sit side by side or stacked, whichever shows the images larger; the box
        # is re-oriented when its holder is resized.
        self.panel_holder = _ResizeNotifier(self._orient_panels)
        self.panel_box = QBoxLayout(QBoxLayout.Direction.LeftToRight, self.panel_holder)
        self.panel_box.setContentsMargins(0, 0, 0, 0)
        for panel in self.panels.values():
            self.panel_box.addWidget(panel, 1)
        self.empty_message = QLabel("Press Generate (Enter) to sample the digits 0–9, or open a trajectory (Ctrl+O).")
        self.empty_message.setObjectName("emptyMessage")
        self.empty_message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_message.setWordWrap(True)  # a narrow window wraps it rather than growing
        self.panel_box.addWidget(self.empty_message)
        # The extras strip: a smaller panel per extra image the run carries (CFG's two estimates,
        # each anagram view, a hybrid's two parts, the mask and the original, ...). Key 7 hides it.
        self.extra_panels: dict[str, ImagePanel] = {}
        self.extras_area = QWidget()
        extras_box = QHBoxLayout(self.extras_area)
        extras_box.setContentsMargins(0, 0, 0, 0)
        self.extras_pool = WidgetPool(self._make_extra_panel, lambda panel: extras_box.addWidget(panel, 1))
        self.extras_area.setVisible(False)
        self.note = QLabel("")
        self.note.setObjectName("runNote")
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        panel_area = QWidget()
        panel_column = QVBoxLayout(panel_area)
        panel_column.setContentsMargins(0, 0, 0, 0)
        panel_column.addWidget(self.note)
        panel_column.addWidget(self.panel_holder, 5)
        panel_column.addWidget(self.extras_area, 1)
        # A 2D run shows its particles in the plane instead of image panels
        self.particle_controls = ParticleControls(session)
        self.particle_panel = ParticlePanel(session.particle_view)
        self.particle_area = QWidget()
        particle_column = QVBoxLayout(self.particle_area)
        particle_column.setContentsMargins(0, 0, 0, 0)
        particle_column.addWidget(self.particle_controls)
        particle_column.addWidget(self.particle_panel, 1)
        self.particle_area.setVisible(False)
        panel_column.addWidget(self.particle_area, 5)

        # Under the images, side by side: the update rule, the histogram and the schedule.
        self.equation = EquationPanel()
        self.histogram = HistogramPlot()
        self.schedule = SchedulePlot()
        self.details = QSplitter(Qt.Orientation.Horizontal)
        for widget, share in (
            (self.equation, DETAILS_SHARES[0]),
            (self.histogram, DETAILS_SHARES[1]),
            (self.schedule, DETAILS_SHARES[2]),
        ):
            self.details.addWidget(widget)
            self.details.setStretchFactor(self.details.count() - 1, share)
        self.details.setSizes([share * 100 for share in DETAILS_SHARES])
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(panel_area)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, IMAGES_SHARE)
        self.splitter.setStretchFactor(1, 100 - IMAGES_SHARE)
        self.splitter.setSizes([IMAGES_SHARE * 10, (100 - IMAGES_SHARE) * 10])  # the images come first
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self.parts = dict.fromkeys(PART_KEYS, True)  # which parts are shown
        # the splitters' sizes before presentation mode: (images and details, the details' widths)
        self._desk_layout: tuple[QByteArray, QByteArray] | None = None
        self.rule_sizing = RuleSizing(
            self,
            self.splitter,
            self.details,
            self.equation,
            [self.histogram, self.schedule],
            lambda: self.parts[EQUATION],
        )
        self.through_second_view = False  # anagrams: show the main panels as the second view sees them
        self._schedule_for: int | None = None  # the run whose schedule the plot shows
        self.refresher = CoalescedRefresh(session, self.refresh, self)
        self.refresh()

    def set_part_visible(self, key: str, visible: bool) -> None:
        """Show or hide one part: an image panel, the extras strip, the equation or a plot."""
        self.parts[key] = visible
        plain_widgets = {EQUATION: self.equation, HISTOGRAM: self.histogram, SCHEDULE: self.schedule}
        if key in plain_widgets:
            plain_widgets[key].setVisible(visible)
            self.rule_sizing.fit()
        else:
            self.refresh()  # whether an image panel shows also depends on the run
        self.part_toggled.emit(key, visible)

    def _rule_shown(self) -> bool:
        return self.parts[EQUATION]

    def visible_fields(self, run: Run) -> list[str]:
        """The frame fields of the image panels on screen, for exports (x_t if none is)."""
        fields = (field_for(run, key) for key in PANEL_KEYS if self.parts[key])
        return [name for name in fields if name is not None] or ["x_t"]

    def set_presentation(self, text_px: int | None) -> None:
        """Presentation mode: its text size for the plots and (a quarter larger) the update rule,
        which gets just the height its longest step needs and the images the rest; None: back to
        the desk's sizes, as the lecturer left them."""
        entering = bool(text_px)
        if entering and self._desk_layout is None:  # saved before anything is resized for presentation
            self._desk_layout = (self.splitter.saveState(), self.details.saveState())
        self.rule_sizing.presenting = entering
        for plot in (self.histogram, self.schedule):
            plot.set_text_size(text_px or NORMAL_TEXT_PX)
        with QSignalBlocker(self.equation):  # the new text size's height: fitted below, once
            self.equation.set_text_size(round(text_px * 1.25) if text_px else DESK_PX)
        # the values line under each picture gives way to the pictures (the histogram shows them)
        for panel in list(self.panels.values()) + self.extras_pool.widgets:
            panel.set_range_visible(not entering)
        if entering:
            self.rule_sizing.fit()
        elif self._desk_layout is not None:
            self.splitter.restoreState(self._desk_layout[0])
            self.details.restoreState(self._desk_layout[1])
            self._desk_layout = None

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.rule_sizing.fit()

    def set_zoom(self, zoom: int) -> None:
        for panel in self.panels.values():
            panel.set_zoom(zoom)

    @property
    def zoom_factor(self) -> int:
        """The integer zoom the image panels show at now."""
        return self.panels["x_t"].factor

    def settings(self) -> dict:
        """What the view keeps for the next launch, by the settings file's keys: the sizes of the
        images, the equation and the plots, and which parts show."""
        return {"step_layout": self.splitter.saveState(), **{f"panels/{key}": on for key, on in self.parts.items()}}

    def restore(self, settings: dict) -> None:
        """Put back what `settings()` gave (any of it)."""
        if isinstance(settings.get("step_layout"), QByteArray):
            self.splitter.restoreState(settings["step_layout"])
        for key in self.parts:
            if f"panels/{key}" in settings:
                self.set_part_visible(key, settings[f"panels/{key}"])

    def _make_extra_panel(self) -> ImagePanel:
        panel = ImagePanel("x_t")
        panel.set_range_visible(not self.rule_sizing.presenting)
        panel.title_may_go_beside = False  # its title explains it ("|ε_c − ε_u|: where the class acts"): whole
        return panel

    def set_through_second_view(self, on: bool) -> None:
        self.through_second_view = on
        self.refresh()

    def _second_view(self, run):
        """The anagram's second view, when the toggle is on and the run is an anagram; else None."""
        views = run.trajectory.run_meta.views or ()
        if not self.through_second_view or len(views) < 2:
            return None
        return make_view(views[1])

    def _sync_extra_panels(self, run) -> list[str]:
        """One panel per extra image of the run, in the run's order; returns the names shown."""
        names = [] if run is None or not self.parts[EXTRAS] else run.trajectory.extra_names()
        if list(self.extra_panels) != names:  # the panels are reused, never deleted (widgets/pool.py)
            self.extra_panels = dict(zip(names, self.extras_pool.take(len(names))))
            for name, panel in self.extra_panels.items():
                panel.clear()
                panel.name = name
                panel.set_title(panel_title(name))
        self.extras_area.setVisible(bool(names))
        return names

    def refresh(self) -> None:
        run = self.session.active
        points = run is not None and drawn_as_particles(run.trajectory)
        self.particle_area.setVisible(points)
        self.panel_holder.setVisible(not points)
        self.empty_message.setVisible(run is None)
        note = "" if run is None else run.trajectory.run_meta.note or ""
        self.note.setText(note)
        self.note.setVisible(bool(note))
        for key, panel in self.panels.items():
            panel.setVisible(run is not None and not points and self.parts[key] and field_for(run, key) is not None)
        extra_names = self._sync_extra_panels(None if points else run)
        if run is None:
            self.rule_sizing.plan(None)
            self.equation.show_lines("Update rule", ["No run yet."])
            self.histogram.clear_frame()
            self.schedule.set_schedule(None, "")
            self._schedule_for = None
            return
        if self._schedule_for != run.id:
            self._schedule_for = run.id
            meta = run.trajectory.run_meta
            self.schedule.set_schedule(schedule_curves(meta), no_schedule_reason(meta))
        view = self.session.view(run)
        if view.pending:
            for panel in list(self.panels.values()) + list(self.extra_panels.values()) + [self.particle_panel]:
                panel.show_pending()
            self.equation.show_lines("Update rule", [f"step {view.index}: pending, the worker has not reached it yet"])
            return
        frame, trajectory = view.frame, run.trajectory
        meta = trajectory.run_meta
        if points:
            self.particle_panel.set_title(run.name)
            self.particle_panel.show_frame(trajectory, view.index)
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
                images, title = frame.image(name), panel_title(name, meta)
                if second_view is not None:
                    images, title = second_view.apply(images), f"{title}   (seen through {second_view.name})"
                panel.set_title(title)
                panel.show_images(images, trajectory.value_range, trajectory.labels, name)
                # inpainting: tint the region being made anew over x_t and x̂₀
                panel.set_overlay(frame.extras.get("mask") if key in ("x_t", "x0_hat") else None)
        self.rule_sizing.plan(run)
        self._orient_panels()
        self.equation.show_lines(
            f"Update rule: {meta.algorithm}",
            step_equation(meta, frame, trajectory.frames),
        )
        self.histogram.show_histograms(frame_histograms(trajectory, frame))
        if self.schedule.schedule is not None:
            self.schedule.set_cursor(frame.t)
            self.schedule.set_guidance_gap(guidance_gap_curve(trajectory.frames), guidance_gap_label(meta))

    def _orient_panels(self) -> None:
        """Side by side or stacked: whichever shows the main panels' images larger (each panel
        then puts its title above or beside its picture, whichever shows it larger)."""
        shown = [panel for panel in self.panels.values() if panel.isVisibleTo(self)]
        if not shown or shown[0].tiles is None:
            return
        width, height, count = self.panel_holder.width(), self.panel_holder.height(), len(shown)
        side_by_side = shown[0].fit_in(width / count, height)
        stacked = shown[0].fit_in(width, height / count)
        direction = QBoxLayout.Direction.LeftToRight
        if stacked > side_by_side:
            direction = QBoxLayout.Direction.TopToBottom
        if self.panel_box.direction() != direction:
            self.panel_box.setDirection(direction)


class _ResizeNotifier(QWidget):
    """A plain container that calls back when it is resized."""

    def __init__(self, on_resize):
        super().__init__()
        self._on_resize = on_resize

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._on_resize()
