"""The app gives each bad file the CLI's own one-line message, in its dialog, and keeps working."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from diffusion_stepper.core import cli
from tests.visualizer.test_if_panel import configure


@pytest.fixture
def window(shared_window):
    """One window for this module's tests, put back as it opened before each (conftest.reset_window)."""
    return shared_window


def cli_error(capsys, *argv) -> str:
    """The one line the CLI prints for these arguments, without its "diffusion-stepper: error: " prefix."""
    capsys.readouterr()
    assert cli.main([str(a) for a in argv]) == 1
    return capsys.readouterr().err.strip().removeprefix("diffusion-stepper: error: ")


def assert_shown(window, message: str, context: str = "") -> None:
    """`message` in the status bar and the dialog, after `context` (such as "Sampling failed: ")."""
    assert window.messages.last_error == context + message and "\n" not in message
    assert window.messages.error_box.isVisible() and window.messages.error_box.text() == context + message
    window.messages.error_box.close()


def bad_trajectories(folder, good) -> dict:
    with np.load(good) as archive:
        members = {key: archive[key] for key in archive.files}
    meta = json.loads(str(members["meta"]))

    def rewritten(name: str, **changes):
        path = folder / f"{name}.npz"
        with open(path, "wb") as handle:
            np.savez(handle, **{**members, **changes})
        return path

    flipped = bytearray(good.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    (folder / "flipped.npz").write_bytes(bytes(flipped))
    os.mkfifo(folder / "pipe.npz")
    return {
        "flipped": folder / "flipped.npz",
        "pipe": folder / "pipe.npz",
        "string-t": rewritten("string-t", t=np.asarray(["a"] * len(members["t"]))),
        "value-range": rewritten("value-range", meta=np.asarray(json.dumps({**meta, "value_range": "abc"}))),
        "alpha-bar": rewritten(
            "alpha-bar", meta=np.asarray(json.dumps({**meta, "coeffs": [{"alpha_bar_t": 1.5}] * len(members["t"])}))
        ),
    }


def test_each_bad_trajectory_shows_the_cli_message_and_the_app_goes_on(window, marked_file, tmp_path, capsys):
    good = marked_file(4)
    for kind, path in bad_trajectories(tmp_path, good).items():
        expected = cli_error(capsys, "inspect", path)
        assert not window.files.open_trajectory(path), kind
        assert_shown(window, expected)
    assert len(window.session.runs) == 0
    assert window.files.open_trajectory(good) and len(window.session.runs) == 1  # still working


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"objective": "ddpm"}, "sidecar.objective"),
        ({"weights": None}, "sidecar.weights"),
        ({"architecture": {"name": "class", "hidden": 3000}}, "sidecar.architecture.hidden"),
        ({"sampling": {"x0_clip": "sometimes"}}, "sidecar.sampling.x0_clip"),
    ],
)
def test_each_bad_checkpoint_shows_the_cli_message(window, tiny_checkpoints, tmp_path, capsys, change, fragment):
    sidecar = tiny_checkpoints["class-ddpm"]
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), **change}))
    expected = cli_error(capsys, "sample", "mnist", "--checkpoint", sidecar, "--out", tmp_path / "r.npz")
    assert fragment in expected
    before = window.sample_dock.model_key
    window.open_dropped(str(sidecar))
    assert_shown(window, expected)
    assert window.sample_dock.model_key == before


def test_a_truncated_if_image_or_mask_is_reported_before_the_model_loads(qtbot, window, tiny_if, tmp_path, capsys):
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(tmp_path / "mask.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "photo.png")
    for name in ("mask", "photo"):
        data = (tmp_path / f"{name}.png").read_bytes()
        (tmp_path / f"{name}-cut.png").write_bytes(data[: len(data) // 2])
    for image, mask in (("photo-cut", "mask"), ("photo", "mask-cut")):
        image_path, mask_path = tmp_path / f"{image}.png", tmp_path / f"{mask}.png"
        flags = ["--task", "inpaint", "--image", image_path, "--mask", mask_path, "--out", tmp_path / "r.npz"]
        expected = cli_error(capsys, "sample", "if", *tiny_if.stage1_flags, *flags)
        assert "damaged or truncated" in expected or "not an image" in expected
        window.messages.last_error = None
        configure(window, tiny_if, "inpaint", image_path=image_path, mask_path=mask_path)
        window.if_runs.run()
        qtbot.waitUntil(lambda: window.messages.last_error is not None, timeout=120_000)
        assert_shown(window, expected, context="Sampling failed: ")
        assert not window.sampling.busy
