"""The Compare view: the compared runs side by side on one shared timeline, aligned by normalized
time or by model evaluations (NFE), with the plot of when each run's picture is decided."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from diffusion_stepper.core.diffusion.sampler_race import ConvergenceCurve, note_same_updates, x0_convergence
from diffusion_stepper.core.exports.race_chart import write_convergence
from diffusion_stepper.core.run_names import run_differences
from diffusion_stepper.core.session import DONE, LOADED, Session
from diffusion_stepper.core.timeline import ALIGN_NFE, ALIGN_TIME
from diffusion_stepper.visualizer.views.common import NOISE, CoalescedRefresh, field_for, run_caption
from diffusion_stepper.visualizer.widgets.panels import FIT, ImagePanel
from diffusion_stepper.visualizer.widgets.particles import ParticlePanel, drawn_as_particles
from diffusion_stepper.visualizer.widgets.plots import NORMAL_TEXT_PX, ConvergencePlot, series_colour
from diffusion_stepper.visualizer.widgets.pool import WidgetPool

ROW_HEADER_EMS = 9  # a compared run's title: a column nine times the text size wide, left of its pictures
BOTH = "x_t+x0_hat"  # the field choice that shows x_t and x̂₀ side by side for each run
FIRST_PARTS = ("NFE", "PSNR")  # a row header's caption parts kept longest: the race's NFE, the denoisers' PSNR


class CompareView(QWidget):
    """The compared runs stacked on one shared timeline."""

    save_plot_requested = Signal()  # the main window asks where (the one save dialog)

    FIELDS = {"x_t": "x_t", "x0_hat": "x̂₀ clean estimate", NOISE: "noise estimate", BOTH: "x_t and x̂₀"}
    ALIGNMENTS = {ALIGN_TIME: "time", ALIGN_NFE: "NFE"}

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.field = QComboBox()
        for key, label in self.FIELDS.items():
            self.field.addItem(label, key)
        self.field.currentIndexChanged.connect(self._rebuild_and_refresh)
        self.align = QComboBox()
        for key, label in self.ALIGNMENTS.items():
            self.align.addItem(label, key)
        self.align.setToolTip(
            "Line the runs up by normalized time (the fraction of their steps), or by the model evaluations "
            "(NFE) spent: the fair race between samplers"
        )
        self.align.currentIndexChanged.connect(lambda: session.set_align(self.align.currentData()))
        for combo in (self.field, self.align):  # the row must not widen the window on a small screen
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)
        self.show_plot = QCheckBox("x̂₀ plot")
        self.show_plot.setToolTip("How far each step's x̂₀ is from the run's final image: where the picture is decided")
        self.show_plot.toggled.connect(self.refresh)
        self.save_plot_button = QPushButton("Save plot…")
        self.save_plot_button.setToolTip("The plot as PNG, and its numbers as CSV beside it")
        self.save_plot_button.clicked.connect(self.save_plot_requested)
        self.hint = QLabel("Tick two or more runs in the Runs list, or press Sweep γ, to compare them here.")
        self.hint.setObjectName("emptyMessage")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        top = QHBoxLayout()
        for widget in (QLabel("Show"), self.field, QLabel("   Align by"), self.align, self.show_plot):
            top.addWidget(widget)
        top.addWidget(self.save_plot_button)
        top.addStretch(1)
        panels = QWidget()
        self.panel_box = QVBoxLayout(panels)
        self.panel_box.setContentsMargins(0, 0, 0, 0)
        # The panels come from pools and are never deleted (see widgets/pool.py): a row of image
        # panels per compared run, or the 2D runs' particle views side by side in one strip.
        self.particle_strip = QWidget()
        particle_box = QHBoxLayout(self.particle_strip)
        particle_box.setContentsMargins(0, 0, 0, 0)
        self.panel_box.addWidget(self.particle_strip, 1)
        self.particle_pool = WidgetPool(
            lambda: ParticlePanel(self.session.particle_view), lambda panel: particle_box.addWidget(panel, 1)
        )
        # the field each column of the rows shows, once above them (the rows' panels have no titles)
        self.headings = QWidget()
        headings_box = QHBoxLayout(self.headings)
        headings_box.setContentsMargins(0, 0, 0, 0)
        self.headings_spacer = QWidget()  # as wide as the rows' headers
        headings_box.addWidget(self.headings_spacer)
        self.heading_labels = [QLabel(), QLabel()]
        for label in self.heading_labels:
            label.setObjectName("panelTitle")
            headings_box.addWidget(label, 1)
        self.panel_box.addWidget(self.headings)
        self.row_pool = WidgetPool(self._make_row, lambda row: self.panel_box.addWidget(row, 1))
        self.plot = ConvergencePlot()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(panels)
        self.splitter.addWidget(self.plot)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.plot.setMinimumHeight(120)
        self._plot_sized = False  # the plot takes a quarter of the height when it first shows
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.hint, 1)
        layout.addWidget(self.splitter, 1)
        self.panels: dict[int, list[ImagePanel | ParticlePanel]] = {}
        self.titles: dict[int, _RowHeader] = {}  # each compared run's row header (its title)
        self.zoom = FIT
        self._curves_key: tuple = ()
        self.curves: list[ConvergenceCurve | None] = []  # one per compared run; None while it samples
        self.refresher = CoalescedRefresh(session, self.refresh, self)

    @property
    def field_key(self) -> str:
        return self.field.currentData()

    def set_field(self, key: str) -> None:
        self.field.setCurrentIndex(self.field.findData(key))

    def set_zoom(self, zoom: int) -> None:
        self.zoom = zoom
        for row in self.row_pool.widgets:
            for panel in row.pool.widgets:
                panel.set_zoom(zoom)

    def _rebuild_and_refresh(self) -> None:
        self._rebuild([run.id for run in self.session.compared])
        self.refresh()

    def refresh(self) -> None:
        runs = self.session.compared
        self.hint.setVisible(not runs)
        self.splitter.setVisible(bool(runs))
        if self.align.currentData() != self.session.align:
            self.align.blockSignals(True)
            self.align.setCurrentIndex(self.align.findData(self.session.align))
            self.align.blockSignals(False)
        if [run.id for run in runs] != list(self.panels):
            self._rebuild([run.id for run in runs])
        differences = run_differences([run.trajectory.run_meta for run in runs])
        for run, difference in zip(runs, differences):
            view = self.session.view(run)
            # what tells the runs apart comes first and large, in the run's curve colour while the
            # plot shows (the titles are its legend too); the name and the step after it
            style = ""
            if self.show_plot.isChecked():
                red, green, blue = series_colour(runs.index(run))
                style = f" color='#{red:02x}{green:02x}{blue:02x}'"
            caption = run_caption(self.session, run)
            if self.session.align == ALIGN_NFE and "NFE " not in caption:  # two-evaluation steps say it already
                caption = f"NFE {run.track.evaluations(view.index)} · {caption}"
            keys = ("x_t", "x0_hat") if self.field_key == BOTH else (self.field_key,)
            if isinstance(self.panels[run.id][0], ParticlePanel):  # 2D runs side by side: the title above
                big = f"<font size='+2'{style}><b>{html.escape(difference)}</b></font>&nbsp;&nbsp;&nbsp;"
                particles = self.panels[run.id][0]
                particles.set_title((big if difference else "") + html.escape(f"{run.name}   {caption}"))
                if view.pending:
                    particles.show_pending()
                else:
                    particles.show_frame(run.trajectory, view.index)
                continue
            self.titles[run.id].setToolTip(f"{run.name}\n{caption}")
            bold = f"<b><font{style}>{html.escape(difference)}</font></b>" if difference else ""
            self.titles[run.id].show_header(bold, caption.split(" · "), run.name)
            for panel, key in zip(self.panels[run.id], keys):
                name = field_for(run, key)
                if view.pending:
                    panel.show_pending()
                elif name is not None:
                    panel.show_images(view.frame.image(name), run.trajectory.value_range, run.trajectory.labels, name)
        self._refresh_plot(runs)

    def _refresh_plot(self, runs) -> None:
        self.plot.setVisible(self.show_plot.isChecked() and bool(runs))
        if self.plot.isVisible() and not self._plot_sized:
            self._plot_sized = True
            total = max(400, self.splitter.height())
            self.splitter.setSizes([total * 3 // 4, total // 4])
        self.save_plot_button.setEnabled(bool(self._finished(runs)))
        if not self.plot.isVisible():
            return
        against_nfe = self.session.align == ALIGN_NFE
        key = (against_nfe, tuple((run.id, run.produced, run.state, run.name) for run in runs))
        if key != self._curves_key:  # recomputed when a run finishes or the set changes, not each frame
            self._curves_key = key
            finished = self._finished(runs)
            metas = [run.trajectory.run_meta for run in runs]
            labels = note_same_updates([label or run.name for label, run in zip(run_differences(metas), runs)], metas)
            self.curves = [
                x0_convergence(run.trajectory, label) if run in finished else None for run, label in zip(runs, labels)
            ]
            self.plot.show_curves(self.curves, against_nfe)
        active = self.session.active
        if against_nfe:
            self.plot.set_cursor(self.session.position)
        elif active is not None:
            self.plot.set_cursor(self.session.frame_index(active))

    @staticmethod
    def _finished(runs) -> list:
        """Runs whose final image exists (the distance is to it): a cancelled or failed run's last
        frame is still noise, which every x̂₀ is about 1 away from, so it is not drawn."""
        return [run for run in runs if run.state in (DONE, LOADED) and run.produced > 0]

    def show_race(self) -> None:
        """A sampler race: each run's x_t beside its x̂₀, and the plot of when each picture is decided."""
        self.set_field(BOTH)
        self.show_plot.setChecked(True)

    def set_presentation(self, text_px: int | None) -> None:
        """Presentation mode's text size for the plot; None: the desk's."""
        self.plot.set_text_size(text_px or NORMAL_TEXT_PX)

    def save_plot(self, path: str | Path) -> tuple[Path, Path]:
        """The compared, finished runs' curves as PATH (PNG) and the same name with .csv."""
        runs = self._finished(self.session.compared)
        labels = run_differences([run.trajectory.run_meta for run in runs])
        return write_convergence(
            [run.trajectory for run in runs], path, [label or run.name for run, label in zip(runs, labels)]
        )

    def _make_row(self) -> _ImageRow:
        return _ImageRow(self._make_image_panel, ROW_HEADER_EMS * self.fontInfo().pixelSize())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._size_headers()

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.StyleChange:  # presentation mode's text size
            self._size_headers()

    def _size_headers(self) -> None:
        """The rows' headers (and the headings' spacer) a fixed number of ems wide."""
        width = ROW_HEADER_EMS * self.fontInfo().pixelSize()
        self.headings_spacer.setFixedWidth(width)
        for row in self.row_pool.widgets:
            row.header.setFixedWidth(width)

    def _make_image_panel(self) -> ImagePanel:
        panel = ImagePanel("x_t")
        panel.set_zoom(self.zoom)
        panel.set_title_visible(False)  # the row's header and the headings above say what it shows
        panel.set_range_visible(False)  # the rows' pictures get the height; the values are the tooltip
        return panel

    def _rebuild(self, run_ids: list[int]) -> None:
        """Give each compared run its panels from the pools, blank until the refresh draws them."""
        keys = ("x_t", "x0_hat") if self.field_key == BOTH else (self.field_key,)
        runs = {run.id: run for run in self.session.runs}
        two_d = bool(run_ids) and all(
            drawn_as_particles(runs[run_id].trajectory) for run_id in run_ids if run_id in runs
        )
        self.particle_strip.setVisible(two_d)
        particle_panels = self.particle_pool.take(len(run_ids) if two_d else 0)
        rows = self.row_pool.take(0 if two_d else len(run_ids))
        if two_d:
            self.panels = {run_id: [panel] for run_id, panel in zip(run_ids, particle_panels)}
            self.titles = {}
        else:
            self.panels = {run_id: row.take(len(keys)) for run_id, row in zip(run_ids, rows)}
            self.titles = {run_id: row.header for run_id, row in zip(run_ids, rows)}
        self.headings.setVisible(bool(rows))
        for label, key in zip(self.heading_labels, keys + (None,)):
            label.setVisible(key is not None)
            label.setText(panel_heading(key) if key else "")
        for row in self.panels.values():
            for panel in row:
                panel.clear()


class _ImageRow(QWidget):
    """One compared run: its title in a header on the left, then its image panels side by side
    (x_t, or x_t and x̂₀); `take(n)` shows n. The title beside the pictures, not above them, lets
    six runs of ten digits each share a 768 px screen."""

    def __init__(self, make_panel, header_width: int):
        super().__init__()
        box = QHBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.header = _RowHeader(header_width)
        box.addWidget(self.header)
        self.pool = WidgetPool(make_panel, lambda panel: box.addWidget(panel, 1))

    def take(self, count: int) -> list[ImagePanel]:
        return self.pool.take(count)


class _RowHeader(QLabel):
    """A row's header: what tells the run apart (bold), then the caption's parts, then the run's
    name, as much of it as its height holds in whole lines: the name goes first, then the
    caption's last parts (all of it is the tooltip). Fitted again when its size or font changes."""

    def __init__(self, width: int):
        super().__init__()
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # a long title is cut at the row's height rather than making the row (and the window) taller
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Ignored)
        self.setFixedWidth(width)
        self._content: tuple[str, tuple[str, ...], str] = ("", (), "")

    def show_header(self, bold: str, parts: list[str], name: str) -> None:
        parts = [part.strip() for part in parts if part.strip()]
        parts.sort(key=lambda part: not part.startswith(FIRST_PARTS))  # what a comparison reads first
        content = (bold, tuple(parts), name)
        if content != self._content:
            self._content = content
            self._fit()

    def _fit(self) -> None:
        bold, parts, name = self._content
        unbroken = [html.escape(part).replace(" ", "&nbsp;") for part in parts]  # wrapped between parts only
        candidates = [(len(unbroken), True)] + [(count, False) for count in range(len(unbroken), 0, -1)]
        for count, with_name in candidates:
            lines = ([bold] if bold else []) + [" · ".join(unbroken[:count])]
            if with_name:
                lines.append(f"<small>{html.escape(name)}</small>")
            self.setText("<br>".join(lines))
            if self.heightForWidth(self.width()) <= self.height():
                return

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt's name: presentation mode's larger text
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._fit()


def panel_heading(key: str) -> str:
    return CompareView.FIELDS.get(key, key)
