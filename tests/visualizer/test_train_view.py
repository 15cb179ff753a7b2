"""The Train tab as a lecturer drives it: train, watch the loss, pause, stop, compare epochs,
and survive a diverging loss or running out of memory. Tiny models on a few real MNIST digits."""

import dataclasses
import hashlib
import re
import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from diffusion_stepper.core.cli import build_parser
from diffusion_stepper.core.cli.train import config_from_flags
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint
from diffusion_stepper.core.mnist.data import DATA_ENV_VAR
from diffusion_stepper.core.mnist.recipes import config_for_resume, preset_config
from diffusion_stepper.core.mnist.training import EpochEvent, LossEvent, epoch_sample_grid, train_on_mnist
from diffusion_stepper.core.training_progress import LossHistory
from diffusion_stepper.visualizer.controllers.training import IDLE
from diffusion_stepper.visualizer.menus import TRAIN_TAB
from diffusion_stepper.visualizer.widgets.panels import render_grid
from diffusion_stepper.visualizer.widgets.plots import PLOT_REFRESH_MS, LossPlot
from tests.conftest import TINY_HIDDEN
from tests.core.test_training_progress import loss_event
from tests.visualizer import training_faults
from tests.visualizer.conftest import LONG_WAIT_MS, action, make_window, wait_until_sampled

ITERATIONS_PER_EPOCH = 2


@pytest.fixture
def window(qtbot, tmp_path, mnist_dir):
    window = make_window(qtbot, tmp_path / "settings.ini")
    window.train_view.form.set_data_dir(str(mnist_dir))
    tiny_settings(window.train_view, tmp_path)
    return window


def tiny_settings(view, tmp_path):
    """The quick preset, shrunk to a tiny model on 64 digits (choosing a preset or model refills the form)."""
    view.form.preset.setCurrentIndex(view.form.preset.findData("quick"))
    view.form.hidden.setValue(TINY_HIDDEN)
    view.form.batch_size.setValue(32)
    view.form.limit.setValue(32 * ITERATIONS_PER_EPOCH)
    view.form.out_dir.setText(str(tmp_path / "run"))


def train(qtbot, window, epochs: int) -> Path:
    view = window.train_view
    view.form.epochs.setValue(epochs)
    window.start_training()
    qtbot.waitUntil(lambda: view.training.state == IDLE, timeout=LONG_WAIT_MS)
    qtbot.wait(PLOT_SETTLE_MS)
    return Path(view.form.out_dir.text())


PLOT_SETTLE_MS = PLOT_REFRESH_MS + 100  # longer than the plot's redraw interval


def file_digests(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


@pytest.mark.slow  # trains in a child process
def test_training_plots_each_iteration_and_shows_each_epochs_samples(qtbot, window):
    view = window.train_view
    run_dir = train(qtbot, window, epochs=2)
    iterations, raw = view.loss_plot.raw.getData()
    _, smoothed = view.loss_plot.smoothed.getData()
    assert list(iterations) == [1, 2, 3, 4]
    assert np.allclose(raw, view.training.history.raw) and len(smoothed) == 4
    assert smoothed[0] == pytest.approx(raw[0])  # the smoothed curve is bias-corrected from the start
    assert [marker.value() for marker in view.loss_plot.markers] == [2, 4]
    assert [marker.label.format for marker in view.loss_plot.markers] == ["1", "2"]
    assert "Finished 2 epochs" in view.readout.text()

    # The grid on screen is epoch 2's samples: recompute them from the saved checkpoint.
    checkpoint = run_dir / "epoch-002.json"
    loaded = load_checkpoint(checkpoint)
    config = config_for_resume(checkpoint)
    samples, labels = epoch_sample_grid(loaded.model, loaded.objective, config, torch.device("cpu"))
    assert labels.tolist() == list(range(10)) * 2  # the quick preset draws 2 of each digit
    assert np.array_equal(
        view.samples.image_item.image, render_grid(samples, "x_t", (0.0, 1.0), labels, view.samples.columns)
    )
    title = view.samples.title_label.text()
    assert "After epoch 2" in title and "seed 0" in title and "CFG γ = 5" in title and "one column per digit" in title
    assert [label.textItem.toPlainText() for label in view.samples.column_labels] == [str(d) for d in range(10)]

    # Both epochs can be sampled from the Sample dock at once.
    models = [window.sample_dock.model.itemText(i) for i in range(window.sample_dock.model.count())]
    assert {"run/epoch-001", "run/epoch-002"} <= set(models)
    assert window.sample_dock.model_key == "mnist-class-ddpm"  # the lecturer's choice is kept

    # Epoch comparison: the run just trained is offered with the epochs it saved, side by side from one seed.
    assert view.compare_run.currentData() == str(run_dir)
    assert view.compare_epochs.text() == "1, 2" and view.saved_epochs_label.text() == "Saved epochs: 1, 2"
    view.compare_button.click()
    wait_until_sampled(qtbot, window)
    runs = window.session.compared
    assert [run.name.split(" · ")[0] for run in runs] == ["run/epoch-001", "run/epoch-002"]
    assert len(window.compare_view.panels) == 2
    assert torch.equal(runs[0].trajectory[0].x_t, runs[1].trajectory[0].x_t)  # one seed, one start
    assert not torch.equal(runs[0].trajectory.final_sample, runs[1].trajectory.final_sample)


@pytest.mark.slow  # trains in a child process
def test_keep_training_goes_on_with_the_same_curve_and_samples(qtbot, window):
    view = window.train_view
    assert not view.keep_button.isEnabled()  # nothing has trained yet
    run_dir = train(qtbot, window, epochs=2)
    assert view.keep_button.isEnabled() and "Keep training (Ctrl+K)" in view.readout.text()
    window.training.epochs_lasting = lambda seconds: 2  # a minute at a lecture machine's pace
    action(window, "&Keep training another minute").trigger()
    assert not view.keep_button.isEnabled() and window.tabs.currentIndex() == TRAIN_TAB
    qtbot.waitUntil(lambda: view.training.state == IDLE, timeout=LONG_WAIT_MS)
    qtbot.wait(PLOT_SETTLE_MS)
    iterations, _ = view.loss_plot.raw.getData()
    assert list(iterations) == list(range(1, 9))  # one curve, going on from iteration 5
    assert [marker.value() for marker in view.loss_plot.markers] == [2, 4, 6, 8]
    assert "Finished 4 epochs" in view.readout.text() and "After epoch 4" in view.samples.title_label.text()
    sidecar = load_checkpoint(run_dir / "epoch-004.json").sidecar
    assert sidecar["hyperparameters"]["continued_after_epoch"] == 2


def test_keep_training_lasts_about_a_minute_at_the_runs_pace(window):
    training = window.training
    assert training.epochs_lasting(60.0) == 1  # nothing measured: one more
    # 100 of an epoch's 200 iterations in 5 s of training: 10 s an epoch
    training.history.add_losses(LossEvent(1, 100, 0.1, [0.1] * 100, 1e-3, 640.0, 100, 200, 5.0))
    assert training.epochs_lasting(60.0) == 6
    assert training.epochs_lasting(3.0) == 1


def test_a_long_run_numbers_at_most_eight_epoch_ends_and_the_numbers_do_not_touch(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(420, 260)  # the Train tab's plot on a 1366 x 768 screen
    history = LossHistory()
    for epoch in range(1, 31):
        history.add_losses(loss_event(epoch * 10, [0.5] * 10, epoch=epoch, epoch_iteration=10, per_epoch=10))
        history.add_epoch(EpochEvent(epoch, epoch * 10, 0.5, None, None, None, None, 1.0))
        plot.show_history(history)
    plot.show()
    qtbot.waitExposed(plot)
    numbered = [marker for marker in plot.markers if marker.label.format]
    assert [marker.label.format for marker in numbered] == ["4", "8", "12", "16", "20", "24", "28"]
    boxes = [marker.label.sceneBoundingRect() for marker in numbered]
    assert all(not left.intersects(right) for left, right in zip(boxes, boxes[1:]))
    assert all(plot.sceneBoundingRect().contains(box) for box in boxes)


def test_log_scale_toggle(qtbot, window):
    window.train_view.log_scale.setChecked(True)
    assert window.train_view.loss_plot.getPlotItem().ctrl.logYCheck.isChecked()


@pytest.mark.slow  # trains in a child process
def test_pause_holds_training_and_stop_keeps_the_last_checkpoint(qtbot, window):
    view = window.train_view
    view.form.epochs.setValue(200)
    window.start_training()
    run_dir = Path(view.form.out_dir.text())
    qtbot.waitUntil(lambda: view.training.last_checkpoint is not None, timeout=LONG_WAIT_MS)
    view.pause_button.click()
    assert view.pause_button.text() == "Resume"
    qtbot.waitUntil(
        lambda: view.readout.text().endswith("· paused"), timeout=LONG_WAIT_MS
    )  # the batch in flight is done
    held = len(view.training.history.raw)
    qtbot.wait(1000)
    assert len(view.training.history.raw) == held, "a paused run went on training"
    view.pause_button.click()
    qtbot.waitUntil(lambda: len(view.training.history.raw) > held, timeout=LONG_WAIT_MS)

    view.pause_button.click()  # stop from a paused run
    qtbot.waitUntil(lambda: view.readout.text().endswith("· paused"), timeout=LONG_WAIT_MS)
    saved = file_digests(run_dir)
    view.stop_button.click()
    qtbot.waitUntil(lambda: view.training.state == IDLE, timeout=LONG_WAIT_MS)
    assert view.readout.text().startswith("Stopped at epoch")
    after = file_digests(run_dir)
    assert after == saved, "stopping changed or added files"
    assert not list(run_dir.glob(".*partial"))
    assert load_checkpoint(view.training.last_checkpoint).sidecar["epoch"] >= 1
    assert view.start_button.isEnabled()


@pytest.mark.slow  # trains in a child process
def test_a_pause_after_stop_does_not_hold_the_run_that_is_ending(qtbot, window):
    view = window.train_view
    view.form.epochs.setValue(200)
    window.start_training()
    qtbot.waitUntil(lambda: view.training.last_checkpoint is not None, timeout=LONG_WAIT_MS)
    view.stop_button.click()
    view.pause_button.click()  # still enabled while the run stops: it must not park the child
    qtbot.waitUntil(lambda: view.training.state == IDLE, timeout=LONG_WAIT_MS)
    assert view.readout.text().startswith("Stopped at epoch") and view.start_button.isEnabled()


def test_a_run_that_cannot_start_is_one_error_and_the_tab_stays_usable(qtbot, window):
    window.training.train_items = lambda *args: iter(())  # a lambda cannot be sent to a child process
    window.start_training()
    assert window.training.state == IDLE and window.train_view.start_button.isEnabled()
    assert window.messages.last_error.startswith("Training stopped: ")
    assert len(window.messages.last_error.splitlines()) == 1


@pytest.mark.slow  # trains in a child process
def test_a_nan_loss_stops_training_with_where_it_happened(qtbot, window):
    window.training.train_items = training_faults.diverging_at_the_third_iteration
    run_dir = train(qtbot, window, epochs=3)
    message = window.messages.last_error
    assert "loss became nan at epoch 2, iteration 3" in message
    assert "epoch-001.json" in message and "intact" in message
    assert window.messages.error_box.isVisible()
    assert load_checkpoint(run_dir / "epoch-001.json").sidecar["epoch"] == 1
    assert not (run_dir / "epoch-002.json").exists()
    assert window.train_view.start_button.isEnabled()


@pytest.mark.slow  # trains in a child process
def test_out_of_memory_suggests_a_smaller_batch_and_the_app_goes_on(qtbot, window, tmp_path):
    window.training.train_items = training_faults.out_of_memory
    train(qtbot, window, epochs=1)
    assert "out of CPU memory at batch size 32" in window.messages.last_error
    assert "try a smaller batch size, such as 16" in window.messages.last_error
    window.training.train_items = train_on_mnist
    window.messages.error_box.close()
    window.train_view.form.out_dir.setText(str(tmp_path / "second"))
    train(qtbot, window, epochs=1)  # the app trains again after the failure
    assert (tmp_path / "second" / "epoch-001.json").is_file()


@pytest.mark.slow  # trains in a child process
def test_a_killed_training_process_is_one_error_and_the_window_goes_on(qtbot, window, tmp_path):
    window.training.train_items = training_faults.killed_after_the_first_epoch
    run_dir = train(qtbot, window, epochs=3)
    message = window.messages.last_error
    assert message.startswith("Training stopped: its process was killed (SIGKILL")
    assert "epoch-001.json" in message and "intact" in message
    assert load_checkpoint(run_dir / "epoch-001.json").sidecar["epoch"] == 1  # what was saved is whole
    assert not list(run_dir.glob("epoch-002*")) and not list(run_dir.glob(".*partial"))
    assert window.train_view.start_button.isEnabled() and "killed" in window.train_view.readout.text()
    window.training.train_items = train_on_mnist
    window.messages.error_box.close()
    window.train_view.form.out_dir.setText(str(tmp_path / "again"))
    train(qtbot, window, epochs=1)
    assert (tmp_path / "again" / "epoch-001.json").is_file()


@pytest.mark.slow  # trains in a child process
def test_a_folder_with_another_runs_checkpoints_is_refused(qtbot, window):
    run_dir = train(qtbot, window, epochs=1)
    saved = file_digests(run_dir)
    train(qtbot, window, epochs=1)  # the same folder again
    assert "already holds checkpoints" in window.messages.last_error
    assert file_digests(run_dir) == saved


@pytest.mark.slow  # trains in a child process
def test_a_long_failure_message_neither_widens_the_window_nor_the_form(qtbot, window, tmp_path):
    long_folder = tmp_path / ("a-folder-with-a-very-long-name-" * 8)
    window.train_view.form.out_dir.setText(str(long_folder))
    window.resize(1200, 800)
    train(qtbot, window, epochs=1)
    widths = window.width(), window.train_view.form.width()
    train(qtbot, window, epochs=1)  # refused: the message names the long folder
    qtbot.wait(PLOT_SETTLE_MS)
    readout = window.train_view.readout
    assert "already holds checkpoints" in readout.text() and str(long_folder) in readout.toolTip()
    assert readout.fontMetrics().horizontalAdvance(readout.text()) > window.width()  # it really is longer
    assert (window.width(), window.train_view.form.width()) == widths


@pytest.mark.slow  # trains in a child process
def test_resume_continues_a_stopped_run(qtbot, window):
    run_dir = train(qtbot, window, epochs=1)
    view = window.train_view
    view.form.epochs.setValue(2)
    assert view.resume(run_dir)
    qtbot.waitUntil(lambda: view.training.state == IDLE, timeout=LONG_WAIT_MS)
    assert (run_dir / "epoch-002.json").is_file()
    assert view.training.history.iterations[0] == ITERATIONS_PER_EPOCH + 1  # the curve goes on from the checkpoint


@pytest.mark.slow  # trains in a child process
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_asking_for_cuda_without_a_gpu_says_what_to_do(qtbot, window):
    window.train_view.form.device.setCurrentText("cuda")
    train(qtbot, window, epochs=1)
    assert "no CUDA device" in window.messages.last_error and "choose the CPU device" in window.messages.last_error
    assert not (Path(window.train_view.form.out_dir.text()) / "epoch-001.json").exists()


@pytest.mark.slow  # trains in a child process
def test_the_single_step_model_can_train_on_pure_noise(qtbot, window, tmp_path):
    view = window.train_view
    view.form.model.setCurrentIndex(view.form.model.findData("single-step"))
    tiny_settings(view, tmp_path)
    assert view.form.is_shown(view.form.pure_noise) and not view.form.is_shown(view.form.objective)
    view.form.pure_noise.setChecked(True)
    run_dir = train(qtbot, window, epochs=1)
    assert window.messages.last_error is None
    sidecar = load_checkpoint(run_dir / "epoch-001.json").sidecar
    assert sidecar["objective"] == {"name": "single-step", "sigma": 1.0, "pure_noise": True}
    assert view.samples.grid is not None  # 40 samples, in a near-square grid


@pytest.mark.slow  # trains in a child process
def test_the_samples_refresh_during_an_epoch_with_how_they_were_drawn(qtbot, window, tmp_path):
    view = window.train_view
    view.form.limit.setValue(32 * 12)  # one epoch of 12 iterations, with previews between them
    view.form.preview_seconds = 0.01
    shown = []
    view.training.preview_ready.connect(
        lambda event: shown.append((event, view.samples.title_label.text(), view.samples.image_item.image.copy()))
    )
    train(qtbot, window, epochs=1)
    assert shown, "no sample grid was drawn before the end of the epoch"
    event, title, image = shown[0]
    assert event.epoch == 1 and 0 < event.iteration < 12
    assert re.match(rf"After \d+ s of training \(epoch 1, iteration {event.iteration}\): ", title)
    assert "seed 0, 10 Euler steps, CFG γ = 5, one column per digit" in title
    assert np.array_equal(image, render_grid(event.samples, "x_t", (0.0, 1.0), event.sample_labels, 10))
    assert "After epoch 1" in view.samples.title_label.text()  # the epoch's own grid comes last


@pytest.mark.slow  # trains in a child process
def test_epoch_comparison_lists_the_runs_on_disk(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr("diffusion_stepper.core.paths.WORK_FOLDER", tmp_path)
    view = window.train_view
    view.refresh_runs()
    assert view.compare_run.currentText() == "no run on disk yet: press Start"
    assert not view.has_runs and not view.compare_button.isEnabled()
    window.show_epoch_comparison()  # Alt+6 with no run: the Train tab, and what to do
    assert window.tabs.currentIndex() == TRAIN_TAB
    assert "press Start (Ctrl+T)" in window.statusBar().currentMessage()

    earlier = train(qtbot, window, epochs=2)  # tmp_path/run: in the work folder
    view.form.out_dir.setText(str(tmp_path / "later"))
    train(qtbot, window, epochs=1)
    names = [view.compare_run.itemText(i) for i in range(view.compare_run.count())]
    assert names == ["later · 1 epochs", "run · 2 epochs"]  # this tab's run first
    view.compare_run.setCurrentIndex(1)
    assert view.compare_epochs.text() == "1, 2"
    compared = []
    view.compare_epochs_requested.connect(lambda folder, epochs: compared.append((folder, epochs)))
    view.compare_button.click()
    assert compared == [(str(earlier), [1, 2])]


@pytest.mark.slow  # trains in a child process
def test_a_fresh_install_trains_on_the_bundled_mnist_with_no_network(qtbot, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no downloaded MNIST, no earlier runs
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    monkeypatch.setattr("diffusion_stepper.core.paths.WORK_FOLDER", home / "diffusion-stepper-runs")

    def no_network(*args, **kwargs):
        raise AssertionError("the app tried the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    window = make_window(qtbot, tmp_path / "settings.ini")
    view = window.train_view
    assert view.form.preset.currentData() == "quick" and view.form.objective.currentData() == "flow"
    assert view.form.data_label.text() == "MNIST bundled with the app" and view.form.data_reset.isHidden()
    assert not view.has_runs
    view.form.hidden.setValue(TINY_HIDDEN)  # the quick preset as it is, but a tiny model on 64 digits
    view.form.limit.setValue(64)
    view.form.epochs.setValue(1)
    window.start_training()
    qtbot.waitUntil(lambda: view.training.state == IDLE, timeout=LONG_WAIT_MS)
    assert window.messages.last_error is None, window.messages.last_error
    (run_dir,) = (home / "diffusion-stepper-runs").iterdir()
    assert (run_dir / "epoch-001.json").is_file()
    assert "Finished 1 epoch" in view.readout.text()
    assert view.compare_run.currentData() == str(run_dir)


@pytest.mark.slow  # trains in a child process
def test_the_quick_preset_the_train_tab_runs_is_the_one_the_command_line_runs(qtbot, tmp_path):
    """Start pressed on the Train tab as it opens, and `train mnist --preset quick`: the same recipe,
    as the child process receives it. Only how often progress is reported differs (the tab plots
    every iteration and draws a preview every few seconds, from generators of their own)."""
    window = make_window(qtbot, tmp_path / "settings.ini")
    window.train_view.form.out_dir.setText(str(tmp_path / "run"))
    window.start_training()
    in_the_tab = window.training.job.make_items.args[0]  # what the child process is given
    window.training.shutdown()
    qtbot.waitUntil(lambda: window.training.state == IDLE, timeout=LONG_WAIT_MS)
    args = build_parser().parse_args(["train", "mnist", "--preset", "quick", "--out", str(tmp_path / "cli")])
    on_the_command_line = config_from_flags(args)
    reporting = {"log_every", "preview_seconds"}
    tab, cli = dataclasses.asdict(in_the_tab), dataclasses.asdict(on_the_command_line)
    assert {key: tab[key] for key in tab.keys() - reporting} == {key: cli[key] for key in cli.keys() - reporting}
    assert dataclasses.asdict(preset_config("quick")) == cli  # and both are the preset's own


@pytest.mark.slow  # trains in a child process
def test_closing_while_training_asks_and_keeps_training_unless_told_to_stop(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    view = window.train_view
    view.form.epochs.setValue(200)
    window.start_training()
    qtbot.waitUntil(lambda: view.training.last_checkpoint is not None, timeout=LONG_WAIT_MS)
    asked = []

    def answer(role):
        def exec_(box):
            asked.append(box.text())
            button = next(b for b in box.buttons() if box.buttonRole(b) == role)
            monkeypatch.setattr(box, "clickedButton", lambda: button)
            return 0

        return exec_

    monkeypatch.setattr(QMessageBox, "exec", answer(QMessageBox.ButtonRole.RejectRole))  # "Keep training"
    window.close()
    assert window.isVisible() and view.training.state != IDLE  # still training
    assert "finished epochs are saved in" in asked[0] and "epoch-" in asked[0]
    monkeypatch.setattr(QMessageBox, "exec", answer(QMessageBox.ButtonRole.DestructiveRole))  # "Stop training and quit"
    window.close()
    assert not window.isVisible()
    qtbot.waitUntil(lambda: view.training.state == IDLE, timeout=LONG_WAIT_MS)  # the job was stopped, not left running
    assert load_checkpoint(view.training.last_checkpoint).sidecar["epoch"] >= 1  # what was trained is kept
    assert len(asked) == 2


def test_closing_when_nothing_trains_asks_nothing(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "exec", lambda box: pytest.fail("asked without training"))
    window.close()
    assert not window.isVisible()
