"""A diffusers DDPM/DDIM folder in the app: dropped on the window (or added), listed in the Sample
dock with only the settings it takes, and Generate samples it through core into RGB pictures."""

from __future__ import annotations

import numpy as np
import pytest

from diffusion_stepper.visualizer.widgets.panels import render_grid
from tests.diffusers_folders import save_tiny_pipeline
from tests.visualizer.conftest import displayed, shown_columns, wait_until_sampled

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def test_a_dropped_folder_is_listed_and_generate_samples_it_in_colour(qtbot, window, tmp_path):
    folder = save_tiny_pipeline(tmp_path / "tiny-ddpm", num_train_timesteps=50)
    window.open_dropped(str(folder))
    dock = window.sample_dock
    assert dock.model.currentText() == "tiny-ddpm (diffusers)" and dock.folder is not None
    assert "Added tiny-ddpm (diffusers)" in window.statusBar().currentMessage()
    rows = {field: dock.form.isRowVisible(field) for field in (dock.classes, dock.guidance, dock.x0_clip, dock.sigma)}
    assert rows == dict.fromkeys(rows, False)  # what such a model does not take is not offered
    assert dock.form.isRowVisible(dock.num) and dock.sampler.itemText(0) == "model default (DDPM)"
    assert not dock.sweep_button.isEnabled()

    dock.num.setValue(2)
    dock.steps.setValue(5)
    dock.seed.setValue(3)
    dock.device.setCurrentText("cpu")
    dock.sampler.setCurrentIndex(dock.sampler.findData("ddim"))
    assert dock.form.isRowVisible(dock.eta)
    window.generate()
    wait_until_sampled(qtbot, window)
    run = window.session.active
    assert window.messages.last_error is None and run is not None and run.produced == 6
    meta = run.trajectory.run_meta
    assert (meta.model, meta.sampler, meta.steps, meta.seed, meta.family) == ("tiny-ddpm", "ddim", 5, 3, "ddpm")
    final = run.trajectory.frames[-1]
    assert final.x_t.shape == (2, 3, 32, 32)
    picture = displayed(window, "x_t")
    assert picture.ndim == 3 and picture.shape[-1] == 3  # RGB, not a greyscale digit
    expected = render_grid(final.x_t, "x_t", (-1.0, 1.0), None, shown_columns(window))
    assert np.array_equal(picture, expected)


def test_a_folder_the_app_cannot_sample_is_one_line_and_changes_nothing(window, tmp_path):
    folder = save_tiny_pipeline(tmp_path / "bad", variance_type="learned_range")
    models = window.sample_dock.model.count()
    assert not window.files.add_checkpoint(folder / "model_index.json")
    assert "variance_type 'learned_range' is not supported" in window.messages.last_error
    assert window.sample_dock.model.count() == models
