"""Every step's printed update is the one computed (issue 29): `inspect --json` gives each step as
terms of the trajectory file's members, and the terms, evaluated here on the file's own arrays
with numpy, land on the next frame's x_t: within 1e-4 of max|x| for deterministic steps; for
noisy ones the residual over z's coefficient is standard normal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.cli_running import run_cli

EXACT = 1e-4


def check_file(path: Path, capsys) -> dict:
    """Evaluate every update `inspect --json` prints for `path`; the tallies."""
    code, out, err = run_cli(capsys, "inspect", path, "--json")
    assert code == 0, err
    frames = json.loads(out)["frames"]
    arrays = dict(np.load(path))
    tally = {"exact": 0, "noisy": 0, "none": 0}
    assert frames[-1]["update"] is None  # the last frame: no step left
    for record in frames[:-1]:
        update = record["update"]
        if update is None:
            tally["none"] += 1
            continue
        step = record["step"]
        assert update["result_frame"] == step + 1
        target = arrays["x_t"][step + 1].astype(np.float64)
        total = np.zeros_like(target)
        noise_scale = np.zeros_like(target)
        for term in update["terms"]:
            scale = arrays[term["scale"]][step].astype(np.float64) if "scale" in term else 1.0
            if term["member"] == "z":
                noise_scale = noise_scale + term["coef"] * scale
            else:
                total = total + term["coef"] * scale * arrays[term["member"]][term["frame"]].astype(np.float64)
        where = arrays[update["where"]][step] > 0.5 if "where" in update else np.ones(target.shape, bool)
        residual = (target - total)[where]
        noisy = np.abs(noise_scale[where]) > 0
        largest = max(np.abs(target[where]).max(), 1.0)
        assert np.abs(residual[~noisy]).max(initial=0.0) <= EXACT * largest, (step, update["formula"])
        if noisy.any():
            z = residual[noisy] / noise_scale[where][noisy]
            assert abs(z.mean()) < 0.15 and abs(z.std() - 1) < 0.15, (step, z.mean(), z.std(), update["formula"])
            tally["noisy"] += 1
        else:
            tally["exact"] += 1
    return tally


def how_many(model: str, images: int) -> list:
    """The flags that ask a tiny model for about `images` images."""
    return ["--per-class", max(1, images // 10)] if model.startswith("class") else ["--num", images]


EPS_SAMPLERS = [("ddpm", None), ("ddim", "0"), ("ddim", "1"), ("dpm++2m", None), ("dpm++2m-sde", None)]
EPS_SAMPLERS += [("euler", None), ("heun", None)]


@pytest.mark.parametrize("model", ["class-ddpm", "time-ddpm"])
@pytest.mark.parametrize("sampler, eta", EPS_SAMPLERS)
@pytest.mark.parametrize("clip", ["none", "static"])
def test_every_eps_sampler_step_is_its_printed_terms(tmp_path, capsys, tiny_checkpoints, model, sampler, eta, clip):
    out = tmp_path / "run.npz"
    argv = ["sample", "mnist", "--checkpoint", tiny_checkpoints[model], "--sampler", sampler, "--steps", 6]
    argv += ["--x0-clip", clip, "--seed", 3, "--out", out] + (["--eta", eta] if eta else [])
    argv += how_many(model, 40)
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    tally = check_file(out, capsys)
    assert tally["none"] == 0 and tally["exact"] + tally["noisy"] == 6, tally
    if sampler in ("euler", "heun", "dpm++2m") or eta == "0":
        assert tally["noisy"] == 0


@pytest.mark.parametrize("model", ["class-flow", "time-flow"])
@pytest.mark.parametrize("sampler", ["euler", "heun", "midpoint"])
def test_every_flow_sampler_step_is_its_printed_terms(tmp_path, capsys, tiny_checkpoints, model, sampler):
    out = tmp_path / "run.npz"
    argv = ["sample", "mnist", "--checkpoint", tiny_checkpoints[model], "--sampler", sampler, "--steps", 5]
    code, _, err = run_cli(capsys, *argv, *how_many(model, 10), "--out", out)
    assert code == 0, err
    assert check_file(out, capsys) == {"exact": 5, "noisy": 0, "none": 0}


def test_the_single_step_denoiser_is_its_printed_terms(tmp_path, capsys, tiny_checkpoints):
    out = tmp_path / "run.npz"
    code, _, err = run_cli(capsys, "sample", "mnist", "--checkpoint", tiny_checkpoints["single-step"], "--out", out)
    assert code == 0, err
    tally = check_file(out, capsys)
    assert tally["none"] == 0 and tally["exact"] >= 1


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm++2m", "dpm++2m-sde"])
def test_if_steps_with_dynamic_thresholding_are_their_printed_terms(tmp_path, capsys, tiny_if, sampler):
    out = tmp_path / "if.npz"
    argv = ["sample", "if", "--prompt", tiny_if.prompts[1], "--steps", 5, "--sampler", sampler, *tiny_if.stage1_flags]
    code, _, err = run_cli(capsys, *argv, "--num", 2, "--out", out)
    assert code == 0, err
    tally = check_file(out, capsys)
    assert tally["none"] == 0 and tally["exact"] + tally["noisy"] == 5, tally


def test_if_inpainting_holds_its_terms_where_the_mask_is_new(tmp_path, capsys, tiny_if):
    image, mask = tmp_path / "image.png", tmp_path / "mask.png"
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(image)
    square = np.zeros((64, 64), np.uint8)
    square[16:48, 16:48] = 255
    Image.fromarray(square).save(mask)
    out = tmp_path / "inpaint.npz"
    argv = ["sample", "if", "--task", "inpaint", "--image", image, "--mask", mask, "--prompt", tiny_if.prompts[1]]
    code, _, err = run_cli(capsys, *argv, "--steps", 5, *tiny_if.stage1_flags, "--out", out)
    assert code == 0, err
    code, printed, _ = run_cli(capsys, "inspect", out, "--json")
    assert all(f["update"]["where"] == "extra_mask" for f in json.loads(printed)["frames"][:-1])
    assert check_file(out, capsys)["none"] == 0


@pytest.mark.parametrize(
    "objective, sampler",
    [
        ("ddpm", "ddpm"),
        ("ddpm", "ddim"),
        ("ddpm", "dpm++2m"),
        ("ddpm", "heun"),
        ("flow", "euler"),
        ("flow", "heun"),
        ("flow", "midpoint"),
    ],
)
def test_2d_steps_are_their_printed_terms(tmp_path, capsys, objective, sampler):
    out = tmp_path / "points.npz"
    argv = ["sample", "toy2d", "--exact", "8-gaussians", "--objective", objective, "--sampler", sampler]
    code, _, err = run_cli(capsys, *argv, "--num", 500, "--steps", 6, "--out", out)
    assert code == 0, err
    tally = check_file(out, capsys)
    assert tally["none"] == 0 and tally["exact"] + tally["noisy"] == 6, tally


def test_thinned_frames_say_why_they_cannot_be_checked(tmp_path, capsys, tiny_checkpoints):
    out = tmp_path / "run.npz"
    argv = ["sample", "mnist", "--checkpoint", tiny_checkpoints["class-flow"], "--steps", 6, "--keep-every", 2]
    code, _, err = run_cli(capsys, *argv, *how_many("class-flow", 10), "--out", out)
    assert code == 0, err
    code, printed, _ = run_cli(capsys, "inspect", out, "--json", "--step", "0")
    (frame,) = json.loads(printed)["frames"]
    assert frame["update"] is None and "keep every" in frame["why"]
