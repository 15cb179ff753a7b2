"""Issue 30 §4, small things seen on a 1366×768 screen: captions that read whole, legends that cover
no curve, and the app and the page drawing each run in the same colour."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from diffusion_stepper.core.exports.html_page import write_html_page
from diffusion_stepper.visualizer.widgets.plots import ConvergencePlot
from tests.page_reading import page_data
from tests.visualizer.conftest import marked_trajectory


@pytest.fixture
def window(shared_window):
    """One window for this module's tests, put back as it opened before each (conftest.reset_window)."""
    return shared_window


def test_the_app_and_the_page_draw_each_compared_run_in_the_same_colour(qtbot, tmp_path):
    runs = [(f"run {k}", marked_trajectory(3)) for k in range(3)]
    page_colours = page_data(write_html_page(runs, tmp_path / "page.html"))["colours"]["runs"]
    plot = ConvergencePlot()
    qtbot.addWidget(plot)
    curve = SimpleNamespace(nfe=np.arange(3), steps=np.arange(3), distance=np.ones(3), label="")
    plot.show_curves([curve] * len(runs), against_nfe=True)
    app_colours = [item.opts["pen"].color().name() for item in plot.curves]
    assert app_colours == page_colours[: len(runs)]


def fits(label) -> bool:
    return label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()


def test_a_fitted_label_shows_the_longest_form_that_fits_and_keeps_its_end(qtbot):
    from diffusion_stepper.visualizer.widgets.fitted_label import FittedLabel

    label = FittedLabel()
    qtbot.addWidget(label)
    label.show()  # a hidden widget gets its resize events only when shown
    label.set_forms(["black → white = [0, 1]   ·   values +0.00 … +1.00", "black→white = [0, 1]"])
    long_width = label.fontMetrics().horizontalAdvance(label.forms[0])
    label.resize(long_width + 20, 20)
    assert label.text() == label.forms[0]
    label.resize(long_width // 2 + 10, 20)
    assert label.text() == "black→white = [0, 1]" and fits(label)
    label.resize(long_width, 20)
    label.set_forms(["a run name far too long to fit beside the step"], keep="      step 3/20 · ᾱ_t = 0.5")
    assert label.text().endswith("…      step 3/20 · ᾱ_t = 0.5") and fits(label)
    assert label.toolTip() == "a run name far too long to fit beside the step      step 3/20 · ᾱ_t = 0.5"


def test_at_1366x768_the_panels_ranges_and_the_timeline_caption_read_whole(qtbot, window):
    """The screenshot's "black → white = [0," and "step 20/20 · t =": what black and white mean and
    the step's numbers are the parts a lecturer reads; they show whole, in every panel."""
    import re

    from PySide6.QtCore import Qt

    from tests.visualizer.conftest import LONG_WAIT_MS, settle, wait_until_sampled

    window.resize(1366, 768)
    qtbot.keyClick(window, Qt.Key.Key_Return)  # the default run: a CFG model's 10 digits, 6 panels
    qtbot.waitUntil(lambda: window.session.active is not None, timeout=LONG_WAIT_MS)
    wait_until_sampled(qtbot, window)
    window.session.seek(5)
    settle(qtbot)
    panels = [panel for panel in window.step_view.panels.values() if panel.isVisible()]
    assert len(panels) >= 3
    for panel in panels:
        assert fits(panel.range_label), panel.range_label.text()
        assert re.search(r"black ?→ ?white = \[-?\d[\d.]*, -?\d[\d.]*\]", panel.range_label.text())
    caption = window.transport.caption
    assert fits(caption)
    assert re.search(r"step 5/\d+ · t = \d+ · ᾱ_t = [\d.]+$", caption.text()), caption.text()


def test_the_histogram_and_schedule_name_their_curves_under_the_title_not_over_them(qtbot, window):
    """Their legends sat inside the data area, over the bars and curves (and the schedule's was
    clipped): each now names its curves in a key under its title, and no legend is drawn."""
    import html

    from PySide6.QtCore import Qt

    from tests.visualizer.conftest import LONG_WAIT_MS, wait_until_sampled

    window.resize(1366, 768)
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.session.active is not None, timeout=LONG_WAIT_MS)
    wait_until_sampled(qtbot, window)
    window.session.seek(0)  # pure noise: x_t, ε̂ and both theory curves
    qtbot.wait(50)
    histogram, schedule = window.step_view.histogram, window.step_view.schedule
    assert [entry[0] for entry in histogram.key] == ["x_t", "ε̂", "x_t: N(0, 1)", "N(0, 1)"]
    assert len(schedule.key) == 3 and "ᾱ_t" in schedule.key[0][0]  # ᾱ_t, σ_t and CFG's gap
    for plot in (histogram, schedule):
        assert not plot.legend.isVisible()
        title = plot.getPlotItem().titleLabel.text
        assert all(html.escape(entry[0][:4]) in title for entry in plot.key), title  # labels may be cut short


def test_the_histograms_note_wraps_whole_and_its_range_holds_through_resizes(qtbot, window):
    """The note under the histogram's title ("x_t theory: none: x0 is unknown while…") was cut at
    1366 px: it wraps onto a second (or third) line. The value range stays -4…4 whatever the plot's size."""
    import html

    from PySide6.QtCore import Qt

    from diffusion_stepper.visualizer.widgets.plots import HISTOGRAM_RANGE
    from tests.visualizer.conftest import LONG_WAIT_MS, settle, wait_until_sampled

    window.resize(1366, 768)
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.session.active is not None, timeout=LONG_WAIT_MS)
    wait_until_sampled(qtbot, window)
    window.session.seek(5)  # mid-run: the note says why there is no theory curve for x_t
    settle(qtbot)
    histogram = window.step_view.histogram
    title = histogram.getPlotItem().titleLabel.text
    assert "unknown" in histogram.subtitle and "…" not in title
    assert all(html.escape(word) in title for word in histogram.subtitle.split())  # every word shows
    for size in ((900, 600), (1366, 768), (1920, 1080)):
        window.resize(*size)
        settle(qtbot)
        assert np.allclose(histogram.getViewBox().viewRange()[0], HISTOGRAM_RANGE, atol=0.01)


def test_at_the_desk_an_update_rule_taller_than_its_panel_scrolls_rather_than_being_cut(qtbot, window):
    from PySide6.QtCore import Qt

    from tests.visualizer.conftest import LONG_WAIT_MS, settle, wait_until_sampled

    window.resize(1000, 560)  # a small window: half its height cannot hold the CFG rule's 9 lines
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.session.active is not None, timeout=LONG_WAIT_MS)
    wait_until_sampled(qtbot, window)
    window.session.seek(5)
    settle(qtbot)
    equation = window.step_view.equation
    body, bar = equation.body, equation.scroller.verticalScrollBar()
    assert body.height() >= body.heightForWidth(body.width())  # the label holds every line
    assert bar.maximum() > 0  # and the panel scrolls to them
    bar.setValue(bar.maximum())
    settle(qtbot)
    last_line_bottom = body.mapTo(equation.scroller.viewport(), body.rect().bottomLeft()).y()
    assert last_line_bottom <= equation.scroller.viewport().height()  # scrolled down, the last line shows
