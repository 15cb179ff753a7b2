"""The plots: the Step view's noise histogram and schedule, and the Train tab's loss curve. Their
pyqtgraph items are created once and updated with setData; the numbers come from
core.diffusion.theory and core.training_progress."""

from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics

from diffusion_stepper.core.diffusion.theory import FrameHistograms, ScheduleCurves
from diffusion_stepper.core.formats.palette import GAP_COLOUR, NOISE_COLOUR, X_T_COLOUR, run_colour
from diffusion_stepper.core.training_progress import LossHistory

THEORY_WIDTH = 2
RAW_LOSS_COLOUR = (140, 190, 255, 150)
SMOOTH_LOSS_COLOUR = (255, 165, 60)
NORMAL_TEXT_PX = 12  # the plots' text at the desk; presentation mode scales it with the screen
SUBTITLE_LINES = 3  # a plot's subtitle wraps onto this many lines before it is cut
HISTOGRAM_RANGE = (-4.0, 4.0)  # the values the histogram shows: data in [-1, 1] or [0, 1], and the noise
# A loss plot (the Train tab's, the 2D lab's) redraws at most this often, however fast events
# arrive: a redraw takes a core from the training process for a moment (measured when training
# still shared the GUI's thread and lock: 100 ms cost the Quick preset about 10% more time than
# 500 ms on 2 cores).
PLOT_REFRESH_MS = 500


def _bars(colour: tuple[int, int, int], name: str) -> pg.PlotDataItem:
    return pg.PlotDataItem(
        stepMode="center", fillLevel=0, pen=pg.mkPen(colour, width=1), brush=pg.mkBrush(*colour, 70), name=name
    )


def _theory(colour: tuple[int, int, int], name: str) -> pg.PlotDataItem:
    return pg.PlotDataItem(pen=pg.mkPen(colour, width=THEORY_WIDTH, style=Qt.PenStyle.DashLine), name=name)


class BackedLegend(pg.LegendItem):
    """A legend on a dark translucent background, so that its text reads where curves pass under
    it (they still show through); drawn only while it lists something, not as an empty square."""

    def __init__(self, offset: tuple[int, int]):
        super().__init__(offset=offset, brush=pg.mkBrush(20, 20, 20, 170))

    def listed(self) -> list:
        """The plot items the legend lists now."""
        return [sample.item for sample, label in self.items if label.isVisible()]

    def paint(self, painter, *args) -> None:
        if self.listed():
            super().paint(painter, *args)

    def show_entry(self, item, shown: bool) -> None:
        """List `item` or not. Its entry is made once and then only shown or hidden: a removed entry
        would delete Qt objects while the app runs (see widgets/pool.py), a hidden curve's entry
        would be crossed out."""
        entry = next(((sample, label) for sample, label in self.items if sample.item is item), None)
        if entry is None:
            if not shown:
                return
            self.addItem(item, item.name())
            entry = self.items[-1]
        for part in entry:
            part.setVisible(shown)
        self.updateSize()


class TextSizedPlot(pg.PlotWidget):
    """A plot whose title, axes, legend and notes share one text size, so that presentation mode
    can make them all readable from the back row (`set_text_size`)."""

    def __init__(self, title: str, parent=None, legend_offset: tuple[int, int] = (-10, 10)):
        super().__init__(parent=parent)
        self.title_text = title
        self.subtitle = ""  # a smaller second line under the title (the histogram's note on theory)
        self.text_px = NORMAL_TEXT_PX
        self.notes: list[pg.TextItem] = []  # text items drawn in the plot, sized with the rest
        self.legend = BackedLegend(legend_offset)
        self.legend.setParentItem(self.getPlotItem().vb)
        self.getPlotItem().legend = self.legend  # where pyqtgraph lists the curves plotted with a name
        self.set_text_size(NORMAL_TEXT_PX)

    def set_axis_label(self, axis: str, text: str) -> None:
        # the colour too: pyqtgraph draws axis labels in the text item's default black, unseen on the dark plots
        self.setLabel(axis, text, **{"font-size": f"{self.text_px}px", "color": "#c8c8c8"})

    def set_subtitle(self, text: str) -> None:
        self.subtitle = text
        self._show_title()

    def set_key(self, entries: list[tuple]) -> None:
        """A coloured key under the title, "■ DDPM  ■ DDIM η=0 ...": a legend that covers no curve and
        stays whatever the plot's height. Each entry is (label, colour) or (label, colour, mark): "┅"
        for a dashed curve. It stands in for the floating legend, which is hidden."""
        self.legend.setVisible(False)
        self.key = entries
        self._show_title()

    def _show_title(self) -> None:
        # the whole subtitle and labels, should the plot be too narrow for them
        self.setToolTip("\n".join([self.subtitle, *(entry[0] for entry in getattr(self, "key", None) or [])]).strip())
        title = html.escape(self.title_text)
        small = max(1, round(self.text_px * 0.85))
        font = QFont()
        font.setPixelSize(small)
        # a title wider than the plot would push the plot off its widget: no wider than the data
        # area it sits over (the widget less the left axis; the title's own width must not count)
        room = max(60, self.width() - max(30, int(self.getAxis("left").width()) + 16))
        if self.subtitle:
            lines = "<br>".join(html.escape(line) for line in _wrapped(self.subtitle, QFontMetrics(font), room))
            title += f"<br><span style='font-size: {small}px; color: #c8c8c8'>{lines}</span>"
        if getattr(self, "key", None):
            labels = _fitted_labels([entry[0] for entry in self.key], QFontMetrics(font), room)
            spans = (
                f"<span style='color: {QColor(*entry[1]).name()}'>{entry[2] if len(entry) > 2 else '■'} "
                f"{html.escape(label)}</span>"
                for label, entry in zip(labels, self.key)
            )
            title += f"<br><span style='font-size: {small}px'>{'&nbsp;&nbsp;'.join(spans)}</span>"
        self.setTitle(title, size=f"{self.text_px}px")
        # pyqtgraph gives the title one 30 px row; a subtitle and a key need their lines' height
        item = self.getPlotItem()
        height = math.ceil(item.titleLabel.item.boundingRect().height()) + 2
        item.titleLabel.setMaximumHeight(height)
        item.layout.setRowFixedHeight(0, height)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if getattr(self, "subtitle", "") or getattr(self, "key", None):  # (pyqtgraph resizes once in its __init__)
            self._show_title()

    def show_curve(self, item: pg.PlotDataItem, x: np.ndarray | None, y: np.ndarray | None) -> None:
        """Show a curve with its data, in the legend too; or (y None) hide it and its legend entry."""
        if y is None:
            item.setVisible(False)
            self.legend.show_entry(item, False)
            return
        item.setData(x, y)
        item.setVisible(True)
        self.legend.show_entry(item, True)
        self.set_text_size(self.text_px)

    def set_text_size(self, px: int) -> None:
        self.text_px = px
        self._show_title()
        font = QFont()
        font.setPixelSize(px)
        for name in ("left", "bottom"):
            axis = self.getAxis(name)
            axis.setTickFont(font)
            if axis.labelText:
                self.set_axis_label(name, axis.labelText)
        self.legend.setLabelTextSize(f"{px}px")
        for _sample, label in self.legend.items:
            label.setText(label.text, size=f"{px}px")
        for note in self.notes:
            note.setFont(font)


def _wrapped(text: str, metrics: QFontMetrics, room: int, most_lines: int = SUBTITLE_LINES) -> list[str]:
    """`text` broken at spaces into lines of at most `room` px; the last line cut with "…"."""
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if line and metrics.horizontalAdvance(candidate) > room:
            lines.append(line)
            line = word
        else:
            line = candidate
    lines.append(line)
    if len(lines) > most_lines:
        lines = lines[: most_lines - 1] + [" ".join(lines[most_lines - 1 :])]
    return lines[:-1] + [metrics.elidedText(lines[-1], Qt.TextElideMode.ElideRight, room)]


class HistogramPlot(TextSizedPlot):
    """Histograms of x_t and the noise estimate at the current frame, with theory's densities."""

    def __init__(self, parent=None):
        super().__init__("Pixel values", parent)
        self.setMouseEnabled(x=False, y=False)
        self.set_axis_label("bottom", "value")
        self.set_axis_label("left", "density")
        self.getAxis("left").enableAutoSIPrefix(False)  # "density (x0.001)" read like x₀
        self.x_t_bars = _bars(X_T_COLOUR, "x_t")
        self.noise_bars = _bars(NOISE_COLOUR, "ε̂")
        self.x_t_theory = _theory(X_T_COLOUR, "x_t theory")
        self.noise_theory = _theory(NOISE_COLOUR, "N(0, 1)")
        for item in (self.x_t_bars, self.noise_bars, self.x_t_theory, self.noise_theory):
            self.addItem(item)
        self.setXRange(*HISTOGRAM_RANGE, padding=0)
        self.enableAutoRange(axis="y")

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        # pyqtgraph keeps the range set while the plot had no size: set it again for the new size
        if hasattr(self, "x_t_bars"):  # (pyqtgraph resizes once in its __init__)
            self.setXRange(*HISTOGRAM_RANGE, padding=0)

    def show_histograms(self, histograms: FrameHistograms) -> None:
        self.show_curve(self.x_t_bars, histograms.edges, histograms.x_t)
        self.show_curve(self.noise_bars, histograms.edges, histograms.noise)
        noise_symbol = "v̂" if histograms.noise_name == "v_hat" else "ε̂"
        self._rename(self.noise_bars, noise_symbol)
        theory = histograms.x_t_theory
        self.show_curve(self.x_t_theory, None if theory is None else theory.x, None if theory is None else theory.y)
        self._rename(self.x_t_theory, "x_t theory" if theory is None else f"x_t: {theory.label}")
        theory = histograms.noise_theory
        self.show_curve(self.noise_theory, None if theory is None else theory.x, None if theory is None else theory.y)
        self.set_subtitle(f"x_t theory: {histograms.x_t_note}")
        self._show_key()

    def clear_frame(self) -> None:
        for item in (self.x_t_bars, self.noise_bars, self.x_t_theory, self.noise_theory):
            self.show_curve(item, None, None)
        self.set_subtitle("")
        self._show_key()

    def _show_key(self) -> None:
        """The curves shown, in a key under the title: a legend in the plot covered the bars."""
        self.set_key(
            [
                (item.name(), colour, "■" if item in (self.x_t_bars, self.noise_bars) else "┅")
                for item, colour in (
                    (self.x_t_bars, X_T_COLOUR),
                    (self.noise_bars, NOISE_COLOUR),
                    (self.x_t_theory, X_T_COLOUR),
                    (self.noise_theory, NOISE_COLOUR),
                )
                if item.isVisible()
            ]
        )

    def _rename(self, item: pg.PlotDataItem, name: str) -> None:
        if item.name() == name:
            return
        item.opts["name"] = name
        for sample, label in self.legend.items:
            if sample.item is item:
                label.setText(name, size=f"{self.text_px}px")


class SchedulePlot(TextSizedPlot):
    """The run's schedule over t with a cursor at the current step."""

    CURVE_COLOURS = ((90, 160, 255), (255, 165, 60))

    def __init__(self, parent=None):
        super().__init__("Schedule", parent)
        self.setMouseEnabled(x=False, y=False)
        self.curves = [pg.PlotDataItem(pen=pg.mkPen(colour, width=2), name=" ") for colour in self.CURVE_COLOURS]
        for curve in self.curves:
            self.addItem(curve)
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((240, 240, 240), width=2))
        self.addItem(self.cursor)
        self.message = pg.TextItem("", color=(200, 200, 200), anchor=(0.5, 0.5))
        self.addItem(self.message, ignoreBounds=True)
        self.notes.append(self.message)
        self.setYRange(0, 1.02, padding=0)
        self.schedule: ScheduleCurves | None = None
        # CFG runs: when guidance acts, as the mean |ε_c − ε_u| (or |v_c − v_u|) of each step so far, over its peak
        self.gap = pg.PlotDataItem(
            pen=pg.mkPen(GAP_COLOUR, width=2), symbol="o", symbolSize=4, symbolBrush=GAP_COLOUR, name=" "
        )
        self.addItem(self.gap)
        self.show_curve(self.gap, None, None)  # hidden, and out of the legend, until a CFG run shows

    def set_schedule(self, schedule: ScheduleCurves | None, empty_message: str = "") -> None:
        self.schedule = schedule
        if schedule is None:
            for curve in [*self.curves, self.gap]:
                self.show_curve(curve, None, None)
            self._show_key()
            self.cursor.setVisible(False)
            self.message.setText(empty_message)
            self.message.setTextWidth(max(80, self.width() * 0.8))  # wrapped inside the plot
            self.message.setPos(0.5, 0.5)
            self.setXRange(0, 1, padding=0)
            return
        self.message.setText("")
        self.set_axis_label("bottom", schedule.x_label)
        for curve, data in zip(self.curves, schedule.curves):
            curve.opts["name"] = data.label
            self.show_curve(curve, data.x, data.y)
        self._show_key()
        self.cursor.setVisible(True)
        low, high = schedule.curves[0].x[0], schedule.curves[0].x[-1]
        self.setXRange(low, high, padding=0.02)

    def set_cursor(self, t: float) -> None:
        self.cursor.setValue(t)

    def set_guidance_gap(self, curve: tuple[list[float], list[float], float] | None, label: str = "") -> None:
        """Each sampled step's mean CFG gap (`label`: |ε_c − ε_u|, or |v_c − v_u| for flow) over t,
        divided by the largest so far (its scale is in the legend); None hides it (no CFG)."""
        if curve is None:
            self.show_curve(self.gap, None, None)
            self._show_key()
            return
        t, relative, peak = curve
        self.gap.opts["name"] = f"mean {label} ÷ {peak:.3g}"
        self.show_curve(self.gap, np.asarray(t), np.asarray(relative))
        self._show_key()

    def _show_key(self) -> None:
        """The curves shown, in a key under the title: a legend in the plot was clipped and covered them."""
        colours = [*self.CURVE_COLOURS, GAP_COLOUR]
        self.set_key(
            [(item.name(), colour) for item, colour in zip([*self.curves, self.gap], colours) if item.isVisible()]
        )


class LossPlot(TextSizedPlot):
    """Raw and smoothed loss per iteration, epoch markers, log scale on a toggle."""

    MARKER_NUMBERS = 8  # numbered epoch ends at most: a 400 px plot holds 8 numbers apart

    def __init__(self, parent=None):
        super().__init__("Training loss (dashes: end of epoch)", parent, legend_offset=(-10, 30))
        self.set_axis_label("bottom", "iteration")
        self.set_axis_label("left", "loss")
        self.raw = pg.PlotDataItem(pen=pg.mkPen(RAW_LOSS_COLOUR, width=1), name="per iteration")
        self.smoothed = pg.PlotDataItem(pen=pg.mkPen(SMOOTH_LOSS_COLOUR, width=2.5), name="smoothed")
        self.addItem(self.raw)
        self.addItem(self.smoothed)
        self.markers: list[pg.InfiniteLine] = []

    def show_history(self, history: LossHistory) -> None:
        x, raw, smoothed = history.arrays()
        self.raw.setData(x, raw)
        self.smoothed.setData(x, smoothed)
        for iteration, epoch in history.epoch_ends[len(self.markers) :]:
            marker = pg.InfiniteLine(
                iteration,
                angle=90,
                movable=False,
                pen=pg.mkPen((200, 200, 200), style=Qt.PenStyle.DashLine),
                label="",  # numbered by _number_markers
                labelOpts={"position": 0.97, "color": (220, 220, 220)},
            )
            marker.epoch = epoch
            self.addItem(marker)
            self.markers.append(marker)
        self._number_markers()

    def _number_markers(self) -> None:
        """Each epoch's end is a dashed line; at most MARKER_NUMBERS of them are numbered (every
        second, fifth, … epoch), so the numbers never run into each other however long the run."""
        every = max(1, math.ceil(len(self.markers) / self.MARKER_NUMBERS))
        for marker in self.markers:
            marker.label.setFormat(str(marker.epoch) if marker.epoch % every == 0 else "")

    def clear_history(self) -> None:
        for marker in self.markers:
            self.removeItem(marker)
        self.markers = []
        self.raw.setData([], [])
        self.smoothed.setData([], [])

    def set_log_scale(self, on: bool) -> None:
        self.setLogMode(y=on)


series_colour = run_colour  # the number-th run's colour, as the PNG charts and the page draw it


def _fitted_labels(labels: list[str], metrics: QFontMetrics, width: int) -> list[str]:
    """The labels of a key, each cut shorter (with "…") until the line fits `width` pixels."""
    longest = max((len(label) for label in labels), default=0)
    while longest > 4:
        fitted = [label if len(label) <= longest else label[: longest - 1] + "…" for label in labels]
        if metrics.horizontalAdvance("■ " + "   ■ ".join(fitted)) <= width:
            return fitted
        longest -= 1
    return [label[:4] for label in labels]


class ConvergencePlot(TextSizedPlot):
    """The sampler race's "when is the picture decided": each compared run's x̂₀ distance to its
    final image, against NFE (or the step), with a cursor where the timeline stands."""

    def __init__(self, parent=None):
        super().__init__("x̂₀ distance to the final image", parent)
        self.set_axis_label("left", "RMS distance")
        self.set_axis_label("bottom", "model evaluations (NFE)")
        self.showGrid(x=True, y=True, alpha=0.25)
        for axis in ("left", "bottom"):
            self.getAxis(axis).enableAutoSIPrefix(False)  # distances of 0.3 stay 0.3, not "300 (×0.001)"
        self.curves: list[pg.PlotDataItem] = []  # the curves shown now
        self._curve_items: list[pg.PlotDataItem] = []  # every curve item made so far, reused
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen((220, 220, 220), width=1, style=Qt.PenStyle.DashLine))
        self.addItem(self.cursor)

    def show_curves(self, curves: list, against_nfe: bool) -> None:
        """`curves`: core.diffusion.sampler_race.ConvergenceCurve, one per compared run, or None for
        a run still sampling; curve k is drawn in `series_colour(k)`. The plot items and their legend
        entries are made once and reused (no Qt object is deleted while the app runs: widgets/pool.py)."""
        self.set_axis_label("bottom", "model evaluations (NFE)" if against_nfe else "step")
        shown = [(number, curve) for number, curve in enumerate(curves) if curve is not None]
        while len(self._curve_items) < len(shown):
            self._curve_items.append(self.plot([], [], symbol="o", symbolSize=6, symbolPen=None, name=" "))
        self.curves = self._curve_items[: len(shown)]
        entries = {id(sample.item): (sample, label) for sample, label in self.legend.items}
        for slot, item in enumerate(self._curve_items):
            in_use = slot < len(shown)
            item.setVisible(in_use)
            for part in entries.get(id(item), ()):
                part.setVisible(in_use)
            if not in_use:
                item.setData([], [])
                continue
            number, curve = shown[slot]
            colour = series_colour(number)
            item.setData(curve.nfe if against_nfe else curve.steps, curve.distance)
            item.setPen(pg.mkPen(colour, width=3))
            item.setSymbolBrush(colour)
            if id(item) in entries:
                entries[id(item)][1].setText(curve.label)
        self.legend.setVisible(False)  # the key under the title names the curves, covering none of them
        self.set_key([(curve.label, series_colour(number)) for number, curve in shown])

    def set_cursor(self, x: float) -> None:
        self.cursor.setPos(x)
