"""The sampler lab in the app: the docks' sampler choice, the race in the Compare view aligned by
NFE with its x̂₀ plot, and the quality-against-NFE dialog."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtCore import Qt

from diffusion_stepper.core.diffusion.rules.catalogue import EPS_SAMPLERS, FLOW_SAMPLERS, IF_SAMPLERS
from diffusion_stepper.core.diffusion.sampler_race import x0_convergence
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint
from diffusion_stepper.core.mnist.experiments import EXPERIMENTS, ExperimentOptions
from diffusion_stepper.core.mnist.guidance_tradeoff import FAST_SAMPLERS
from diffusion_stepper.core.session import CANCELLED, DONE
from diffusion_stepper.core.timeline import ALIGN_NFE, ALIGN_TIME
from diffusion_stepper.visualizer.main_window import COMPARE_TAB, STEP_TAB
from diffusion_stepper.visualizer.widgets.panels import FIT, render_grid
from diffusion_stepper.visualizer.widgets.plots import series_colour
from tests.visualizer.conftest import LONG_WAIT_MS, settle, wait_until_sampled


@pytest.fixture
def window(shared_window):
    """One window for this module's tests, put back as it opened before each (conftest.reset_window)."""
    return shared_window


def combo_items(combo) -> list:
    return [combo.itemData(index) for index in range(combo.count())]


def test_the_sample_dock_offers_the_samplers_that_suit_the_model(window):
    dock = window.sample_dock
    dock.select_model("mnist-class-ddpm")
    own = load_checkpoint("mnist-class-ddpm").default_sampler
    assert combo_items(dock.sampler) == [None, *EPS_SAMPLERS]
    assert dock.sampler.currentText() == f"model default ({EPS_SAMPLERS[own].title})"
    assert dock.request().sampler is None and dock.chosen_sampler == own
    assert dock.form.isRowVisible(dock.eta) == (own == "ddim")
    dock.sampler.setCurrentIndex(dock.sampler.findData("ddim"))
    assert dock.form.isRowVisible(dock.eta)
    dock.eta.setValue(0.5)
    request = dock.request()
    assert (request.sampler, request.eta) == ("ddim", 0.5)
    dock.select_model("mnist-class-flow")  # DDIM does not suit a flow model: back to the model's own
    assert combo_items(dock.sampler) == [None, *FLOW_SAMPLERS] and not dock.form.isRowVisible(dock.eta)
    assert dock.request().sampler is None and dock.request().eta is None
    assert dock.chosen_sampler == load_checkpoint("mnist-class-flow").default_sampler
    dock.sampler.setCurrentIndex(dock.sampler.findData("heun"))
    dock.select_model("mnist-time-flow")  # a choice that suits the next model stays
    assert dock.request().sampler == "heun"
    dock.select_model("mnist-single-step")
    assert not dock.form.isRowVisible(dock.sampler) and dock.request().sampler is None


def test_the_if_dock_offers_if_samplers(window):
    dock = window.if_dock
    assert combo_items(dock.sampler) == list(IF_SAMPLERS)
    dock.sampler.setCurrentIndex(dock.sampler.findData("dpm++2m"))
    assert not dock.form.isRowVisible(dock.eta)
    dock.sampler.setCurrentIndex(dock.sampler.findData("ddim"))
    assert dock.form.isRowVisible(dock.eta)


@pytest.fixture
def tiny_race(window, tiny_checkpoints, monkeypatch):
    options = ExperimentOptions(device="cpu", seed=4, ddpm_checkpoint=str(tiny_checkpoints["class-ddpm"]))
    monkeypatch.setattr(window.sample_dock, "experiment_options", lambda: options)
    return window


def test_the_race_lines_runs_up_by_nfe_with_each_x0_and_the_plot(qtbot, window, tiny_race, tmp_path):
    title = f"{EXPERIMENTS['samplers'].title}, 10 evaluations each"
    next(action for action in window.actions() if action.text() == title).trigger()
    racers = len(EPS_SAMPLERS)
    qtbot.waitUntil(lambda: len(window.session.compared) == racers and not window.sampling.busy, timeout=LONG_WAIT_MS)
    wait_until_sampled(qtbot, window)
    view, session = window.compare_view, window.session
    assert window.tabs.currentIndex() == COMPARE_TAB
    assert session.align == ALIGN_NFE and view.align.currentData() == ALIGN_NFE
    assert session.timeline_length == 11  # NFE 0..10; Heun's 5 steps spend 9
    runs = session.compared
    assert [run.trajectory.meta["params"]["sampler"] for run in runs] == list(EPS_SAMPLERS)

    session.seek(3)
    settle(qtbot)
    heun = runs[-1]
    assert session.frame_index(heun) == 1 and session.frame_index(runs[0]) == 3
    x_t_panel, x0_panel = view.panels[heun.id]
    frame = heun.trajectory[1]
    for panel, image in ((x_t_panel, frame.x_t), (x0_panel, frame.x0_hat)):
        expected = render_grid(image, "x_t", (0.0, 1.0), heun.trajectory.labels, panel.columns)
        assert np.array_equal(panel.image_item.image, expected)
    header = view.titles[heun.id].text().replace("&nbsp;", " ")  # the row's title, beside its pictures
    assert "NFE 2" in header and "Heun" in header
    heun_colour = "#{:02x}{:02x}{:02x}".format(*series_colour(racers - 1))  # the title is its curve's legend
    assert f"color='{heun_colour}'" in header

    # the plot: one curve per run, the numbers of x0_convergence, the cursor on the timeline
    assert view.plot.isVisible() and len(view.plot.curves) == racers
    for item, run in zip(view.plot.curves, runs):
        x, y = item.getData()
        curve = x0_convergence(run.trajectory)
        assert list(x) == curve.nfe and np.allclose(y, curve.distance)
    assert view.plot.cursor.value() == 3
    # the key under the title names every curve (no legend over them); Euler's says it is DDIM η=0's step
    labels = [label for label, _ in view.plot.key]
    assert len(labels) == racers and not view.plot.legend.isVisible()
    assert [label for label in labels if "(= DDIM η=0)" in label] == [labels[list(EPS_SAMPLERS).index("euler")]]
    csv_path, png_path = view.save_plot(tmp_path / "race.png")
    assert png_path.name == "race.png" and png_path.stat().st_size > 0
    assert len(list(csv.DictReader(csv_path.open()))) == sum(len(run.trajectory) for run in runs)

    # a cancelled run has no final image: its curve is not drawn (it would sit at distance ~1)
    runs[0].state = CANCELLED
    view.refresh()
    settle(qtbot)
    assert len(view.plot.curves) == racers - 1 and len(view.plot.key) == racers - 1
    runs[0].state = DONE
    view.refresh()

    # back to normalized time: the Heun run's half-way frame is shown half way along
    view.align.setCurrentIndex(view.align.findData(ALIGN_TIME))
    assert session.align == ALIGN_TIME and session.timeline_length == 11
    session.seek(5)
    assert session.frame_index(heun) == round(5 / 10 * 5)


@pytest.mark.slow  # the judge reads the 10,000 test digits
def test_quality_dialog_measures_draws_and_saves(qtbot, window, tmp_path):
    next(action for action in window.actions() if action.text().startswith("Sample quality against NFE")).trigger()
    dialog = window.quality_dialog
    assert dialog.model.currentData() == "mnist-class-ddpm"
    dialog.per_class.setValue(2)
    dialog.budgets.setText("2")
    dialog.guidance.setValue(1.0)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.job is None and dialog.start_button.isEnabled(), timeout=LONG_WAIT_MS)
    assert [row.sampler for row in dialog.rows] == list(EPS_SAMPLERS)
    assert {row.guidance for row in dialog.rows} == {1.0}
    assert dialog.picture.pixmap() is not None and not dialog.picture.pixmap().isNull()
    assert f"Done: {len(EPS_SAMPLERS)} points" in dialog.status.text()
    csv_path, png_path = dialog.save(tmp_path)
    rows = list(csv.DictReader(csv_path.open()))
    assert [float(row["accuracy"]) for row in rows] == pytest.approx([row.accuracy for row in dialog.rows])
    assert png_path.stat().st_size > 0
    dialog.budgets.setText("five")
    dialog.start()
    assert dialog.status.text().startswith("NFE budgets:") and dialog.job is None


def test_the_schedule_plot_shows_when_guidance_acts(qtbot, window, tiny_checkpoints):
    window.files.add_checkpoint(tiny_checkpoints["class-ddpm"])
    window.sample_dock.steps.setValue(5)
    window.generate()
    wait_until_sampled(qtbot, window)
    frames = window.session.active.trajectory.frames
    gaps = np.array([frame.coeffs["guidance_gap"] for frame in frames[:-1]])
    x, y = window.step_view.schedule.gap.getData()
    assert list(x) == [frame.t for frame in frames[:-1]] and np.allclose(y, gaps / gaps.max())
    assert "eps_gap" in window.step_view.extra_panels  # the map of |ε_c − ε_u| under the CFG extras
    window.session.seek(2)
    settle(qtbot)
    shown = window.step_view.equation.text.split("mean |ε_c − ε_u| = ")[1].split()[0]
    assert float(shown) == pytest.approx(frames[2].coeffs["guidance_gap"], rel=1e-2)
    assert window.step_view.schedule.gap.name().startswith("mean |ε_c − ε_u| ÷")
    # a flow model's estimate is v: the legend says so
    window.files.add_checkpoint(tiny_checkpoints["class-flow"])
    window.generate()
    wait_until_sampled(qtbot, window)
    settle(qtbot)
    assert window.step_view.schedule.gap.name().startswith("mean |v_c − v_u| ÷")


@pytest.mark.slow  # the judge reads the 10,000 test digits
def test_tradeoff_dialog_draws_the_sweep_and_opens_a_point_in_compare(qtbot, fresh_window, tiny_checkpoints, tmp_path):
    """(A fresh window: the dialog opens for the first time, offering the dock's model first.)"""
    window = fresh_window
    window.files.add_checkpoint(tiny_checkpoints["class-ddpm"])  # selected: offered first
    next(action for action in window.actions() if action.text().startswith("&Guidance trade-off")).trigger()
    dialog = window.tradeoff_dialog
    assert dialog.model.currentData() == str(tiny_checkpoints["class-ddpm"])
    dialog.per_class.setValue(2)
    dialog.guidances.setText("0, 4")
    dialog.start()
    qtbot.waitUntil(lambda: dialog.job is None and dialog.start_button.isEnabled(), timeout=LONG_WAIT_MS)
    assert [row.guidance for row in dialog.rows] == [0.0, 4.0] and "Done: 2 points" in dialog.status.text()
    assert not dialog.picture.pixmap().isNull()
    # the charts are drawn at the dialog's size, not a 1920 px picture scaled down (5 px text):
    # their text keeps the chart's sizes (core/formats/charts.py: 12 px and up) however small the dialog
    dialog.resize(700, 500)
    qtbot.waitUntil(lambda: dialog.picture.pixmap().size() == dialog.picture.size(), timeout=5000)
    assert dialog.picture.pixmap().width() <= 700
    assert [button.text() for button in dialog.open_buttons] == ["γ = 0", "γ = 4"]
    csv_path, _ = dialog.save(tmp_path)
    assert [float(row["guidance"]) for row in csv.DictReader(csv_path.open())] == [0.0, 4.0]

    runs_before = len(window.session.runs)
    dialog.open_buttons[1].click()  # γ = 4's run, sampled again from the same seed, on its own in Step
    qtbot.waitUntil(lambda: not window.sampling.busy and len(window.session.runs) > runs_before, timeout=LONG_WAIT_MS)
    run = window.session.active
    assert window.tabs.currentIndex() == STEP_TAB and window.zoom == FIT  # all its digits fit the view
    params = run.trajectory.meta["params"]
    assert (params["guidance"], params["per_class"]) == (4.0, 2)
    assert (params["sampler"], params["steps"]) == FAST_SAMPLERS["ddpm"]
    dialog.guidances.setText("0, 500")
    dialog.start()
    assert dialog.status.text().startswith("scales γ:") and dialog.job is None


@pytest.mark.slow  # the judge reads the 10,000 test digits
def test_judging_the_active_run_shows_the_judges_figures(qtbot, window, tiny_checkpoints):
    from diffusion_stepper.core.mnist.judge import describe_figures, judge_run

    window.sample_dock.steps.setValue(3)
    window.generate()  # the bundled class model: real digits for the judge
    wait_until_sampled(qtbot, window)
    next(action for action in window.actions() if action.text().startswith("&Judge this run")).trigger()
    qtbot.waitUntil(lambda: window.judging.job is None and window.judging.last != "", timeout=LONG_WAIT_MS)
    expected = describe_figures(judge_run(window.session.active.trajectory))
    assert window.judging.last == expected and window.statusBar().currentMessage() == expected
    assert "read as the digit asked for" in expected


def test_the_empty_schedule_plot_lists_no_gap_curve(window):
    schedule = window.step_view.schedule
    assert not schedule.gap.isVisible() and schedule.legend.listed() == []


@pytest.mark.slow  # the judge reads the 10,000 test digits before the first point
def test_the_tradeoff_dialog_is_one_dialog_hidden_by_esc_which_cancels_its_measurement(qtbot, window, tiny_checkpoints):
    """Esc hides the dialog (never deleted while the app runs) and cancels a running measurement;
    opening it again shows the same dialog, idle, with the dock's models as they are now."""
    window.files.add_checkpoint(tiny_checkpoints["class-ddpm"])
    action = next(action for action in window.actions() if action.text().startswith("&Guidance trade-off"))
    action.trigger()
    dialog = window.tradeoff_dialog
    destroyed = []
    dialog.destroyed.connect(lambda *_: destroyed.append(1))
    dialog.per_class.setValue(2)
    dialog.guidances.setText("0, 1, 2, 3, 4, 5, 6, 7")
    dialog.start()
    assert dialog.job is not None
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow)
    qtbot.keyClick(dialog.guidances, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=LONG_WAIT_MS)
    assert "Cancelled" in dialog.status.text() and len(dialog.rows) < 8
    window.files.add_checkpoint(tiny_checkpoints["class-flow"])
    action.trigger()
    assert window.tradeoff_dialog is dialog and dialog.isVisible() and not destroyed
    assert str(tiny_checkpoints["class-flow"]) in combo_items(dialog.model)
