"""The DeepFloyd IF dock on the tiny IF model: runs appear in the viewer, strips in Compare."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_stepper.core.formats.trajectory_file import load_trajectory
from diffusion_stepper.visualizer.widgets.panels import render_grid
from tests.visualizer.conftest import displayed, settle, shown_columns, wait_until_sampled

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


@pytest.fixture
def window(shared_window):
    """One window for this module's tests, put back as it opened before each (conftest.reset_window)."""
    return shared_window


def configure(window, tiny_if, task: str, **fields):
    panel = window.if_dock
    panel.model_folder.setText(str(tiny_if.stage1_dir))
    panel.stage2_folder.setText(str(tiny_if.stage2_dir))
    panel.set_embeddings(tiny_if.embeddings_file)
    panel.device.setCurrentText("cpu")
    panel.allow_cpu.setChecked(True)
    panel.task.setCurrentIndex(panel.task.findData(task))
    panel.stride.setValue(fields.pop("stride", 200))
    for name, value in fields.items():
        widget = getattr(panel.images if name in ("image_path", "mask_path") else panel, name)
        if hasattr(widget, "setText"):
            widget.setText(str(value))
        else:
            widget.setCurrentText(str(value))
    return panel


def test_the_status_says_what_real_if_needs(window):
    text = window.if_dock.status.text()
    assert "DeepFloyd/IF-I-XL-v1.0" in text and "GB of disk" in text and "hf auth login" in text
    if not torch.cuda.is_available():
        assert "no GPU here" in text
    window.if_dock.model_size.setCurrentIndex(window.if_dock.model_size.findData("M"))
    assert "DeepFloyd/IF-I-M-v1.0" in window.if_dock.status.text()


def test_a_sample_run_steps_in_the_viewer(qtbot, window, tiny_if, tmp_path):
    panel = configure(window, tiny_if, "sample", prompt=tiny_if.prompts[1])
    assert panel.prompt.count() == len(tiny_if.prompts)  # the file's prompts are offered
    assert "folder stage1 (16 px" in panel.status.text()
    qtbot.keyClick(window, "r", modifier=qtbot_control())
    wait_until_sampled(qtbot, window)
    settle(qtbot)
    run = window.session.active
    assert run is not None and run.produced == 7  # 990, 790, 590, 390, 190, 0 and the clean end
    assert "IF stage I" in run.name
    assert "loaded: stage I (stage1," in panel.status.text() and "on cpu" in panel.status.text()
    window.session.last()
    settle(qtbot)
    final = run.trajectory.frames[-1]
    expected = render_grid(final.x_t, "x_t", (-1.0, 1.0), None, shown_columns(window))
    assert expected.shape[-1] == 3  # an RGB picture, not a greyscale digit
    assert np.array_equal(displayed(window, "x_t"), expected)
    assert "final sample" in window.step_view.equation.text
    window.session.first()
    settle(qtbot)
    assert "dynamic thresholding" in window.step_view.equation.text
    assert window.files.save_trajectory_to(tmp_path / "if.npz")
    assert load_trajectory(tmp_path / "if.npz").meta["prompts"] == [tiny_if.prompts[1]]


def test_an_sdedit_strip_is_compared_side_by_side(qtbot, window, tiny_if, tmp_path):
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(image)
    configure(window, tiny_if, "sdedit", image_path=image, i_start="1, 3")
    window.if_runs.run()
    qtbot.waitUntil(lambda: len(window.session.compared_ids) == 2 and not window.sampling.busy, timeout=120_000)
    lengths = sorted(window.session.run(run_id).produced for run_id in window.session.compared_ids)
    assert lengths == [4, 6]  # 7 timesteps from i_start 3 and 1
    assert window.tabs.currentIndex() == 1


def test_a_missing_mask_is_a_one_line_error_and_nothing_runs(qtbot, window, tiny_if, tmp_path):
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    configure(window, tiny_if, "inpaint", image_path=image, mask_path="")
    window.if_runs.run()
    qtbot.waitUntil(lambda: window.messages.last_error is not None, timeout=120_000)
    assert "needs a mask" in window.messages.last_error and "\n" not in window.messages.last_error
    assert not window.sampling.busy


def test_dropping_a_picture_makes_it_the_if_image(window, tmp_path):
    image = tmp_path / "campanile.jpg"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    window.open_dropped(str(image))
    assert window.if_dock.images.image_path.text() == str(image)


def qtbot_control():
    from PySide6.QtCore import Qt

    return Qt.KeyboardModifier.ControlModifier


def test_the_denoisers_experiment_compares_three_runs_with_psnr(qtbot, window, tiny_if, tmp_path):
    from diffusion_stepper.visualizer.views.common import run_caption

    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(image)
    configure(window, tiny_if, "sample", image_path=image)
    window.if_runs.run_experiment("denoisers")
    qtbot.waitUntil(
        lambda: len(window.session.compared_ids) == 3 and not window.sampling.busy and not window.sampling.pending,
        timeout=120_000,
    )
    runs = [window.session.run(run_id) for run_id in window.session.compared_ids]
    assert [run.trajectory.meta["params"]["task"] for run in runs] == ["blur", "one-step", "iterative"]
    assert all(run.trajectory.frames[0].t == 690 for run in runs)
    window.session.last()
    settle(qtbot)
    captions = [run_caption(window.session, run) for run in runs]
    assert all(" dB" in caption and "PSNR" in caption for caption in captions), captions
    headers = [window.compare_view.titles[run.id] for run in runs]  # each row's title, beside its pictures
    for caption, header in zip(captions, headers):
        psnr = next(part.strip() for part in caption.split(" · ") if part.strip().startswith("PSNR"))
        assert psnr in header.text().replace("&nbsp;", " ") and caption in header.toolTip()


def test_the_bundled_tower_and_its_mask_inpaint_out_of_the_box(qtbot, window, tiny_if):
    panel = configure(window, tiny_if, "inpaint")
    assert panel.images.image_path.text().endswith("tower.png") and panel.images.mask_path.text().endswith(
        "tower-mask.png"
    )
    window.if_runs.run()
    wait_until_sampled(qtbot, window)
    run = window.session.active
    assert run.state == "done", run.error
    final = run.trajectory.frames[-1]
    keep = final.extras["mask"] == 0
    assert torch.equal(final.x_t[keep], final.extras["x0"][keep])  # outside the mask: the tower itself


def test_the_extras_strip_shows_each_view_and_hides_on_7(qtbot, window, tiny_if):
    configure(window, tiny_if, "anagram", prompt=tiny_if.prompts[1], prompt2=tiny_if.prompts[2], views="identity, flip")
    window.if_runs.run()
    wait_until_sampled(qtbot, window)
    window.session.seek(3)
    settle(qtbot)
    run = window.session.active
    strip = window.step_view.extra_panels
    assert list(strip) == run.trajectory.extra_names()
    assert {"eps_view1", "eps_view2", "x0_view1", "x0_view2"} <= set(strip)
    frame = run.trajectory.frames[3]
    assert np.array_equal(
        strip["x0_view2"].image_item.image,
        render_grid(frame.extras["x0_view2"], "x0_view2", (-1.0, 1.0), None, strip["x0_view2"].columns),
    )
    assert strip["x0_view2"].title_label.text() == "view 2 x̂₀"
    assert window.step_view.extras_area.isVisible()
    qtbot.keyClick(window, "7")
    settle(qtbot)
    assert not window.step_view.extras_area.isVisible() and not window.step_view.extra_panels


def test_branching_continues_a_run_from_the_step_on_screen(qtbot, window, tiny_if):
    panel = configure(window, tiny_if, "sample", prompt=tiny_if.prompts[1])
    window.if_runs.run()
    wait_until_sampled(qtbot, window)
    source = window.session.active
    window.session.seek(2)
    settle(qtbot)
    panel.prompt.setCurrentText(tiny_if.prompts[2])
    panel.seed.setValue(9)
    qtbot.keyClick(window, "b", modifier=qtbot_control())
    qtbot.waitUntil(lambda: len(window.session.compared_ids) == 2 and not window.sampling.busy, timeout=120_000)
    branch = window.session.run(max(window.session.compared_ids))
    assert source.id in window.session.compared_ids and branch.id != source.id
    assert torch.equal(branch.trajectory.frames[0].x_t, source.trajectory.frames[2].x_t)
    assert branch.trajectory.meta["prompts"] == [tiny_if.prompts[2]] and branch.trajectory.meta["seed"] == 9
    assert branch.trajectory.meta["params"]["branched_from"]["step"] == 2
    window.session.last()
    settle(qtbot)
    qtbot.keyClick(window, "b", modifier=qtbot_control())  # the final image has nothing left to denoise
    assert "nothing left to denoise" in window.messages.last_error


@pytest.mark.parametrize(
    "key, tasks",
    [
        ("forward", ["forward"]),
        ("cfg", ["sample", "sample"]),
        ("sdedit", ["sdedit"] * 6),
        ("text-i2i", ["text-i2i"] * 6),
        ("hybrid", ["hybrid"]),
        ("inpaint", ["inpaint"]),
        ("anagram", ["anagram"]),
    ],
)
def test_each_part_a_experiment_in_one_click(qtbot, window, tiny_if, key, tasks):
    from diffusion_stepper.core.deepfloyd_if.experiments import PART_A_EXPERIMENTS

    configure(window, tiny_if, "sample", prompt=tiny_if.prompts[3], prompt2=tiny_if.prompts[4], stride=300)
    before = len(window.session.runs)
    window.if_runs.run_experiment(key)
    qtbot.waitUntil(
        lambda: (
            len(window.session.runs) == before + len(tasks) and not window.sampling.busy and not window.sampling.pending
        ),
        timeout=120_000,
    )
    runs = window.session.runs[before:]
    assert [run.trajectory.meta["params"]["task"] for run in runs] == tasks
    assert all(run.state == "done" for run in runs), [run.error for run in runs]
    if PART_A_EXPERIMENTS[key].compare and len(tasks) > 1:
        assert {run.id for run in runs} == set(window.session.compared_ids)
    if key == "cfg":
        assert (
            "guidance" not in runs[0].trajectory.meta["params"] and runs[1].trajectory.meta["params"]["guidance"] == 7.0
        )
        assert torch.equal(runs[0].trajectory.frames[0].x_t, runs[1].trajectory.frames[0].x_t)  # one seed, one start
    if key == "forward":
        assert [frame.t for frame in runs[0].trajectory.frames] == [250, 500, 750]
    if key == "sdedit":
        assert [run.trajectory.meta["params"]["i_start"] for run in runs] == [1, 3, 5, 7, 10, 20]


def test_inpainting_tints_the_masked_region_over_x_t(qtbot, window, tiny_if):
    configure(window, tiny_if, "inpaint")
    window.if_runs.run()
    wait_until_sampled(qtbot, window)
    window.session.seek(2)
    settle(qtbot)
    overlay = window.step_view.panels["x_t"].overlay_item
    assert overlay.isVisible()
    mask = window.session.active.trajectory.frames[2].extras["mask"][0, 0] > 0.5
    tinted = overlay.image[..., 3] > 0
    pad = (tinted.shape[0] - mask.shape[0]) // 2  # the grid's border around the one image
    assert np.array_equal(tinted[pad:-pad, pad:-pad], mask.numpy()) and mask.any() and not mask.all()
    configure(window, tiny_if, "sample")
    window.if_runs.run()
    wait_until_sampled(qtbot, window)
    settle(qtbot)
    assert not window.step_view.panels["x_t"].overlay_item.isVisible()


def test_an_anagram_seen_through_its_second_view_and_its_turn_exported(qtbot, window, tiny_if, tmp_path):
    configure(
        window, tiny_if, "anagram", prompt=tiny_if.prompts[1], prompt2=tiny_if.prompts[2], views="identity, rot180"
    )
    window.if_runs.run()
    wait_until_sampled(qtbot, window)
    window.session.last()
    settle(qtbot)
    final = window.session.active.trajectory.frames[-1].x_t
    qtbot.keyClick(window, "v")
    settle(qtbot)
    turned = torch.rot90(final, 2, dims=[2, 3])
    assert np.array_equal(
        displayed(window, "x_t"), render_grid(turned, "x_t", (-1.0, 1.0), None, shown_columns(window))
    )
    assert "seen through rot180" in window.step_view.panels["x_t"].title_label.text()
    assert window.exports.export_anagram_turn_to(tmp_path / "turn.gif")
    qtbot.waitUntil(lambda: window.exports.job is None, timeout=60_000)
    with Image.open(tmp_path / "turn.gif") as gif:
        assert gif.n_frames == 24
    window.toggles["second-view"].setChecked(False)  # (the export's progress dialog may hold the keyboard focus)
    settle(qtbot)
    assert np.array_equal(displayed(window, "x_t"), render_grid(final, "x_t", (-1.0, 1.0), None, shown_columns(window)))


def test_upscaling_the_result_is_a_second_stepped_run(qtbot, window, tiny_if, monkeypatch, tmp_path):
    monkeypatch.setattr("diffusion_stepper.core.paths.WORK_FOLDER", tmp_path)
    panel = configure(window, tiny_if, "sample", prompt=tiny_if.prompts[1])
    panel.steps.setValue(4)  # the scheduler's own four steps instead of the stride
    window.if_runs.run()
    wait_until_sampled(qtbot, window)
    stage_one = window.session.active
    assert stage_one.produced == 5 and stage_one.trajectory.meta["params"]["timesteps"] == [750, 500, 250, 0]
    qtbot.keyClick(window, "u", modifier=qtbot_control())
    qtbot.waitUntil(lambda: window.session.active is not stage_one and not window.sampling.busy, timeout=120_000)
    upscaled = window.session.active
    meta = upscaled.trajectory.meta
    assert meta["params"]["task"] == "upscale" and meta["params"]["stage"] == 2
    assert upscaled.trajectory.frames[-1].x_t.shape[-1] == 32 and upscaled.produced == 51  # stage II's 50 steps
    assert meta["prompts"] == [tiny_if.prompts[1]]
    low_res = upscaled.trajectory.frames[0].extras["low_res"]
    expected = torch.nn.functional.interpolate(
        stage_one.trajectory.frames[-1].x_t, (32, 32), mode="bilinear", align_corners=True
    )
    torch.testing.assert_close(low_res, expected)


@pytest.mark.parametrize("key", ["cfg", "anagram"])
def test_the_menu_and_the_command_line_make_the_same_runs(qtbot, window, tiny_if, tmp_path, key):
    """Experiments ▸ Part A and `diffusion-stepper experiment if` read one registry: the same
    settings give the same frames."""
    from diffusion_stepper.core import cli

    prompts = {"prompt": tiny_if.prompts[1], "prompt2": tiny_if.prompts[2]}
    configure(window, tiny_if, "sample", stride=250, **prompts)
    window.if_dock.seed.setValue(3)
    before = len(window.session.runs)
    window.if_runs.run_experiment(key)
    qtbot.waitUntil(lambda: not window.sampling.busy and len(window.session.runs) > before, timeout=120_000)
    in_app = [run.trajectory for run in window.session.runs[before:]]
    argv = [
        "experiment",
        "if",
        key,
        *tiny_if.stage1_flags,
        "--stride",
        "250",
        "--seed",
        "3",
        "--out-dir",
        str(tmp_path),
    ]
    assert cli.main([*argv, "--prompt", prompts["prompt"], "--prompt2", prompts["prompt2"]]) == 0
    written = sorted(tmp_path.glob("*.npz"))
    assert len(written) == len(in_app)
    for app_run, path in zip(in_app, written):
        file_run = load_trajectory(path)
        assert file_run.meta["params"] == app_run.meta["params"]
        assert file_run.meta["prompts"] == app_run.meta["prompts"]
        for app_frame, file_frame in zip(app_run.frames, file_run.frames, strict=True):
            assert torch.equal(app_frame.x_t, file_frame.x_t)
