import os

# Tests run without a display; this must be set before Qt starts.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from diffusion_stepper.core.formats.trajectory_file import save_trajectory  # noqa: E402
from diffusion_stepper.core.frames import Frame, Trajectory  # noqa: E402
from diffusion_stepper.visualizer.main_window import MainWindow  # noqa: E402


def marked_trajectory(num_frames: int, num_images: int = 4, algorithm: str = "ddpm") -> Trajectory:
    """A run whose frame k is filled with the value k / (num_frames - 1), so a displayed pixel
    tells which frame is on screen."""
    frames = []
    for index in range(num_frames):
        value = index / max(1, num_frames - 1)
        image = torch.full((num_images, 1, 28, 28), value)
        image[:, :, :4, :4] = 1.0 - value  # not a flat image: the value range is visible
        frames.append(
            Frame(
                index=index,
                t=float(num_frames - 1 - index),
                x_t=image,
                x0_hat=image * 0.5,
                eps_hat=torch.randn(num_images, 1, 28, 28, generator=torch.Generator().manual_seed(index)),
                coeffs={"t": float(num_frames - 1 - index)},
            )
        )
    meta = {
        "algorithm": algorithm,
        "model": f"marked-{num_frames}",
        "checkpoint": "",
        "seed": 0,
        "params": {"steps": num_frames - 1},
        "value_range": [0.0, 1.0],
    }
    return Trajectory(meta, frames, torch.arange(num_images))


@pytest.fixture
def marked_file(tmp_path):
    """Write a marked trajectory of `num_frames` frames; returns its path."""

    def write(num_frames: int, name: str | None = None) -> Path:
        return save_trajectory(marked_trajectory(num_frames), tmp_path / (name or f"marked-{num_frames}.npz"))

    return write


LONG_WAIT_MS = 120_000


def make_window(qtbot, settings_path: Path) -> MainWindow:
    window = MainWindow(QSettings(str(settings_path), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def window(qtbot, tmp_path):
    return make_window(qtbot, tmp_path / "settings.ini")


def action(window, text: str):
    """The window's action with this menu text (with its & mnemonic)."""
    return next(a for a in window.actions() if a.text() == text)


def settle(qtbot):
    """Let the views' coalesced refresh run."""
    qtbot.wait(30)


def wait_until_sampled(qtbot, window):
    qtbot.waitUntil(lambda: not window.sampling.busy, timeout=LONG_WAIT_MS)
    settle(qtbot)


def displayed(window, key: str) -> np.ndarray:
    return window.step_view.panels[key].image_item.image


def shown_columns(window, key: str = "x_t") -> int:
    """How many columns the Step view's panel lays its batch out in, as shown now."""
    return window.step_view.panels[key].columns
