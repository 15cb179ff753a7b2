"""Pictures that read from the back row: the real window on a laptop-projector screen (1366x768)
and a full-HD one, measured in a process of its own with the offscreen platform set to that
screen. The sizes are what the lecture needs: a 28 px digit at least 110 px tall in presentation
mode at 1366x768 and 144 px at 1920x1080 (84 px at the desk), a 64 px IF image at least 256 px."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from diffusion_stepper.core.formats.trajectory_file import save_trajectory
from diffusion_stepper.core.frames import Frame, Trajectory
from tests.visualizer.conftest import marked_trajectory

pytestmark = pytest.mark.slow  # the window measured in a process of its own per screen

ROOT = Path(__file__).resolve().parents[2]
SCREENS = ((1366, 768), (1920, 1080))


def with_cfg_extras(trajectory: Trajectory) -> Trajectory:
    """Give every frame CFG's two estimates, as the default Generate does (they fill the extras strip)."""
    for frame in trajectory.frames:
        frame.extras.update(eps_cond=frame.eps_hat * 0.9, eps_uncond=frame.eps_hat * 1.1)
    trajectory.meta["algorithm"] = "ddpm+cfg"
    return trajectory


def if_stage_one_run(num_frames: int = 4) -> Trajectory:
    """One 64 px colour image per frame, as an IF stage I run records it."""
    generator = torch.Generator().manual_seed(0)
    frames = []
    for index in range(num_frames):
        x_t = torch.rand(1, 3, 64, 64, generator=generator) * 2 - 1
        eps = torch.randn(1, 3, 64, 64, generator=generator)
        frames.append(
            Frame(
                index=index,
                t=float(990 - 30 * index),
                x_t=x_t,
                x0_hat=x_t.clamp(-1, 1),
                eps_hat=eps,
                coeffs={"t": float(990 - 30 * index)},
                extras={"eps_cond": eps, "eps_uncond": eps},
            )
        )
    meta = {
        "algorithm": "ddpm+cfg",
        "model": "IF stage I (tiny)",
        "checkpoint": "",
        "seed": 0,
        "params": {"task": "sample", "stage": 1},
        "value_range": [-1.0, 1.0],
    }
    return Trajectory(meta, frames, None)


def start_on_screen(folder: Path, width: int, height: int, arguments: list[str]) -> subprocess.Popen:
    """Start python with `arguments` in a process whose offscreen screen is width x height; its
    output goes to files in `folder` (not pipes, so processes started side by side never wait on
    each other). `finish` waits for it."""
    screen = folder / f"screen-{width}x{height}.json"
    screen.write_text(
        json.dumps(
            {
                "screens": [
                    {
                        "name": "projector",
                        "x": 0,
                        "y": 0,
                        "width": width,
                        "height": height,
                        "logicalDpi": 96,
                        "logicalBaseDpi": 96,
                        "dpr": 1,
                    }
                ]
            }
        )
    )
    environment = {**os.environ, "QT_QPA_PLATFORM": f"offscreen:configfile={screen}"}
    with (folder / f"{width}x{height}.out").open("w") as out, (folder / f"{width}x{height}.err").open("w") as err:
        process = subprocess.Popen([sys.executable, *arguments], cwd=ROOT, env=environment, stdout=out, stderr=err)
    process.output = folder / f"{width}x{height}"  # where its .out and .err are
    return process


def finish(process: subprocess.Popen, timeout_s: int = 300) -> subprocess.CompletedProcess:
    """Wait for a process `start_on_screen` started; it must succeed."""
    try:
        process.wait(timeout=timeout_s)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    out, err = (process.output.with_suffix(suffix).read_text() for suffix in (".out", ".err"))
    assert process.returncode == 0, err[-3000:]
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def json_lines(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict[int, list[dict]]:
    folder = tmp_path_factory.mktemp("big-pictures")
    runs = [
        save_trajectory(with_cfg_extras(marked_trajectory(6, num_images=10)), folder / "digits.npz"),
        save_trajectory(if_stage_one_run(), folder / "if.npz"),
    ]
    arguments = ["-m", "tests.visualizer.window_sizes", *map(str, runs)]
    started = {
        width: start_on_screen(folder, width, height, arguments) for width, height in ((1366, 768), (1920, 1080))
    }
    return {width: json_lines(finish(process)) for width, process in started.items()}  # side by side


def test_presentation_on_a_1366x768_projector(measured):
    digits, if_run = measured[1366]
    assert digits["screen"] == [1366, 768] and digits["fits_screen"]
    assert len(digits["presentation"]) == 3 and min(digits["presentation"]) >= 110  # x_t, x̂₀ and ε̂ of 10 digits
    assert min(if_run["presentation"]) >= 256
    assert min(digits["text_px"].values()) >= 18, digits["text_px"]


def test_presentation_and_the_desk_on_a_full_hd_screen(measured):
    digits, if_run = measured[1920]
    assert digits["fits_screen"] and min(digits["presentation"]) >= 144
    assert len(digits["desk"]) == 3 and min(digits["desk"]) >= 84  # with the docks, the equation and the plots
    assert min(digits["text_px"].values()) > min(measured[1366][0]["text_px"].values())  # text grows with the screen


def test_showing_the_controls_does_not_shrink_the_pictures(measured):
    for width in (1366, 1920):
        for run in measured[width]:
            assert run["controls_shown"] and run["presentation_with_controls"] == run["presentation"]
