"""The installed Qt binding must not corrupt Python's reference counts while we draw.

PySide6 6.12.0 drops a reference to None on every call that returns nothing. On Python < 3.12,
where None is not immortal, the app then aborted ("none_dealloc") after about a minute of live
sampling. pyproject.toml excludes that release; this test catches any other release that does it.
"""

import sys

import pytest
import torch

from diffusion_stepper.core.diffusion.theory import HISTOGRAM_EDGES, FrameHistograms, density_histogram
from diffusion_stepper.visualizer.widgets.plots import HistogramPlot

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")


def test_drawing_does_not_release_references_to_none(qtbot):
    plot = HistogramPlot()
    qtbot.addWidget(plot)
    plot.resize(400, 300)
    values = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    histograms = FrameHistograms(
        HISTOGRAM_EDGES, density_histogram(values), density_histogram(values), "eps_hat", None, None, ""
    )
    plot.show_histograms(histograms)
    plot.grab()
    before = sys.getrefcount(None)
    for _ in range(50):
        plot.show_histograms(histograms)
        plot.grab()
    # 6.12.0 loses about 90 per redraw here; a sound binding loses none
    assert sys.getrefcount(None) - before > -200
