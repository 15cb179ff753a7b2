"""The app as a lecturer drives it: generate, watch frames arrive, scrub, export, compare.

Assertions are on what the widgets display (image items' pixels, histogram data, text) and on
the files written.
"""

import threading

import av
import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QEvent, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QMouseEvent
from PySide6.QtWidgets import QPushButton

from diffusion_stepper.core.diffusion.step_check import check_step
from diffusion_stepper.core.diffusion.theory import density_histogram
from diffusion_stepper.core.exports.animation import select_frames
from diffusion_stepper.core.exports.render import render_frame
from diffusion_stepper.core.formats.trajectory_file import load_trajectory
from diffusion_stepper.core.session import CANCELLED, DONE
from diffusion_stepper.visualizer.controllers import sampling
from diffusion_stepper.visualizer.dialogs.export_dialog import ExportDialog, ExportOptions
from diffusion_stepper.visualizer.views.step_view import EQUATION
from diffusion_stepper.visualizer.widgets.panels import render_grid
from diffusion_stepper.visualizer.widgets.timeline import PRODUCED_COLOUR
from tests.visualizer.conftest import LONG_WAIT_MS, displayed, make_window, settle, wait_until_sampled


@pytest.fixture
def window(shared_window):
    """One window for the module, put back as it opened before each test (tests that open their
    own, to close it or to reopen its settings, make it)."""
    return shared_window


def test_opens_ready_on_the_bundled_class_model(window):
    assert window.sample_dock.model_key == "mnist-class-ddpm"
    assert window.sample_dock.is_class_conditioned and window.sample_dock.classes.text() == "0-9"
    assert window.step_view.empty_message.isVisible()
    assert "Generate" in window.transport.caption.text()


def held_after(frames: int, monkeypatch) -> threading.Event:
    """Make the next sampling job hold after its first `frames` frames until the returned event is
    set, so a test sees a run that is certainly still sampling, however fast the machine."""
    release = threading.Event()
    items_of = sampling.sampling_items

    def held_items(request):
        for count, item in enumerate(items_of(request)):
            if count == 1 + frames:  # the run's header, then `frames` frames, are with the GUI
                assert release.wait(LONG_WAIT_MS / 1000), "the test never let the job go on"
            yield item

    monkeypatch.setattr(sampling, "sampling_items", held_items)
    return release


def test_generate_streams_frames_then_scrubbing_shows_each_frames_pixels(qtbot, window, monkeypatch):
    window.sample_dock.steps.setValue(40)
    release = held_after(3, monkeypatch)
    try:
        qtbot.keyClick(window, Qt.Key.Key_Return)
        qtbot.waitUntil(
            lambda: window.session.active is not None and window.session.active.produced >= 3, timeout=LONG_WAIT_MS
        )
        run = window.session.active
        settle(qtbot)
        # still sampling: the later frames are visibly pending on the timeline
        assert run.produced == 3 and window.sampling.busy
        timeline = window.transport.timeline
        assert timeline.pending_from == 3
        picture = timeline.grab().toImage()
        y = timeline.height() // 2 + 4
        pending_x = int(timeline.x_of(40))
        produced_x = int(timeline.x_of(0))
        assert picture.pixelColor(produced_x, y).name() == PRODUCED_COLOUR.name()
        assert picture.pixelColor(pending_x, y).name() != PRODUCED_COLOUR.name()
    finally:
        release.set()
    wait_until_sampled(qtbot, window)
    assert run.state == DONE and run.produced == 41
    assert window.session.position == 40  # followed the newest frame
    assert run.trajectory.labels.tolist() == list(range(10))

    qtbot.keyClick(window, Qt.Key.Key_Home)
    for _ in range(3):
        qtbot.keyClick(window, Qt.Key.Key_Right)
    settle(qtbot)
    assert window.session.position == 3
    frame = run.trajectory[3]
    trajectory = run.trajectory
    for key, field in (("x_t", "x_t"), ("x0_hat", "x0_hat"), ("noise", "eps_hat")):
        columns = window.step_view.panels[key].columns
        expected = render_grid(frame.image(field), field, trajectory.value_range, trajectory.labels, columns)
        assert np.array_equal(displayed(window, key), expected), key
    histogram = window.step_view.histogram
    assert np.array_equal(histogram.x_t_bars.getData()[1], density_histogram(frame.x_t))
    assert np.array_equal(histogram.noise_bars.getData()[1], density_histogram(frame.eps_hat))
    assert not histogram.x_t_theory.isVisible()  # mid-run, x0 is unknown
    assert all(item.isVisible() for item in histogram.legend.listed())  # no crossed-out entries
    assert "x0.001" not in histogram.getAxis("left").labelString()  # no SI prefix that reads like x₀
    assert f"{frame.coeffs['coef_x0']:.4f}·x̂₀" in window.step_view.equation.text
    assert window.step_view.schedule.cursor.value() == frame.t
    assert "step 3/40" in window.transport.caption.text() and f"t = {int(frame.t)}" in window.transport.caption.text()

    qtbot.keyClick(window, Qt.Key.Key_Home)
    settle(qtbot)
    assert histogram.x_t_theory.isVisible()  # x_T ~ N(0, 1) at the start
    assert "x_t theory" in histogram.subtitle


def test_cancel_stops_at_the_next_step_and_keeps_the_frames(qtbot, window):
    window.sample_dock.steps.setValue(300)  # the full chain, so the cancel lands mid-run
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: window.session.active is not None and window.session.active.produced >= 3, timeout=LONG_WAIT_MS
    )
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    wait_until_sampled(qtbot, window)
    run = window.session.active
    assert run.state == CANCELLED and 3 <= run.produced < 301
    assert window.session.timeline_length == run.produced
    assert "Cancelled" in window.statusBar().currentMessage()


def test_closing_mid_run_stops_the_worker(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path / "settings.ini")
    window.generate()
    qtbot.waitUntil(
        lambda: window.session.active is not None and window.session.active.produced >= 2, timeout=LONG_WAIT_MS
    )
    job = window.sampling.job
    window.close()
    assert job.ended_event.is_set()  # the worker left the generator before the window closed


def test_export_animation_and_contact_sheet_write_the_chosen_frames(qtbot, window, tiny_checkpoints, tmp_path):
    assert window.files.add_checkpoint(tiny_checkpoints["class-ddpm"])
    window.sample_dock.classes.setText("0-3")
    window.sample_dock.steps.setValue(8)
    window.generate()
    wait_until_sampled(qtbot, window)
    trajectory = window.session.active.trajectory
    assert len(trajectory) == 9

    dialog = ExportDialog(trajectory, 10.0, ["x_t", "eps_hat"])
    assert dialog.options().panels == ["x_t", "eps_hat"] and dialog.options().end == 8
    options = ExportOptions(panels=["x_t", "eps_hat"], start=2, end=8, every=2, fps=5, scale=2)
    gif = tmp_path / "out" / "run.gif"
    gif.parent.mkdir()
    assert window.exports.export_animation_to(gif, options)
    qtbot.waitUntil(lambda: window.exports.job is None, timeout=LONG_WAIT_MS)
    expected_size = render_frame(trajectory, trajectory[2], ["x_t", "eps_hat"], scale=2).size
    with Image.open(gif) as image:
        assert image.n_frames == len(select_frames(9, 2, 2, 8)) == 4
        assert image.size == expected_size and image.info["loop"] == 0
    assert f"Wrote {gif}" in window.statusBar().currentMessage()

    options.format = "mp4"
    movie = tmp_path / "out" / "run.mp4"
    assert window.exports.export_animation_to(movie, options)
    qtbot.waitUntil(lambda: window.exports.job is None, timeout=LONG_WAIT_MS)
    with av.open(str(movie)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 4 + 4  # and the last frame held 1 s at 5 fps

    dialog.use_slide_preset()  # the export dialog's "For slides" button
    slides = dialog.options()
    assert (slides.format, slides.aspect, slides.width, slides.arrangement) == ("mp4", "16:9", 1920, "auto")
    talk = tmp_path / "out" / "talk.mp4"
    assert window.exports.export_animation_to(talk, slides)
    qtbot.waitUntil(lambda: window.exports.job is None, timeout=LONG_WAIT_MS)
    with av.open(str(talk)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (1920, 1080)

    sheet = tmp_path / "out" / "sheet.png"
    assert window.exports.export_contact_sheet_to(sheet, [0, 4, 8])
    with Image.open(sheet) as image:
        row = render_frame(trajectory, trajectory[0], ["x_t", "x0_hat", "eps_hat"], scale=2)
        assert image.size[0] == row.size[0] and image.size[1] > 3 * row.size[1]


def test_cancelled_export_writes_nothing(qtbot, window, marked_file, tmp_path):
    assert window.files.open_trajectory(marked_file(400))
    target = tmp_path / "big.gif"
    assert window.exports.export_animation_to(
        target, ExportOptions(panels=["x_t", "x0_hat", "eps_hat"], start=0, end=399, scale=8)
    )
    window.exports.progress_dialog.findChild(QPushButton).click()  # the dialog's Cancel button
    qtbot.waitUntil(lambda: window.exports.job is None, timeout=LONG_WAIT_MS)
    assert not target.exists() and list(tmp_path.glob("*.gif*")) == []
    assert "nothing was written" in window.statusBar().currentMessage()


def test_save_and_reopen_and_drop(qtbot, window, marked_file, tmp_path):
    assert window.files.open_trajectory(marked_file(12))
    saved = tmp_path / "saved.npz"
    assert window.files.save_trajectory_to(saved)
    assert len(load_trajectory(saved)) == 12
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(saved))])
    drop = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    window.dropEvent(drop)
    settle(qtbot)
    assert len(window.session.runs) == 2 and window.session.active.path == saved
    assert window.runs_list.count() == 2
    qtbot.keyClick(window, Qt.Key.Key_Delete)
    assert len(window.session.runs) == 1
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo brings it back
    assert len(window.session.runs) == 2 and window.session.active.path == saved


def test_bad_input_is_reported_and_changes_nothing(qtbot, window, marked_file, tmp_path):
    assert window.files.open_trajectory(marked_file(5))
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    assert not window.files.open_trajectory(corrupt)
    assert "corrupt.npz" in window.messages.last_error and "corrupt.npz" in window.statusBar().currentMessage()
    assert window.messages.error_box.isVisible() and "corrupt.npz" in window.messages.error_box.text()
    assert len(window.session.runs) == 1
    window.sample_dock.classes.setText("zero")
    window.generate()
    assert "digits" in window.messages.last_error and not window.sampling.busy
    assert not window.files.add_checkpoint(corrupt)
    assert window.sample_dock.model_key == "mnist-class-ddpm"


def test_keyboard_playback(qtbot, window, marked_file):
    assert window.files.open_trajectory(marked_file(30))
    qtbot.keyClick(window, Qt.Key.Key_Home)
    window.session.set_fps(60)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.session.playing
    qtbot.waitUntil(lambda: window.session.position >= 10, timeout=10_000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.session.playing
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.session.position == 29
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert window.session.position == 19
    settle(qtbot)
    # the panel shows frame 19: its fill value is 19/29
    pixel = displayed(window, "x_t")[2 + 20, 2 + 20, 0]
    assert pixel == round(19 / 29 * 255)


def test_runs_of_different_lengths_compare_on_one_timeline(qtbot, window, marked_file):
    window.files.open_trajectory(marked_file(11))
    window.files.open_trajectory(marked_file(51))
    settle(qtbot)
    for row in range(2):
        window.runs_list.item(row).setCheckState(Qt.CheckState.Checked)
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.compare_view
    window.session.seek(25)
    settle(qtbot)
    panels = [row[0] for row in window.compare_view.panels.values()]
    assert len(panels) == 2
    # halfway: frame 5 of the short run and frame 25 of the long one, both at value 0.5
    for panel in panels:
        assert panel.image_item.image[22, 22, 0] == round(0.5 * 255)
    headers = [header.text().replace("&nbsp;", " ") for header in window.compare_view.titles.values()]
    assert "step 5/10" in headers[0] and "step 25/50" in headers[1]


def test_sweep_compares_guidance_scales(qtbot, window, tiny_checkpoints):
    window.files.add_checkpoint(tiny_checkpoints["class-ddpm"])
    window.sample_dock.steps.setValue(4)
    window.sample_dock.sweep.setText("0, 7")
    window.sweep()
    qtbot.waitUntil(lambda: len(window.session.runs) == 2 and not window.sampling.busy, timeout=LONG_WAIT_MS)
    settle(qtbot)
    guidances = [run.trajectory.meta["params"]["guidance"] for run in window.session.compared]
    assert guidances == [0.0, 7.0]
    assert len(window.compare_view.panels) == 2 and window.tabs.currentWidget() is window.compare_view
    titles = [header.text() for header in window.compare_view.titles.values()]
    assert titles[0].startswith("<b><font>γ = 0</font></b>") and "<b><font>γ = 7</font></b>" in titles[1]  # first, bold


def test_x0_clipping_is_a_choice_for_ddpm_models_and_shows_in_the_equation(qtbot, window, tiny_checkpoints):
    panel = window.sample_dock
    window.files.add_checkpoint(tiny_checkpoints["class-flow"])
    assert not panel.form.isRowVisible(panel.x0_clip)  # flow steps have no x̂₀ to clip
    window.files.add_checkpoint(tiny_checkpoints["class-ddpm"])
    assert panel.form.isRowVisible(panel.x0_clip)
    panel.x0_clip.setCurrentIndex(panel.x0_clip.findData("static"))
    panel.steps.setValue(4)
    window.generate()
    wait_until_sampled(qtbot, window)
    assert window.session.active.trajectory.meta["params"]["x0_clip"] == "static"
    window.session.seek(1)
    settle(qtbot)
    text = window.step_view.equation.text
    assert "clip(x̂₀, 0, 1)" in text
    # the panel proves its numbers: evaluated on the shown images, they give the next x_t (this
    # DDPM step adds noise: what is left over, over z's coefficient, is N(0, 1))
    check = check_step(window.session.active.trajectory.frames, 1)
    assert check.line() in text and check.holds() and "z ~ N(0, 1)" in check.line()


def test_integer_zoom(qtbot, window, marked_file):
    window.files.open_trajectory(marked_file(3))
    settle(qtbot)
    panel = window.step_view.panels["x_t"]
    assert panel.factor >= 1
    for zoom in (3, 1):
        window.set_zoom(zoom)
        width, height = panel.view_box.viewPixelSize()
        assert panel.factor == zoom and width == pytest.approx(1 / zoom) and height == pytest.approx(1 / zoom)
    qtbot.keyClick(window, Qt.Key.Key_Plus)
    assert panel.factor == 2


def test_presentation_mode_hides_controls_until_the_mouse_moves(qtbot, window, marked_file):
    window.files.open_trajectory(marked_file(5))
    qtbot.keyClick(window, Qt.Key.Key_F5)
    assert window.presentation.active and window.isFullScreen()
    assert (
        not window.menuBar().isVisible() and not window.sample_dock.isVisible() and not window.tabs.tabBar().isVisible()
    )
    assert not window.if_dock.isVisible() and not window.runs_dock.isVisible()
    assert window.transport.isVisible()  # at first, then hidden once the mouse rests
    qtbot.waitUntil(lambda: not window.transport.isVisible(), timeout=10_000)
    move = QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(10, 10),
        QPointF(10, 10),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.presentation.eventFilter(window, move)
    assert window.transport.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_Right)  # still driven from the keyboard
    assert window.session.position == 1
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.presentation.active and window.menuBar().isVisible() and window.sample_dock.isVisible()


def test_settings_persist_across_launches(qtbot, tmp_path):
    settings_path = tmp_path / "settings.ini"
    first = make_window(qtbot, settings_path)
    first.session.set_fps(7)
    first.set_zoom(3)
    first.step_view.set_part_visible("noise", False)  # the menu entry follows the view
    assert not first.toggles["noise"].isChecked()
    first.settings.remember_folder(tmp_path / "somewhere" / "run.npz")
    first.close()
    second = make_window(qtbot, settings_path)
    assert second.session.fps == 7 and second.zoom == 3
    assert not second.toggles["noise"].isChecked() and not second.step_view.parts["noise"]
    assert second.settings.last_folder() == str(tmp_path / "somewhere")


def test_each_part_of_the_window_gets_back_what_it_keeps(qtbot, tmp_path):
    """The Step view's split and parts, the playback's loop and the Sample dock's model come back
    through their owners' settings() and restore(), read back from the INI file's strings."""
    settings_path = tmp_path / "settings.ini"
    first = make_window(qtbot, settings_path)
    models = [first.sample_dock.model.itemData(index) for index in range(first.sample_dock.model.count())]
    other = next(key for key in models if key != first.sample_dock.model_key)
    first.sample_dock.select_model(other)
    first.session.set_loop(False)
    first.step_view.set_part_visible(EQUATION, False)
    first.step_view.splitter.setSizes([300, 200])
    images, details = first.step_view.splitter.sizes()
    first.close()
    second = make_window(qtbot, settings_path)
    assert second.sample_dock.model_key == other and second.session.loop is False
    assert not second.step_view.parts[EQUATION] and not second.toggles[EQUATION].isChecked()
    assert second.step_view.parts["x_t"] and second.toggles["x_t"].isChecked()
    restored_images, restored_details = second.step_view.splitter.sizes()
    assert abs(restored_images / (restored_images + restored_details) - images / (images + details)) < 0.02


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_failing_worker_reports_and_the_app_keeps_running(qtbot, window, tiny_checkpoints):
    window.files.add_checkpoint(tiny_checkpoints["class-ddpm"])
    window.sample_dock.device.setCurrentText("cuda")
    window.generate()
    qtbot.waitUntil(lambda: not window.sampling.busy, timeout=LONG_WAIT_MS)
    assert "CUDA" in window.messages.last_error and window.messages.error_box.isVisible()
    assert window.session.runs == []
    window.sample_dock.device.setCurrentText("cpu")
    window.sample_dock.steps.setValue(3)
    window.generate()
    wait_until_sampled(qtbot, window)
    assert window.session.active.state == DONE


def test_denoising_test_digits_overlays_the_forward_marginal(qtbot, window, tiny_checkpoints, mnist_dir, monkeypatch):
    monkeypatch.setenv("DIFFUSION_STEPPER_DATA", str(mnist_dir))
    window.files.add_checkpoint(tiny_checkpoints["single-step"])
    window.sample_dock.noisy_test.setChecked(True)
    window.sample_dock.sigma.setValue(0.8)
    window.sample_dock.num.setValue(4)
    window.generate()
    wait_until_sampled(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_Home)
    settle(qtbot)
    run = window.session.active
    assert run.trajectory[0].t == pytest.approx(0.8) and run.trajectory.meta["params"]["source"] == "noised test digits"
    histogram = window.step_view.histogram
    assert histogram.x_t_theory.isVisible() and "forward marginal" in histogram.subtitle
    assert window.step_view.schedule.message.textItem.toPlainText().startswith("no schedule")


def test_cycles_are_collected_on_the_gui_thread_never_on_a_worker(qtbot, window):
    """A worker that allocates a lot would trigger Python's collector on its own thread, where
    freeing a widget hangs Qt; with the window open, collection happens on the GUI thread."""
    import threading

    freed_on = []

    class Cycle:
        def __init__(self):
            self.me = self

        def __del__(self):
            freed_on.append(threading.current_thread() is threading.main_thread())

    Cycle()
    worker = threading.Thread(target=lambda: [[[]] for _ in range(100_000)])  # crosses the thresholds many times
    worker.start()
    worker.join()
    assert freed_on == []
    young = [[] for _ in range(2000)]  # enough new objects that a collection is due
    qtbot.waitUntil(lambda: bool(freed_on), timeout=10_000)
    assert freed_on == [True] and young


def test_the_window_fits_the_screen_it_opens_on(qtbot, tmp_path):
    """A layout saved on a bigger monitor comes back inside a smaller screen, timeline included."""
    settings_path = tmp_path / "settings.ini"
    first = make_window(qtbot, settings_path)
    screen = first.screen().availableGeometry()
    assert first.width() <= screen.width() and first.height() <= screen.height()  # even the first launch
    first.showNormal()
    first.setGeometry(100, 100, screen.width() + 600, screen.height() + 400)  # as on a monitor larger than this one
    first.close()
    second = make_window(qtbot, settings_path)
    geometry = second.frameGeometry()
    assert screen.contains(geometry) or (geometry.width() <= screen.width() and geometry.height() <= screen.height())
    assert second.transport.mapTo(second, second.transport.rect().bottomRight()).y() <= screen.height()


def test_no_dock_asks_for_more_than_a_small_screens_share(window):
    """The docks share one column, as wide as the widest asks when the window opens: on a 1366 px
    projector no dock may take more than 40% of it from the pictures."""
    from PySide6.QtWidgets import QDockWidget

    asked = {dock.windowTitle(): dock.widget().sizeHint().width() for dock in window.findChildren(QDockWidget)}
    assert max(asked.values()) <= 0.4 * 1366, asked
