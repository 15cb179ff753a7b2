"""The part B experiments: the sigma sweeps against their formulas, and every registry entry end to end."""

import os

import pytest
import torch

from diffusion_stepper.core import cli
from diffusion_stepper.core.diffusion.rules.catalogue import EPS_SAMPLERS
from diffusion_stepper.core.diffusion.sampling import NetworkPredictor
from diffusion_stepper.core.diffusion.theory import CLEAN_EXTRA, frame_histograms
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.formats.trajectory_file import load_trajectory
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint, training_runs
from diffusion_stepper.core.mnist.experiments import (
    COURSE_SIGMAS,
    EXPERIMENTS,
    GUIDANCE_SWEEP,
    ExperimentOptions,
    SigmaSweepRequest,
    one_test_digit_each,
    sigma_sweep_frames,
    spread_of_epochs,
)


def test_the_noising_process_scales_one_noise_draw(mnist_dir):
    clean, labels = one_test_digit_each(10, str(mnist_dir), torch.device("cpu"))
    assert labels.tolist() == list(range(10))
    frames = list(sigma_sweep_frames(clean, COURSE_SIGMAS, torch.Generator().manual_seed(3)))
    assert [frame.t for frame in frames] == list(COURSE_SIGMAS)
    noise = frames[0].eps_hat
    assert noise.std() == pytest.approx(1.0, abs=0.05)
    for frame, sigma in zip(frames, COURSE_SIGMAS):
        assert torch.allclose(frame.x_t, clean + sigma * noise, atol=1e-6)
        assert torch.equal(frame.x0_hat, clean) and torch.equal(frame.eps_hat, noise)
    assert torch.equal(frames[0].extras[CLEAN_EXTRA], clean)


def test_the_denoiser_sweep_applies_the_model_at_each_sigma(tiny_checkpoints, mnist_dir):
    checkpoint = load_checkpoint(tiny_checkpoints["single-step"])
    clean, _ = one_test_digit_each(4, str(mnist_dir), torch.device("cpu"))
    predictor = NetworkPredictor(checkpoint.model, checkpoint.objective)
    frames = list(sigma_sweep_frames(clean, (0.0, 0.5, 1.0), torch.Generator().manual_seed(0), predictor))
    for frame in frames:
        with torch.no_grad():
            expected = checkpoint.model(frame.x_t, None, None)
        assert torch.allclose(frame.x0_hat, expected, atol=1e-6)
        if frame.t > 0:
            assert torch.allclose(frame.eps_hat, (frame.x_t - expected) / frame.t, atol=1e-5)
        assert frame.coeffs["sigma"] == frame.t


def test_sweep_runs_have_a_theory_curve_and_a_note(tiny_checkpoints, mnist_dir):
    run = SigmaSweepRequest(None, data_dir=str(mnist_dir), device="cpu").start()
    trajectory = Trajectory(run.meta, list(run.frames), run.labels)
    histograms = frame_histograms(trajectory, trajectory[3])
    assert histograms.x_t_theory is not None and "1.000·x0 + 0.500·N(0, 1)" in histograms.x_t_note
    assert "noising process" in run.meta["note"]
    with pytest.raises(UserFacingError, match="not a single-step denoiser"):
        SigmaSweepRequest(str(tiny_checkpoints["class-ddpm"]), data_dir=str(mnist_dir), device="cpu").start()
    with pytest.raises(UserFacingError, match="sigmas"):
        SigmaSweepRequest(None, sigmas=(-1.0,), data_dir=str(mnist_dir), device="cpu").start()


def tiny_options(tiny_checkpoints, mnist_dir, **overrides):
    return ExperimentOptions(
        device="cpu",
        data_dir=str(mnist_dir),
        seed=5,
        single_step_checkpoint=str(tiny_checkpoints["single-step"]),
        pure_noise_checkpoint=str(tiny_checkpoints["single-step"]),
        ddpm_checkpoint=str(tiny_checkpoints["class-ddpm"]),
        flow_checkpoint=str(tiny_checkpoints["class-flow"]),
        **overrides,
    )


def test_every_experiment_starts_its_runs(tiny_checkpoints, mnist_dir):
    options = tiny_options(tiny_checkpoints, mnist_dir, run_dir=str(tiny_checkpoints["class-ddpm"].parent), epochs=[1])
    expected_runs = {
        "noising": 1,
        "out-of-distribution": 1,
        "pure-noise": 1,
        "guidance-sweep": 3,
        "ddpm-vs-flow": 2,
        "epochs": 1,
        "samplers": len(EPS_SAMPLERS),
        "flow-samplers": 3,
    }
    assert set(expected_runs) == set(EXPERIMENTS)
    for key, count in expected_runs.items():
        runs = [request.start() for request in EXPERIMENTS.requests(key, options)]
        assert len(runs) == count, key
        assert all(run.meta["seed"] == 5 for run in runs)
    sweep = [request.start() for request in EXPERIMENTS.requests("guidance-sweep", options)]
    assert [run.meta["params"]["guidance"] for run in sweep] == list(GUIDANCE_SWEEP)
    assert {run.meta["params"]["steps"] for run in sweep} == {20}  # the tiny model's own chain
    options.steps = 4
    assert all(run.num_frames == 5 for run in (r.start() for r in EXPERIMENTS.requests("ddpm-vs-flow", options)))
    pure = EXPERIMENTS.requests("pure-noise", options)[0].start()
    assert "average" in pure.meta["note"] and pure.meta["params"]["source"] == "pure noise"


def test_epoch_comparison_names_missing_epochs(tmp_path, tiny_checkpoints):
    options = ExperimentOptions(run_dir=str(tiny_checkpoints["class-ddpm"].parent), epochs=[1, 5])
    with pytest.raises(UserFacingError, match="no checkpoint for epoch 5; it has epochs 1$"):
        EXPERIMENTS.requests("epochs", options)
    with pytest.raises(UserFacingError, match="holds no finished epoch"):
        EXPERIMENTS.requests("epochs", ExperimentOptions(run_dir=str(tmp_path)))
    with pytest.raises(UserFacingError, match="no such folder"):
        EXPERIMENTS.requests("epochs", ExperimentOptions(run_dir=str(tmp_path / "nope")))
    with pytest.raises(UserFacingError, match="--run-dir"):
        EXPERIMENTS.requests("epochs", ExperimentOptions())
    with pytest.raises(UserFacingError, match="unknown experiment"):
        EXPERIMENTS.requests("nope", ExperimentOptions())


def test_without_epochs_the_comparison_takes_a_spread_of_those_saved(tiny_checkpoints):
    assert spread_of_epochs([1, 2, 3, 4, 5, 6, 7]) == [1, 3, 5, 7]
    assert spread_of_epochs([2, 9]) == [2, 9]
    assert spread_of_epochs(list(range(1, 21))) == [1, 7, 14, 20]
    run_dir = tiny_checkpoints["class-ddpm"].parent
    (request,) = EXPERIMENTS.requests("epochs", ExperimentOptions(run_dir=str(run_dir)))
    assert request.checkpoint == str(run_dir / "epoch-001.json")


def test_training_runs_lists_runs_with_a_finished_epoch_newest_first(tmp_path, tiny_checkpoints):
    (tmp_path / "empty-run").mkdir()
    folders = {name: sidecar.parent for name, sidecar in tiny_checkpoints.items()}
    for age, name in enumerate(["class-ddpm", "time-flow", "single-step", "time-ddpm", "class-flow"]):
        os.utime(tiny_checkpoints[name], (1_000_000 - age, 1_000_000 - age))  # class-ddpm saved last
    runs = training_runs(tmp_path)
    assert list(runs) == [
        folders[name] for name in ("class-ddpm", "time-flow", "single-step", "time-ddpm", "class-flow")
    ]
    assert runs[folders["class-ddpm"]] == {1: tiny_checkpoints["class-ddpm"]}
    assert list(training_runs(tmp_path, first=folders["class-flow"]))[:2] == [
        folders["class-flow"],
        folders["class-ddpm"],
    ]
    assert training_runs(tmp_path / "no-such-folder") == {}


def test_cli_writes_one_file_per_run(tmp_path, capsys, tiny_checkpoints, mnist_dir):
    code = cli.main(
        ["experiment", "mnist", "noising", "--data-dir", str(mnist_dir), "--device", "cpu", "--out-dir", str(tmp_path)]
    )
    assert code == 0
    trajectory = load_trajectory(tmp_path / "noising.npz")
    assert [frame.t for frame in trajectory] == list(COURSE_SIGMAS)
    assert trajectory.meta["algorithm"] == "noising" and "note" in trajectory.meta
    code = cli.main(
        [
            "experiment",
            "mnist",
            "epochs",
            "--run-dir",
            str(tiny_checkpoints["class-ddpm"].parent),
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out-dir",
            str(tmp_path),
        ]
    )
    assert code == 0 and (tmp_path / "epochs.npz").is_file()
    assert "class-ddpm/epoch-001" in capsys.readouterr().out
