"""The 2D lab end to end: checkpoints, runs with their fields, trajectory files, the drawn
distribution, each experiment, the particle picture and the CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_stepper.core.errors import CheckpointError, DataError, TrajectoryFileError, UserFacingError
from diffusion_stepper.core.exports.animation import write_animation
from diffusion_stepper.core.exports.render import render_frame
from diffusion_stepper.core.formats.trajectory_file import load_trajectory, save_trajectory
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.run_meta import PARTICLES
from diffusion_stepper.core.toy2d.checkpoints import load_toy2d_checkpoint, save_toy2d_checkpoint
from diffusion_stepper.core.toy2d.datasets import DATASETS, EIGHT_GAUSSIANS
from diffusion_stepper.core.toy2d.drawn import load_drawn, resolve_dataset, save_drawn
from diffusion_stepper.core.toy2d.experiments import (
    FEW_STEPS,
    GUIDANCE_SCALES,
    TOY2D_EXPERIMENTS,
    Toy2DExperimentOptions,
)
from diffusion_stepper.core.toy2d.render import (
    BACKGROUND,
    PARTICLE_COLOUR,
    ParticleViewOptions,
    PlaneMapper,
    render_particles,
)
from diffusion_stepper.core.toy2d.runs import (
    FIELD_GRID,
    Toy2DSettings,
    Toy2DSource,
    as_points,
    grid_image_to_points,
    grid_points,
    toy2d_run,
)
from diffusion_stepper.core.toy2d.training import Toy2DConfig, Toy2DTrained, make_objective, train_toy2d
from tests.cli_running import run_cli


def record(run) -> Trajectory:
    return Trajectory(run.meta, list(run.frames), run.labels, run.data)


def small_model(**changes) -> Toy2DTrained:
    config = Toy2DConfig(iterations=60, batch_size=128, hidden=32, depth=2, **changes)
    return [event for event in train_toy2d(config) if isinstance(event, Toy2DTrained)][0]


def test_a_checkpoint_round_trips_and_samples_the_same(tmp_path):
    trained = small_model(dataset="moons", objective="ddpm", classes=True)
    sidecar = save_toy2d_checkpoint(tmp_path, trained)
    loaded = load_toy2d_checkpoint(tmp_path)
    assert loaded.sidecar_path == sidecar and loaded.objective.name == "ddpm" and loaded.model.num_classes == 2
    x, t = torch.randn(5, 2), torch.full((5, 1), 0.3)
    assert torch.equal(loaded.model(x, t), trained.model(x, t))
    settings = Toy2DSettings(count=50, steps=5)
    first = record(toy2d_run(Toy2DSource.from_checkpoint(tmp_path), settings))
    second = record(toy2d_run(Toy2DSource.from_checkpoint(sidecar), settings))
    assert torch.equal(first[-1].x_t, second[-1].x_t)  # same seed, same frames


def test_bad_checkpoints_are_one_line(tmp_path):
    save_toy2d_checkpoint(tmp_path, small_model())
    sidecar = tmp_path / "toy2d.json"
    document = json.loads(sidecar.read_text())
    document["architecture"]["hidden"] = 64  # the weights are 32 wide
    sidecar.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="does not hold the point MLP"):
        load_toy2d_checkpoint(tmp_path)
    document["architecture"]["hidden"] = 32
    document["weights"] = "../elsewhere.safetensors"
    sidecar.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="weights"):
        load_toy2d_checkpoint(sidecar)
    sidecar.write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_toy2d_checkpoint(sidecar)
    with pytest.raises(CheckpointError, match="no such 2D checkpoint"):
        load_toy2d_checkpoint(tmp_path / "missing")


def test_a_run_carries_the_fields_density_and_data_and_survives_its_file(tmp_path):
    source = Toy2DSource.exact(DATASETS["8-gaussians"], make_objective("flow"))
    trajectory = record(toy2d_run(source, Toy2DSettings(count=300, steps=8)))
    assert trajectory.run_meta.kind == PARTICLES and len(trajectory) == 9
    frame = trajectory[4]
    assert frame.x_t.shape == (300, 2, 1, 1) and trajectory.data.shape == (2000, 2)
    assert frame.extras["exact_noise"].shape == (1, 2, FIELD_GRID, FIELD_GRID)
    assert "grid_noise" not in frame.extras  # the model is the exact field: stored once
    assert frame.extras["density"].shape[:2] == (1, 1)
    # the exact grid field is the mixture's own, at the grid's points
    grid, t = grid_points(FIELD_GRID), frame.t
    _, expected_noise = EIGHT_GAUSSIANS.posterior_means(grid.double(), t, 1 - t)
    assert torch.allclose(grid_image_to_points(frame.extras["exact_noise"]).double(), expected_noise, atol=1e-4)
    path = save_trajectory(trajectory, tmp_path / "run.npz")
    back = load_trajectory(path)
    assert torch.equal(back.data, trajectory.data) and torch.equal(
        back[4].extras["exact_x0_hat"], frame.extras["exact_x0_hat"]
    )
    assert np.load(path)["x_t"][-1].reshape(-1, 2).shape == (300, 2)  # the final points


def test_a_model_run_measures_its_field_error_against_the_exact_one():
    trained = small_model(dataset="8-gaussians", objective="flow")
    source = Toy2DSource.from_model(trained.model, trained.objective, trained.dataset, "tiny")
    trajectory = record(toy2d_run(source, Toy2DSettings(count=200, steps=4)))
    errors = [frame.coeffs["field_error"] for frame in trajectory.frames[:-1]]
    assert all(error > 0 for error in errors)  # a 60-iteration model is far from exact
    assert "grid_x0_hat" in trajectory[0].extras and "exact_x0_hat" in trajectory[0].extras


def test_a_2d_file_with_a_broken_grid_is_refused(tmp_path):
    source = Toy2DSource.exact(DATASETS["8-gaussians"], make_objective("ddpm"))
    trajectory = record(toy2d_run(source, Toy2DSettings(count=20, steps=3)))
    for frame in trajectory.frames:
        frame.extras["grid_noise"] = torch.zeros(1, 2, 5, 5)
    path = save_trajectory(trajectory, tmp_path / "bad.npz")
    with pytest.raises(TrajectoryFileError, match="grid"):
        load_trajectory(path)


def test_bad_run_settings_are_one_line():
    exact = Toy2DSource.exact(DATASETS["8-gaussians"], make_objective("ddpm"))
    for settings, message in (
        (Toy2DSettings(count=0), "particles"),
        (Toy2DSettings(steps=5000), "steps"),
        (Toy2DSettings(sampler="midpoint"), "does not suit"),
        (Toy2DSettings(label=9), "class must be"),
    ):
        with pytest.raises(UserFacingError, match=message):
            toy2d_run(exact, settings)
    with pytest.raises(UserFacingError, match="no exact field"):
        Toy2DSource.exact(DATASETS["moons"], make_objective("flow"))


def test_a_drawn_distribution_saves_loads_and_has_an_exact_field(tmp_path):
    points = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 1.0], [2.0, -1.5]])
    path = save_drawn(tmp_path / "smile.json", points)
    loaded, std = load_drawn(path)
    assert torch.allclose(loaded, points) and std > 0
    dataset = resolve_dataset(str(path))
    assert dataset.mixture is not None and dataset.name == "smile"
    trajectory = record(
        toy2d_run(Toy2DSource.exact(dataset, make_objective("flow")), Toy2DSettings(count=400, steps=20))
    )
    final = as_points(trajectory[-1].x_t)
    nearest = torch.cdist(final, points).min(dim=1).values
    assert float(nearest.median()) < 0.3  # the particles land on the drawn points
    (tmp_path / "foreign.json").write_text('{"points": 3}')
    with pytest.raises(DataError, match="not a drawn distribution"):
        load_drawn(tmp_path / "foreign.json")
    with pytest.raises(DataError, match="points"):
        save_drawn(tmp_path / "two.json", points[:2])
    assert load_drawn(path)[0].shape == (4, 2)  # the refused drawing left the good file alone


@pytest.mark.parametrize("key", list(TOY2D_EXPERIMENTS))
def test_each_experiment_runs_from_one_call(key):
    options = Toy2DExperimentOptions(count=150)
    runs = [record(request.start()) for request in TOY2D_EXPERIMENTS.requests(key, options)]
    assert runs and all(run.run_meta.kind == PARTICLES for run in runs)
    assert TOY2D_EXPERIMENTS[key].compare == (len(runs) > 1)  # the app compares the runs of those with several
    starts = [as_points(run[0].x_t) for run in runs]
    if key == "forward":
        (run,) = runs
        spread = [float(as_points(frame.x_t).std()) for frame in run.frames]
        assert run[0].t == 0 and spread[-1] < spread[0] * 1.2  # from the data (std ≈ 1.4) to N(0, I)
        assert torch.equal(as_points(run[0].x_t), as_points(run[0].x0_hat))
    elif key == "ode-vs-sde":
        sde, ode = runs
        assert torch.equal(starts[0], starts[1])  # the same noise
        assert sde.meta["params"]["sampler"] == "ddpm" and ode.meta["params"]["sampler"] == "ddim"
        # the ODE's path is smooth: its total length is shorter than the jittering SDE's
        length = [
            sum(float((as_points(a.x_t) - as_points(b.x_t)).norm(dim=1).mean()) for a, b in zip(r, r.frames[1:]))
            for r in runs
        ]
        assert length[1] < 0.6 * length[0]
    elif key == "same-budget":
        assert [run.meta["params"]["sampler"] for run in runs] == ["ddpm", "ddim", "euler"]
        assert all(len(run) == 11 for run in runs) and all(torch.equal(starts[0], s) for s in starts)
    elif key == "conditional-paths":
        conditional, marginal = runs
        assert torch.equal(starts[0], starts[1])
        # conditional paths are straight: the midpoint is the average of the ends
        middle = as_points(conditional[25].x_t)
        ends = (as_points(conditional[0].x_t) + as_points(conditional[-1].x_t)) / 2
        assert torch.allclose(middle, ends, atol=1e-5)
        # marginal paths are not (their midpoints leave the chord)
        chord = (as_points(marginal[0].x_t) + as_points(marginal[-1].x_t)) / 2
        assert float((as_points(marginal[25].x_t) - chord).norm(dim=1).mean()) > 0.1
    elif key == "guidance":
        assert [run.meta["params"]["guidance"] for run in runs] == list(GUIDANCE_SCALES)
        target = EIGHT_GAUSSIANS.means[0].float()
        near = [float(((as_points(run[-1].x_t) - target).norm(dim=1) < 0.8).float().mean()) for run in runs]
        assert near[0] < 0.3 and near[2] > 0.9  # γ = 0 ignores the class; γ = 3 sends nearly all to class 0
    elif key == "few-steps":
        assert [len(run) - 1 for run in runs] == list(FEW_STEPS)
        fresh, _ = EIGHT_GAUSSIANS.sample(150, torch.Generator().manual_seed(5))
        from diffusion_stepper.core.toy2d.metrics import energy_distance

        distances = [energy_distance(as_points(run[-1].x_t), fresh.float()) for run in runs]
        assert distances[0] > distances[-1]  # 2 Euler steps miss the data that 10 reach


def test_experiments_fall_back_to_the_exact_field_or_refuse_in_one_line(tmp_path):
    save_toy2d_checkpoint(tmp_path, small_model(objective="flow"))
    options = Toy2DExperimentOptions(checkpoint=str(tmp_path), count=50)
    ode_sde = TOY2D_EXPERIMENTS.requests("ode-vs-sde", options)  # a DDPM experiment: the exact DDPM field stands in
    assert all(request.source.checkpoint is None and request.source.objective == "ddpm" for request in ode_sde)
    with pytest.raises(UserFacingError, match="no classes"):
        TOY2D_EXPERIMENTS.requests("guidance", options)[0].start()
    with pytest.raises(UserFacingError, match="unknown 2D experiment"):
        TOY2D_EXPERIMENTS.requests("nope", options)


def test_the_picture_draws_particles_where_they_are():
    source = Toy2DSource.exact(DATASETS["8-gaussians"], make_objective("flow"))
    trajectory = record(toy2d_run(source, Toy2DSettings(count=100, steps=4)))
    bare = ParticleViewOptions(field="none", density=False, data=False, paths=False, size=200)
    picture = render_particles(trajectory, 2, bare)
    assert picture.shape == (200, 200, 3) and picture.dtype == np.uint8
    xs, ys = PlaneMapper(3.5, 200)(as_points(trajectory[2].x_t).numpy())
    inside = (xs >= 1) & (xs < 199) & (ys >= 1) & (ys < 199)
    for x, y in zip(xs[inside].astype(int), ys[inside].astype(int)):
        assert tuple(picture[y, x]) == tuple(PARTICLE_COLOUR)
    painted = (picture != BACKGROUND).any(axis=2)
    assert painted.sum() <= 4 * inside.sum() + 8  # nothing but the dots
    full = render_particles(trajectory, 2, ParticleViewOptions(size=200, source="both", x0_cloud=True))
    assert (full != BACKGROUND).any(axis=2).sum() > 3 * painted.sum()  # density, data, arrows and paths too
    with pytest.raises(ValueError, match="unknown field"):
        render_particles(trajectory, 0, ParticleViewOptions(field="curl"))


def test_cli_trains_samples_experiments_and_exports(tmp_path, capsys):
    code, out, err = run_cli(
        capsys,
        "train",
        "toy2d",
        "--dataset",
        "circles",
        "--classes",
        "--objective",
        "ddpm",
        "--iterations",
        30,
        "--out",
        tmp_path / "m",
    )
    assert code == 0 and "wrote" in out, err
    code, out, err = run_cli(
        capsys,
        "sample",
        "toy2d",
        "--checkpoint",
        tmp_path / "m",
        "--num",
        64,
        "--steps",
        6,
        "--class",
        1,
        "--guidance",
        2,
        "--out",
        tmp_path / "run.npz",
    )
    assert code == 0, err
    trajectory = load_trajectory(tmp_path / "run.npz")
    assert (
        len(trajectory) == 7 and trajectory.meta["params"]["guidance"] == 2 and trajectory.labels.tolist() == [1] * 64
    )
    code, out, err = run_cli(capsys, "export", tmp_path / "run.npz", "--gif", tmp_path / "run.gif", "--scale", 2)
    assert code == 0, err
    with Image.open(tmp_path / "run.gif") as gif:
        assert gif.n_frames == 7 and gif.width == 360
    code, out, err = run_cli(capsys, "experiment", "toy2d", "few-steps", "--num", 40, "--out-dir", tmp_path / "ex")
    assert code == 0 and sorted(p.name for p in (tmp_path / "ex").iterdir()) == [
        f"few-steps-{i}.npz" for i in (1, 2, 3)
    ]
    code, out, err = run_cli(capsys, "sample", "toy2d", "--exact", "moons", "--out", tmp_path / "x.npz")
    assert code == 1 and "no exact field" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(capsys, "train", "toy2d", "--dataset", "swiss-roll", "--classes", "--out", tmp_path / "y")
    assert code == 1 and "no classes" in err


def test_a_2d_export_fits_a_slide(tmp_path):
    from diffusion_stepper.core.exports.render import SLIDES

    source = Toy2DSource.exact(DATASETS["8-gaussians"], make_objective("ddpm"))
    trajectory = record(toy2d_run(source, Toy2DSettings(count=100, steps=3)))
    path = write_animation(trajectory, tmp_path / "slide.mp4", layout=SLIDES)
    assert path.stat().st_size > 0
    with Image.open(write_animation(trajectory, tmp_path / "slide.gif", layout=SLIDES)) as gif:
        assert gif.size == (1920, 1080)
    # the export draws what the layout's particle view asks for: arrows or none
    with_arrows = render_frame(trajectory, trajectory[1], ["x_t"], layout=SLIDES)
    bare = render_frame(
        trajectory, trajectory[1], ["x_t"], layout=replace(SLIDES, particle_view=ParticleViewOptions(field="none"))
    )
    assert with_arrows.size == bare.size and np.abs(np.asarray(with_arrows, int) - np.asarray(bare, int)).sum() > 0
