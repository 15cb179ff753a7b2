"""Issue 30 §4, small things seen on a 1366×768 screen: captions that read whole, legends that cover
no curve, and the app and the page drawing each run in the same colour."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from diffusion_stepper.core.io.html_page import write_html_page
from diffusion_stepper.visualizer.widgets.plots import ConvergencePlot
from tests.page_reading import page_data
from tests.visualizer.conftest import marked_trajectory


def test_the_app_and_the_page_draw_each_compared_run_in_the_same_colour(qtbot, tmp_path):
    runs = [(f"run {k}", marked_trajectory(3)) for k in range(3)]
    page_colours = page_data(write_html_page(runs, tmp_path / "page.html"))["colours"]["runs"]
    plot = ConvergencePlot()
    qtbot.addWidget(plot)
    curve = SimpleNamespace(nfe=np.arange(3), steps=np.arange(3), distance=np.ones(3), label="")
    plot.show_curves([curve] * len(runs), against_nfe=True)
    app_colours = [item.opts["pen"].color().name() for item in plot.curves]
    assert app_colours == page_colours[: len(runs)]
