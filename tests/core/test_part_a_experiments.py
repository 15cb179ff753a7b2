"""The part A experiments headless: `diffusion-stepper experiment if NAME` on a tiny IF model writes
the runs of the course's figure, one trajectory file each, as the app's Part A menu makes them."""

from pathlib import Path

import pytest

from diffusion_stepper.core import cli
from diffusion_stepper.core.deepfloyd_if.experiments import PART_A_EXPERIMENTS
from diffusion_stepper.core.deepfloyd_if.tasks import IFRequest
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.formats.trajectory_file import load_trajectory
from diffusion_stepper.core.paths import sample_image

STRIP = [1, 3, 5, 7, 10, 20]


def run_experiment(capsys, tiny_if, out_dir: Path, name: str, *extra) -> tuple[str, list]:
    """Run `experiment if NAME` on the tiny model; its stdout, and the runs it wrote in order."""
    argv = ["experiment", "if", name, *tiny_if.stage1_flags, "--out-dir", out_dir, *extra]
    code = cli.main([str(item) for item in argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    number = {
        path: int(path.stem.rsplit("-", 1)[-1]) if path.stem != name else 0 for path in out_dir.glob(f"{name}*.npz")
    }
    return captured.out, [load_trajectory(path) for path in sorted(number, key=number.get)]


def params(trajectory) -> dict:
    return trajectory.meta["params"]


def test_forward_noises_the_bundled_tower_at_the_course_timesteps(tmp_path, capsys, tiny_if):
    stdout, (run,) = run_experiment(capsys, tiny_if, tmp_path, "forward")
    assert params(run)["task"] == "forward" and params(run)["t"] == [250, 500, 750]
    assert params(run)["image"] == str(sample_image("tower.png")) and len(run) == 3
    assert f"wrote {tmp_path / 'forward.npz'}" in stdout


def test_denoisers_compare_blur_one_step_and_iterative_from_one_noise_level(tmp_path, capsys, tiny_if):
    _, runs = run_experiment(capsys, tiny_if, tmp_path, "denoisers")
    assert [params(run)["task"] for run in runs] == ["blur", "one-step", "iterative"]
    assert params(runs[0])["t"] == params(runs[1])["t"] == [690]
    assert params(runs[2])["i_start"] == 10 and runs[2][0].t == 690  # the same noise level, then the stride-30 chain
    assert all("guidance" not in params(run) for run in runs)  # the course's denoisers run without CFG
    assert all("psnr_db" in run[-1].coeffs for run in runs)
    assert [path.name for path in sorted(tmp_path.iterdir())] == [
        "denoisers-1.npz",
        "denoisers-2.npz",
        "denoisers-3.npz",
    ]


def test_cfg_samples_one_seed_without_and_with_guidance(tmp_path, capsys, tiny_if):
    _, (without, with_cfg) = run_experiment(
        capsys, tiny_if, tmp_path, "cfg", "--guidance", 3, "--seed", 4, "--stride", 200
    )
    assert without.meta["algorithm"] == "ddpm" and "guidance" not in params(without)
    assert with_cfg.meta["algorithm"] == "ddpm+cfg" and params(with_cfg)["guidance"] == 3.0
    assert without.meta["seed"] == with_cfg.meta["seed"] == 4
    assert (without[0].x_t == with_cfg[0].x_t).all()  # the same start: only the guidance differs


@pytest.mark.parametrize("name", ["sdedit", "text-i2i"])
def test_strips_run_the_course_i_start_on_the_stride_30_chain(tmp_path, capsys, tiny_if, name):
    _, runs = run_experiment(capsys, tiny_if, tmp_path, name, "--prompt", tiny_if.prompts[3], "--stride", 200)
    assert [params(run)["i_start"] for run in runs] == STRIP  # the strip overrides the stride: the course's figure
    assert [len(run) for run in runs] == [34 - start + 1 for start in STRIP]  # 990 … 0 is 34 steps, then the clean end
    assert all(run.meta["prompts"] == [tiny_if.prompts[3]] and params(run)["task"] == name for run in runs)


def test_inpaint_keeps_the_tower_outside_its_bundled_mask(tmp_path, capsys, tiny_if):
    _, (run,) = run_experiment(capsys, tiny_if, tmp_path, "inpaint", "--stride", 250)
    assert params(run)["mask"] == str(sample_image("tower-mask.png"))
    assert {"mask", "x0"} <= set(run.extra_names())


def test_anagram_takes_one_prompt_per_view(tmp_path, capsys, tiny_if):
    _, (run,) = run_experiment(
        capsys,
        tiny_if,
        tmp_path,
        "anagram",
        "--prompt",
        tiny_if.prompts[1],
        "--prompt2",
        tiny_if.prompts[2],
        "--stride",
        250,
    )
    assert run.meta["algorithm"] == "ddpm+anagram" and params(run)["views"] == ["identity", "flip"]
    assert run.meta["prompts"] == tiny_if.prompts[1:3] and "x0_view2" in run.extra_names()


def test_hybrid_splits_two_prompts_by_frequency(tmp_path, capsys, tiny_if):
    _, (run,) = run_experiment(
        capsys,
        tiny_if,
        tmp_path,
        "hybrid",
        "--prompt",
        tiny_if.prompts[4],
        "--prompt2",
        tiny_if.prompts[1],
        "--stride",
        250,
    )
    assert run.meta["algorithm"] == "ddpm+hybrid" and run.meta["prompts"] == [tiny_if.prompts[4], tiny_if.prompts[1]]
    assert {"eps_low", "eps_high", "x0_afar"} <= set(run.extra_names())


def test_every_experiment_is_covered_above():
    assert set(PART_A_EXPERIMENTS) == {
        "forward",
        "denoisers",
        "cfg",
        "sdedit",
        "inpaint",
        "text-i2i",
        "anagram",
        "hybrid",
        "samplers",  # tests/core/test_sampler_lab.py
    }


@pytest.mark.parametrize("i_start", [None, [4]])
def test_the_experiments_compared_are_those_of_several_runs(i_start):
    """The app shows side by side the runs of an experiment that compares: always more than one."""
    settings = IFRequest(prompt=["a", "b"], image="i.png", mask="m.png", i_start=i_start)
    for key, experiment in PART_A_EXPERIMENTS.items():
        assert experiment.compare == (len(PART_A_EXPERIMENTS.requests(key, settings)) > 1), key


def test_for_task_keeps_only_what_the_task_reads():
    settings = IFRequest(prompt=["a", "b", "c"], image="i.png", mask="m.png", i_start=[3], t=[100], stride=50)
    sample = settings.for_task("sample")
    assert (sample.prompt, sample.image, sample.mask, sample.i_start, sample.t, sample.stride) == (
        ["a"],
        None,
        None,
        None,
        None,
        50,
    )
    assert settings.for_task("hybrid").prompt == ["a", "b"] and settings.for_task("anagram").prompt == ["a", "b", "c"]
    blur = settings.for_task("blur")
    assert (blur.image, blur.t, blur.stride, blur.i_start) == ("i.png", [100], None, None)
    assert settings.for_task("sdedit").i_start == [3] and settings.for_task("inpaint").mask == "m.png"
    assert settings.for_task("upscale").stride is None  # stage II runs its own default chain


def test_an_unknown_experiment_or_a_missing_second_prompt_is_one_line(tmp_path, capsys, tiny_if):
    with pytest.raises(UserFacingError, match="unknown part A experiment"):
        PART_A_EXPERIMENTS.requests("nope", IFRequest())
    code = cli.main(["experiment", "if", "hybrid", *tiny_if.stage1_flags, "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "two prompts" in err and err.count("\n") == 1 and list(tmp_path.iterdir()) == []
