"""examples/your_own_model.ipynb, run as a student runs it (a real Jupyter kernel, offline, on the
CPU): it trains, samples with `ds.sample`, shows the page inline, saves a run the app opens, and
records a loop of its own."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import nbclient
import nbformat
import pytest

from diffusion_stepper.core.formats.trajectory_file import load_trajectory
from tests.visualizer.conftest import displayed, settle

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "your_own_model.ipynb"


def outputs(cell) -> str:
    return "".join(str(output.get("data", {}).get("text/html", "")) + output.get("text", "") for output in cell.outputs)


@pytest.mark.slow  # a Jupyter kernel of its own, and half a minute of training
def test_the_notebook_trains_samples_shows_inline_and_saves_what_the_app_opens(qtbot, window, tmp_path):
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    notebook = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # kept clean
    client = nbclient.NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()

    shown = [outputs(cell) for cell in notebook.cells if cell.cell_type == "code"]
    inline = [text for text in shown if "<iframe srcdoc=" in text]
    assert len(inline) == 2  # ds.sample's run and the recorded loop, each its page inline
    page = html.unescape(re.search(r'srcdoc="([^"]*)"', inline[0])[1])
    assert "tiny bars UNet" in page and "data:image/png;base64" in page

    run = load_trajectory(tmp_path / "bars.npz")
    assert run.run_meta.sampler == "ddim" and run.run_meta.guidance == 3 and len(run) == 31
    samples = run.final_sample.clamp(0, 1)[:, 0]  # classes 0, 1, 0, 1, ...: horizontal, vertical bars
    across_rows = samples.mean(dim=2).var(dim=1)  # a horizontal bar: rows differ
    across_columns = samples.mean(dim=1).var(dim=1)  # a vertical one: columns differ
    horizontal = (across_rows > across_columns).tolist()
    assert sum(horizontal[0::2]) >= 3 and sum(horizontal[1::2]) <= 1  # the classes came out as trained

    recorded = load_trajectory(tmp_path / "my_loop.npz")
    assert len(recorded) == 301 and recorded.run_meta.model == "my DDPM loop"
    assert window.files.open_trajectory(tmp_path / "bars.npz")
    settle(qtbot)
    assert displayed(window, "x_t") is not None and window.session.active.trajectory.run_meta.model == "tiny bars UNet"
