"""The sampler lab end to end: samplers on real checkpoints, their equations, the NFE timeline,
the race and its x̂₀ plot, the judge, and quality against NFE."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_stepper.core.diffusion.equations import frame_caption, step_equation
from diffusion_stepper.core.diffusion.rules.catalogue import EPS_SAMPLERS, FLOW_SAMPLERS, evaluations_for_steps
from diffusion_stepper.core.diffusion.sampler_race import x0_convergence
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.exports.race_chart import write_convergence
from diffusion_stepper.core.formats.charts import Chart, Series, draw_chart
from diffusion_stepper.core.formats.palette import RUN_COLOURS as SERIES_COLOURS
from diffusion_stepper.core.formats.trajectory_file import load_trajectory, save_trajectory
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.mnist.experiments import EXPERIMENTS, ExperimentOptions
from diffusion_stepper.core.mnist.guidance_tradeoff import FAST_SAMPLERS
from diffusion_stepper.core.mnist.judge import Judge, load_judge
from diffusion_stepper.core.mnist.sampling import SampleRequest, start_sampling
from diffusion_stepper.core.run_meta import RunMeta
from diffusion_stepper.core.session import Session
from diffusion_stepper.core.timeline import ALIGN_NFE
from tests.core.test_cli import run as run_cli


def sampled(checkpoint, **settings) -> Trajectory:
    run = start_sampling(SampleRequest(str(checkpoint), device="cpu", **settings))
    return Trajectory(run.meta, list(run.frames), run.labels)


@pytest.mark.parametrize("name", list(EPS_SAMPLERS))
def test_every_eps_sampler_runs_a_ddpm_checkpoint_and_explains_each_step(tiny_checkpoints, tmp_path, name):
    run = sampled(tiny_checkpoints["class-ddpm"], sampler=name, steps=6, classes=[1, 2])
    assert run.meta["params"]["sampler"] == name
    assert len(run) == 7
    assert run[-1].coeffs["nfe"] == evaluations_for_steps(name, 6)
    # the trajectory file keeps the sampler, and every step's equation renders from its numbers
    loaded = load_trajectory(save_trajectory(run, tmp_path / f"{name}.npz"))
    assert loaded.meta["params"]["sampler"] == name
    for frame in loaded:
        lines = step_equation(loaded.run_meta, frame)
        assert lines and not lines[0].startswith("ddpm+cfg:")  # a real equation, not the raw fallback
        frame_caption(loaded.run_meta, frame, len(loaded))


def test_each_sampler_shows_its_own_update_with_this_steps_numbers(tiny_checkpoints):
    ddim = sampled(tiny_checkpoints["class-ddpm"], sampler="ddim", eta=0.5, steps=4, classes=[3])
    frame = ddim[1]
    a, a_next = frame.coeffs["alpha_bar_t"], frame.coeffs["alpha_bar_next"]
    sigma = 0.5 * math.sqrt((1 - a_next) / (1 - a) * (1 - a / a_next))
    text = "\n".join(step_equation(ddim.run_meta, frame))
    assert "√(1 − ᾱ_t′ − σ²)·ε̂" in text and "η = 0.5" in text
    assert f"{math.sqrt(a_next):.4f}·x̂₀ + {math.sqrt(1 - a_next - sigma**2):.4f}·ε̂ + {sigma:.4f}·z" in text

    dpm = sampled(tiny_checkpoints["class-ddpm"], sampler="dpm++2m", steps=4, classes=[3])
    first, second = "\n".join(step_equation(dpm.run_meta, dpm[0])), "\n".join(step_equation(dpm.run_meta, dpm[1]))
    assert "first order: no previous x̂₀ yet" in first
    assert "second order" in second and f"r = h_prev/h = {dpm[1].coeffs['r']:.4f}" in second
    assert "first order: onto clean data" in "\n".join(step_equation(dpm.run_meta, dpm[3]))

    heun = sampled(tiny_checkpoints["class-ddpm"], sampler="heun", steps=3, classes=[3])
    assert "(Heun: two evaluations)" in "\n".join(step_equation(heun.run_meta, heun[0]))
    assert "onto clean data: Euler" in "\n".join(step_equation(heun.run_meta, heun[2]))
    assert "NFE 2" in frame_caption(heun.run_meta, heun[1], len(heun))


@pytest.mark.parametrize("name", list(FLOW_SAMPLERS))
def test_every_flow_sampler_runs_a_flow_checkpoint(tiny_checkpoints, name):
    run = sampled(tiny_checkpoints["class-flow"], sampler=name, steps=4, classes=[5])
    assert run[-1].coeffs["nfe"] == evaluations_for_steps(name, 4, flow=True)
    text = "\n".join(step_equation(run.run_meta, run[0]))
    assert {"euler": "one Euler step", "heun": "(Heun: two evaluations)", "midpoint": "midpoint rule"}[name] in text


@pytest.mark.parametrize(
    "model, settings, message",
    [
        ("class-ddpm", {"sampler": "midpoint"}, "use one of ddpm, ddim, dpm++2m, dpm++2m-sde, euler, heun"),
        ("class-flow", {"sampler": "ddim"}, "use one of euler, heun, midpoint"),
        ("class-ddpm", {"sampler": "heun", "eta": 0.3}, "--eta is DDIM's noise scale"),
        ("class-ddpm", {"eta": 0.3}, "--eta is DDIM's noise scale"),  # the default sampler is DDPM's
        ("single-step", {"sampler": "euler"}, "has no sampler to choose"),
    ],
)
def test_an_unsuitable_sampler_is_one_clear_line(tiny_checkpoints, model, settings, message):
    with pytest.raises(UserFacingError, match=message.replace("+", r"\+")):
        start_sampling(SampleRequest(str(tiny_checkpoints[model]), device="cpu", **settings))


def test_sampler_flags_on_the_command_line(tiny_checkpoints, tmp_path, capsys):
    out = tmp_path / "ddim.npz"
    checkpoint = tiny_checkpoints["class-ddpm"]
    code, _, _ = run_cli(
        capsys,
        "sample",
        "mnist",
        "--checkpoint",
        checkpoint,
        "--sampler",
        "ddim",
        "--eta",
        1,
        "--steps",
        5,
        "--out",
        out,
    )
    assert code == 0 and load_trajectory(out).meta["params"]["eta"] == 1.0
    code, _, err = run_cli(capsys, "sample", "mnist", "--checkpoint", checkpoint, "--sampler", "midpoint", "--out", out)
    assert code == 1 and err.strip().endswith("use one of ddpm, ddim, dpm++2m, dpm++2m-sde, euler, heun")
    code, _, err = run_cli(capsys, "sample", "mnist", "--checkpoint", checkpoint, "--eta", 2, "--out", out)
    assert code == 2 and err.count("\n") == 1 and "--eta" in err


def test_ddim_at_eta_zero_repeats_itself_frame_for_frame(tiny_checkpoints):
    first, second = (sampled(tiny_checkpoints["class-ddpm"], sampler="ddim", eta=0.0, steps=5, seed=7) for _ in "ab")
    for a, b in zip(first, second):
        assert torch.equal(a.x_t, b.x_t) and torch.equal(a.x0_hat, b.x0_hat)


def test_the_race_starts_every_sampler_from_the_same_noise_at_equal_nfe(tiny_checkpoints):
    options = ExperimentOptions(device="cpu", seed=3, nfe=6, ddpm_checkpoint=str(tiny_checkpoints["class-ddpm"]))
    requests = EXPERIMENTS.requests("samplers", options)
    assert [request.sampler for request in requests] == list(EPS_SAMPLERS)
    runs = [Trajectory(run.meta, list(run.frames), run.labels) for run in (r.start() for r in requests)]
    for run in runs:
        assert torch.equal(run[0].x_t, runs[0][0].x_t)
        assert run[-1].coeffs["nfe"] <= 6
    assert [len(run) - 1 for run in runs] == [6, 6, 6, 6, 6, 3]  # Heun: 3 steps cost 5 evaluations


def test_the_timeline_lines_runs_up_by_model_evaluations():
    session = Session()
    heun = session.add_run({"algorithm": "flow", "params": {"sampler": "heun", "steps": 3}}, 4, None)
    euler = session.add_run({"algorithm": "flow", "params": {"sampler": "euler", "steps": 6}}, 7, None)
    session.set_compared(heun.id, True)
    session.set_compared(euler.id, True)
    session.set_active(heun.id)
    session.set_align(ALIGN_NFE)
    assert session.timeline_length == 7  # NFE 0..6, before any frame exists
    session.seek(3)
    assert session.frame_index(heun) == 1 and session.frame_index(euler) == 3  # Heun's step 1 holds NFE 2 and 3
    assert session.position_of(heun, 2) == 4


def test_x0_distance_curves_and_their_files(tiny_checkpoints, tmp_path):
    runs = [
        sampled(tiny_checkpoints["class-flow"], sampler=name, steps=4, classes=[0, 1]) for name in ("euler", "heun")
    ]
    curve = x0_convergence(runs[0])
    frame = runs[0][1]
    expected = float((frame.x0_hat - runs[0].final_sample).pow(2).flatten(1).mean(1).sqrt().mean())
    assert curve.distance[1] == pytest.approx(expected)
    assert curve.distance[-1] == 0.0 and curve.nfe == [0, 1, 2, 3, 4]
    csv_path, png_path = write_convergence(runs, tmp_path / "race-x0-distance.png")
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 5 + 5 and float(rows[1]["x0_distance_to_final"]) == pytest.approx(expected, rel=1e-5)
    assert {row["nfe"] for row in rows if row["run"].startswith("Heun")} == {"0", "2", "4", "6", "8"}
    with Image.open(png_path) as picture:
        colours = {tuple(pixel) for pixel in np.asarray(picture.convert("RGB")).reshape(-1, 3)[::7]}
    assert SERIES_COLOURS[0] in colours and SERIES_COLOURS[1] in colours  # one line per run


def test_a_chart_draws_its_lines_where_the_numbers_say():
    picture = draw_chart(Chart("t", "x", "y", [Series("a", [0, 1], [0, 1])], y_range=(0, 1)), 400, 300)
    pixels = np.asarray(picture)
    matches = np.argwhere((pixels == SERIES_COLOURS[0]).all(axis=2))
    # the line rises to the right: its leftmost pixels are lower on the picture than its rightmost
    left, right = matches[matches[:, 1].argmin()], matches[matches[:, 1].argmax()]
    assert left[0] > right[0]


@pytest.fixture(scope="module")
def judge(mnist_dir) -> Judge:
    """The bundled judge with the test set's features, computed once for the module's tests (the
    commands they run build their own)."""
    return Judge(data_dir=str(mnist_dir))


@pytest.mark.slow  # the judge reads all 10,000 test digits
def test_the_bundled_judge_reads_real_digits(mnist_dir, judge):
    from diffusion_stepper.core.mnist.data import load_mnist

    images, labels = load_mnist("test", mnist_dir).as_float()
    assert judge.score(images, labels).accuracy >= 0.99  # the README's figure: the whole test set
    some = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(1))[:1000]
    assert judge.score(images[some]).fd < 2 * judge.real_floor(1000)  # real digits sit near the floor
    noise = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert judge.score(noise).fd > 10 * judge.real_floor(200)


def test_a_foreign_judge_file_is_one_line(tmp_path):
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3)}, str(tmp_path / "judge.safetensors"))
    with pytest.raises(UserFacingError, match="not the judge's"):
        load_judge(tmp_path / "judge.safetensors")
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserFacingError, match="not a judge's safetensors file"):
        load_judge(tmp_path / "broken.safetensors")


@pytest.mark.slow  # the judge reads the 10,000 test digits, twice
def test_quality_against_nfe_writes_what_the_judge_says(tiny_checkpoints, tmp_path, capsys, mnist_dir, judge):
    checkpoint = tiny_checkpoints["class-flow"]
    code, stdout, _ = run_cli(
        capsys,
        "experiment",
        "mnist",
        "sampler-quality",
        "--checkpoint",
        checkpoint,
        "--budgets",
        "2,4",
        "--per-class",
        2,
        "--data-dir",
        mnist_dir,
        "--device",
        "cpu",
        "--out-dir",
        tmp_path,
    )
    assert code == 0 and "sampler-quality.png" in stdout
    rows = list(csv.DictReader((tmp_path / "sampler-quality.csv").open()))
    assert [(row["sampler"], row["nfe_budget"]) for row in rows] == [
        (name, budget) for name in FLOW_SAMPLERS for budget in ("2", "4")
    ]
    # recompute one point: the same request, read by the same judge
    row = rows[3]  # Heun at 4 evaluations: 2 steps
    run = sampled(checkpoint, sampler="heun", steps=int(row["steps"]), per_class=2)
    figures = judge.score(run.final_sample, run.labels)
    assert float(row["accuracy"]) == pytest.approx(figures.accuracy)
    assert float(row["fd"]) == pytest.approx(figures.fd, rel=1e-4)
    assert (tmp_path / "sampler-quality.png").stat().st_size > 0


def test_race_on_the_command_line_writes_runs_and_the_plot(tiny_checkpoints, tmp_path, capsys):
    code, stdout, _ = run_cli(
        capsys,
        "experiment",
        "mnist",
        "flow-samplers",
        "--checkpoint",
        tiny_checkpoints["class-flow"],
        "--nfe",
        4,
        "--device",
        "cpu",
        "--out-dir",
        tmp_path / "race",
    )
    assert code == 0
    names = sorted(path.name for path in (tmp_path / "race").iterdir())
    assert names == [
        "flow-samplers-euler.npz",
        "flow-samplers-heun.npz",
        "flow-samplers-midpoint.npz",
        "flow-samplers-x0-distance.csv",
        "flow-samplers-x0-distance.png",
    ]
    assert [
        load_trajectory(tmp_path / "race" / f"flow-samplers-{name}.npz").meta["params"]["sampler"]
        for name in ("euler", "heun", "midpoint")
    ] == [
        "euler",
        "heun",
        "midpoint",
    ]
    code, _, err = run_cli(capsys, "experiment", "mnist", "noising", "--checkpoint", "x", "--out-dir", tmp_path)
    assert code == 1 and "--checkpoint is for" in err


def test_if_race_on_the_tiny_model_replays_through_diffusers(tiny_if, tmp_path, capsys):
    """The race on an IF-architecture model; then each DDIM frame's own ε̂ fed to diffusers'
    DDIMScheduler (IF's config: thresholding, ε from the thresholded x̂₀) gives the next x_t."""
    from diffusers import DDIMScheduler

    out = tmp_path / "if-race"
    prompt = ["--prompt", tiny_if.prompts[1]]
    code, _, _ = run_cli(
        capsys, "experiment", "if", "samplers", *tiny_if.stage1_flags, *prompt, "--steps", 4, "--out-dir", out
    )
    assert code == 0
    runs = [load_trajectory(out / f"samplers-{name}.npz") for name in ("ddpm", "ddim-eta0", "dpm++2m")]
    assert [run.meta["params"]["sampler"] for run in runs] == ["ddpm", "ddim", "dpm++2m"]
    assert all(torch.equal(run[0].x_t, runs[0][0].x_t) for run in runs)  # the same starting noise
    assert (out / "samplers-x0-distance.png").is_file() and (out / "samplers-x0-distance.csv").is_file()

    ddim = runs[1]
    scheduler = DDIMScheduler.from_pretrained(tiny_if.stage1_dir, subfolder="scheduler")
    scheduler.set_timesteps(4)
    assert [int(t) for t in scheduler.timesteps] == ddim.meta["params"]["timesteps"]
    for index, t in enumerate(scheduler.timesteps):
        frame = ddim[index]
        expected = scheduler.step(frame.eps_hat, t, frame.x_t, eta=0.0, use_clipped_model_output=True).prev_sample
        assert float((ddim[index + 1].x_t - expected).abs().max()) < 1e-4

    code, _, err = run_cli(
        capsys, "sample", "if", *tiny_if.stage1_flags, *prompt, "--sampler", "heun", "--out", out / "x.npz"
    )
    assert code == 2 and "invalid choice: 'heun'" in err


@pytest.mark.parametrize("model", ["class-ddpm", "class-flow", "single-step"])
def test_every_sampler_name_on_every_kind_of_model_samples_or_refuses_in_one_line(
    tiny_checkpoints, tmp_path, capsys, model
):
    from diffusion_stepper.core.diffusion.rules.catalogue import ALL_SAMPLERS

    suits = {"class-ddpm": EPS_SAMPLERS, "class-flow": FLOW_SAMPLERS, "single-step": {}}[model]
    for name in ALL_SAMPLERS:
        out = tmp_path / f"{model}-{name}.npz"
        code, _, err = run_cli(
            capsys,
            "sample",
            "mnist",
            "--checkpoint",
            tiny_checkpoints[model],
            "--sampler",
            name,
            "--steps",
            2,
            "--out",
            out,
        )
        if name in suits:
            assert code == 0 and load_trajectory(out).meta["params"]["sampler"] == name
        else:
            assert code == 1 and err.count("\n") == 1 and "Traceback" not in err and not out.exists()


def test_diversity_is_the_mean_pairwise_distance_within_each_class():
    from diffusion_stepper.core.mnist.guidance_tradeoff import diversity_within_classes

    features = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [0.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1])
    # class 0: one pair at distance 5; class 1: pairs at 1, 3 and 2, mean 2
    assert diversity_within_classes(features, labels) == pytest.approx((5.0 + 2.0) / 2)


@pytest.mark.slow  # the judge reads the 10,000 test digits, twice
def test_guidance_tradeoff_writes_what_the_judge_says(tiny_checkpoints, tmp_path, capsys, mnist_dir, judge):
    from diffusion_stepper.core.mnist.guidance_tradeoff import TradeoffRequest, diversity_within_classes

    checkpoint = tiny_checkpoints["class-ddpm"]
    flags = ["--checkpoint", checkpoint, "--per-class", 3, "--data-dir", mnist_dir, "--device", "cpu"]
    code, stdout, _ = run_cli(
        capsys, "experiment", "mnist", "guidance-tradeoff", *flags, "--guidances", "0,3", "--out-dir", tmp_path / "g"
    )
    assert code == 0 and "guidance-tradeoff.png" in stdout
    rows = list(csv.DictReader((tmp_path / "g" / "guidance-tradeoff.csv").open()))
    assert [float(row["guidance"]) for row in rows] == [0.0, 3.0]
    sampler, steps = FAST_SAMPLERS["ddpm"]  # the fast default
    assert {(row["sampler"], row["steps"]) for row in rows} == {(sampler, str(steps))}
    # recompute the γ = 3 point from its own request and the same judge
    request = TradeoffRequest(str(checkpoint), per_class=3, device="cpu", data_dir=str(mnist_dir))
    run = start_sampling(request.sample_request(3.0, "ddpm"))
    final = list(run.frames)[-1].x_t
    figures = judge.score(final, run.labels)
    pictures = final.clamp(0, 1)  # diversity within each digit as the judge reads it
    diversity = diversity_within_classes(torch.from_numpy(judge.features(pictures)), judge.predictions(pictures))
    assert float(rows[1]["accuracy"]) == pytest.approx(figures.accuracy)
    assert float(rows[1]["fd"]) == pytest.approx(figures.fd, rel=1e-4)
    assert float(rows[1]["diversity"]) == pytest.approx(diversity, rel=1e-4)
    for bad in ("nan", "0,200", ""):
        code, _, err = run_cli(
            capsys, "experiment", "mnist", "guidance-tradeoff", "--guidances", bad, "--out-dir", tmp_path
        )
        assert code == 2 and err.count("\n") == 1
    code, _, err = run_cli(capsys, "experiment", "mnist", "noising", "--guidances", "1", "--out-dir", tmp_path)
    assert code == 1 and "--guidances is for guidance-tradeoff" in err


@pytest.mark.slow  # the judge reads the 10,000 test digits, twice
def test_inspect_judges_a_runs_digits_and_refuses_other_pictures(tiny_checkpoints, tmp_path, capsys, tiny_if):
    from diffusion_stepper.core.mnist.judge import describe_figures, judge_run

    out = tmp_path / "digits.npz"
    code, _, _ = run_cli(
        capsys, "sample", "mnist", "--checkpoint", tiny_checkpoints["class-flow"], "--steps", 2, "--out", out
    )
    code, stdout, _ = run_cli(capsys, "inspect", out, "--step", 0, "--judge")
    assert code == 0 and stdout.strip().splitlines()[-1] == describe_figures(judge_run(load_trajectory(out)))
    picture = tmp_path / "if.npz"
    code, _, _ = run_cli(
        capsys, "sample", "if", *tiny_if.stage1_flags, "--prompt", tiny_if.prompts[0], "--steps", 2, "--out", picture
    )
    code, _, err = run_cli(capsys, "inspect", picture, "--step", 0, "--judge")
    assert code == 1 and "the judge reads MNIST digits" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "name, flag, value",
    [
        ("sampler-quality", "--budgets", "0"),
        ("sampler-quality", "--budgets", "5,-1"),
        ("sampler-quality", "--budgets", "x"),
        ("sampler-quality", "--per-class", "0"),
        ("sampler-quality", "--guidance", "nan"),
        ("samplers", "--nfe", "0"),
        ("samplers", "--guidance", "-1"),
        ("guidance-tradeoff", "--guidances", "inf"),
        ("guidance-tradeoff", "--sampler", "rk4"),
        ("guidance-tradeoff", "--checkpoint", "no-such-model"),
        ("sampler-quality", "--checkpoint", "mnist-time-ddpm"),  # not class-conditioned
    ],
)
def test_bad_experiment_settings_are_one_line(tmp_path, capsys, name, flag, value):
    code, _, err = run_cli(capsys, "experiment", "mnist", name, flag, value, "--out-dir", tmp_path / "out")
    assert code in (1, 2) and err.count("\n") == 1 and "Traceback" not in err
    assert not any((tmp_path / "out").glob("*.csv"))


def test_euler_is_labelled_as_ddim_eta_zeros_step_only_beside_it():
    from diffusion_stepper.core.diffusion.sampler_race import note_same_updates

    def meta(sampler, eta=None, algorithm="ddpm"):
        params = {"sampler": sampler, **({"eta": eta} if eta is not None else {})}
        return RunMeta.of({"algorithm": algorithm, "params": params})

    race = [meta("ddim", 0.0), meta("euler"), meta("heun")]
    assert note_same_updates(["DDIM", "Euler", "Heun"], race) == ["DDIM", "Euler (= DDIM η=0)", "Heun"]
    assert note_same_updates(["DDIM", "Euler"], [meta("ddim", 1.0), meta("euler")]) == ["DDIM", "Euler"]
    assert note_same_updates(["Euler", "Heun"], [meta("euler", algorithm="flow"), meta("heun", algorithm="flow")]) == [
        "Euler",
        "Heun",
    ]
