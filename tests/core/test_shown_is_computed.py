"""What the screen says matches what was computed (issue 29, items 1-9), beyond the update terms
themselves (tests/core/test_update_terms.py): the panel's proof line, the 2D arrows, the trade-off's
diversity, the labels of the density, the histogram note and the CFG gap, the SDE's last step, the
second evaluations."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import torch

from diffusion_stepper.core.diffusion.equations import step_equation
from diffusion_stepper.core.diffusion.labels import guidance_gap_curve, guidance_gap_label
from diffusion_stepper.core.diffusion.step_check import check_step
from diffusion_stepper.core.diffusion.theory import frame_histograms, marginal_coefficients
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.mnist.sampling import SampleRequest, start_sampling
from diffusion_stepper.core.toy2d.experiments import SourceSpec, forward_run
from diffusion_stepper.core.toy2d.render import ParticleViewOptions, view_title
from diffusion_stepper.core.toy2d.runs import Toy2DSettings, field_vectors, toy2d_run
from diffusion_stepper.core.updates import Term


def sampled(request) -> Trajectory:
    run = start_sampling(request)
    return Trajectory(meta=run.meta, frames=list(run.frames), labels=run.labels)


def points_run(objective: str = "ddpm", **settings) -> Trajectory:
    source = SourceSpec(dataset="8-gaussians", objective=objective).load()
    run = toy2d_run(source, Toy2DSettings(**{"count": 400, "seed": 0, **settings}))
    return Trajectory(meta=run.meta, frames=list(run.frames), labels=run.labels, data=run.data)


def test_the_panel_proves_each_step_and_a_wrong_number_would_show(tiny_checkpoints):
    """Item 1: the last line of the update rule checks its numbers against the next x_t; a clipped
    DDIM step (where the printed ε̂ used to be wrong) is exact, and a changed coefficient is caught."""
    request = SampleRequest(str(tiny_checkpoints["class-ddpm"]), per_class=1, sampler="ddim", steps=5, x0_clip="static")
    trajectory = sampled(request)
    frames = trajectory.frames
    lines = step_equation(trajectory.run_meta, frames[2], frames)
    numbers = lines.index(f"     {frames[2].update.numbers()}")  # the check sits right under the numbers
    assert lines[numbers + 1].strip().startswith("check: these numbers give the next x_t to within")
    assert check_step(frames, 2).holds()
    assert "from the clipped x̂₀" in " ".join(lines)  # the formula says which ε it uses
    update = frames[2].update
    wrong = dataclasses.replace(
        update, terms=(Term(update.terms[0].coef * 1.01, *dataclasses.astuple(update.terms[0])[1:]), *update.terms[1:])
    )
    frames[2].update = wrong
    assert not check_step(frames, 2).holds()
    assert "DO NOT give the next x_t" in "\n".join(step_equation(trajectory.run_meta, frames[2], frames))


def test_the_2d_velocity_arrows_point_where_the_particles_move():
    """Item 2: for a DDPM run (exact field, DDIM η = 0) the "velocity" at each particle points
    along its next step: median cosine ≥ 0.99 at every step (x̂₀ − ε̂ gave −1.00 early on)."""
    trajectory = points_run("ddpm", steps=50, sampler="ddim")
    frames = trajectory.frames
    for k in range(len(frames) - 1):
        a, b = marginal_coefficients(trajectory.run_meta, frames[k])
        arrows = field_vectors(
            "velocity", frames[k].x0_hat.reshape(-1, 2), frames[k].eps_hat.reshape(-1, 2), a, b, False
        )
        motion = (frames[k + 1].x_t - frames[k].x_t).reshape(-1, 2)
        cosine = torch.nn.functional.cosine_similarity(arrows.double(), motion.double(), dim=1)
        assert float(cosine.median()) >= 0.99, (k, float(cosine.median()))


def test_the_tradeoff_groups_diversity_by_the_digit_the_judge_reads(monkeypatch, tiny_checkpoints):
    """Item 3: below γ = 1 many samples are another digit; diversity is within the digit read."""
    from diffusion_stepper.core.mnist import guidance_tradeoff
    from diffusion_stepper.core.mnist.guidance_tradeoff import TradeoffRequest, diversity_within_classes

    read = {}

    class Judge:
        def features(self, images):
            return images.reshape(images.shape[0], -1)[:, :16].double().numpy()

        def predictions(self, images):
            read["labels"] = (images.reshape(images.shape[0], -1).sum(1) * 1000).long() % 3  # not the classes asked
            return read["labels"]

        def score(self, images, labels):
            return SimpleNamespace(count=images.shape[0], accuracy=0.5, fd=1.0, fd_real=0.5)

        def real_digits(self, per_class):
            return torch.rand(per_class * 10, 1, 28, 28), torch.arange(10).repeat_interleave(per_class)

    request = TradeoffRequest(str(tiny_checkpoints["class-ddpm"]), guidances=[0.0], per_class=6, steps=3)
    captured = {}
    real_sampling = guidance_tradeoff.start_sampling

    def sampling(sample_request):
        run = real_sampling(sample_request)
        frames = list(run.frames)
        captured["final"] = frames[-1].x_t.clamp(0, 1)
        run.frames = iter(frames)
        return run

    monkeypatch.setattr(guidance_tradeoff, "start_sampling", sampling)
    (row,) = list(guidance_tradeoff.tradeoff_points(request, Judge()))
    features = torch.from_numpy(Judge().features(captured["final"]))
    assert row.diversity == diversity_within_classes(features, read["labels"])


def test_a_class_conditioned_2d_run_says_whose_density_it_draws():
    """Item 4: the heat map of a CFG run is p_t of the class asked for, which guidance does not sample."""
    guided = points_run("ddpm", steps=5, label=2, guidance=0.0)
    title = view_title(guided, ParticleViewOptions())
    assert "p_t of class 2 (unguided)" in title
    assert "heat: p_t" in view_title(points_run("ddpm", steps=5), ParticleViewOptions())


def test_the_2d_forward_run_does_not_say_p_t_is_unknown():
    """Item 5: the histogram note of a 2D run whose p_t is drawn exactly says so."""
    source = SourceSpec(dataset="8-gaussians", objective="ddpm").load()
    run = forward_run(source, Toy2DSettings(count=200, seed=0, steps=4))
    trajectory = Trajectory(meta=run.meta, frames=list(run.frames), labels=run.labels, data=run.data)
    for frame in trajectory.frames[1:]:
        note = frame_histograms(trajectory, frame).x_t_note
        assert "no closed form" not in note and "known exactly" in note


def test_the_cfg_gap_is_named_for_what_the_model_predicts(tiny_checkpoints, tmp_path):
    """Item 6: |v_c − v_u| on flow runs (2D too), |ε_c − ε_u| on DDPM runs; the page draws the curve."""
    from diffusion_stepper.core.exports.html_page import _schedule

    flow = sampled(SampleRequest(str(tiny_checkpoints["class-flow"]), per_class=1, guidance=3.0, steps=4))
    ddpm = sampled(SampleRequest(str(tiny_checkpoints["class-ddpm"]), per_class=1, guidance=3.0, steps=4))
    assert guidance_gap_label(flow.run_meta) == "|v_c − v_u|" and guidance_gap_label(ddpm.run_meta) == "|ε_c − ε_u|"
    assert guidance_gap_label(points_run("flow", steps=4, label=1, guidance=2.0).run_meta) == "|v_c − v_u|"
    t, relative, peak = guidance_gap_curve(flow.frames)
    gaps = [frame.coeffs["guidance_gap"] for frame in flow.frames[:-1]]
    assert t == [frame.t for frame in flow.frames[:-1]] and relative == [gap / max(gaps) for gap in gaps]
    page = _schedule(flow)
    assert page["gap"]["label"].startswith("mean |v_c − v_u| ÷") and page["gap"]["x"] == t


def test_the_sde_solvers_last_step_says_it_is_the_sde_solver(tiny_checkpoints):
    """Item 7: the step onto clean data adds no noise, and is still DPM-Solver++(2M) SDE's."""
    trajectory = sampled(
        SampleRequest(str(tiny_checkpoints["class-ddpm"]), per_class=1, sampler="dpm++2m-sde", steps=4)
    )
    last_step = trajectory.frames[-2]
    text = " ".join(step_equation(trajectory.run_meta, last_step, trajectory.frames))
    assert "SDE" in text and "no noise" in text and last_step.coeffs["coef_z"] == 0


def test_heun_with_clipping_names_its_second_epsilon_for_what_it_is(tiny_checkpoints):
    """With x̂₀ clipped, Heun's second ε is the one the clipped x̂₀ at Euler's guess implies, not ε̂′."""
    request = SampleRequest(str(tiny_checkpoints["class-ddpm"]), per_class=1, sampler="heun", steps=3, x0_clip="static")
    trajectory = sampled(request)
    frame = trajectory.frames[0]
    text = "\n".join(step_equation(trajectory.run_meta, frame, trajectory.frames))
    assert "eps_2" in frame.extras and "eps_hat_2" not in frame.extras
    assert "·ε′" in frame.update.numbers() and "ε′ = the ε the clipped x̂₀ implies" in text and "ε̂′" not in text
    assert check_step(trajectory.frames, 0).holds()


def test_a_file_saved_before_updates_were_recorded_still_opens(tmp_path, capsys, tiny_checkpoints):
    import json

    from diffusion_stepper.core.formats.trajectory_file import load_trajectory, save_trajectory
    from tests.cli_running import run_cli

    trajectory = sampled(SampleRequest(str(tiny_checkpoints["class-ddpm"]), per_class=1, steps=3))
    path = save_trajectory(trajectory, tmp_path / "new.npz")
    members = dict(np.load(path))
    meta = json.loads(str(members["meta"]))
    del meta["updates"]
    members["meta"] = np.asarray(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **members)
    old = load_trajectory(tmp_path / "old.npz")
    assert old.frames[0].update is None
    assert "not its update as terms" in "\n".join(step_equation(old.run_meta, old.frames[0], old.frames))
    code, out, _ = run_cli(capsys, "inspect", tmp_path / "old.npz", "--json", "--step", "0")
    expected = {"step": 0, "t": old.frames[0].t, "update": None, "why": "this frame records no update"}
    assert code == 0 and json.loads(out)["frames"][0] == expected


def test_a_run_whose_frames_went_to_disk_comes_back_with_its_updates(tiny_checkpoints):
    from diffusion_stepper.core.session import DONE, Session

    trajectory = sampled(SampleRequest(str(tiny_checkpoints["class-ddpm"]), per_class=1, sampler="dpm++2m", steps=4))
    updates = [frame.update for frame in trajectory.frames]
    session = Session()
    session.off_screen_bytes = 0  # everything off screen goes to disk
    run = session.add_run(trajectory.meta, len(trajectory), trajectory.labels, frames=trajectory.frames, state=DONE)
    session.add_run(trajectory.meta, len(trajectory), trajectory.labels, frames=list(trajectory.frames), state=DONE)
    session.finish_run(run.id)  # a finished run off screen: spilled
    assert run.spilled is not None
    session.set_active(run.id)
    assert run.spilled is None and [frame.update for frame in run.trajectory.frames] == updates
    assert all(check_step(run.trajectory.frames, k).holds() for k in range(len(updates) - 1))
    session.close()


def test_a_wrong_update_in_a_file_is_named_in_one_line(tmp_path):
    import json

    import pytest

    from diffusion_stepper.core.errors import TrajectoryFileError
    from diffusion_stepper.core.formats.trajectory_file import load_trajectory, save_trajectory
    from diffusion_stepper.core.mnist.sampling import SampleRequest as Request

    trajectory = sampled(Request("mnist-class-flow", per_class=1, steps=2))
    path = save_trajectory(trajectory, tmp_path / "run.npz")
    members = dict(np.load(path))
    meta = json.loads(str(members["meta"]))
    meta["updates"][0]["terms"][1]["member"] = "extra_nothing"
    members["meta"] = np.asarray(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **members)
    with pytest.raises(TrajectoryFileError, match=r"meta.updates\[0\] names 'extra_nothing' of frame 0"):
        load_trajectory(tmp_path / "bad.npz")


def test_second_evaluations_are_stored_and_shown(tiny_checkpoints):
    """Item 8: Heun's ε̂′ / v̂′ and the midpoint rule's v̂_mid are frame extras the update uses."""
    for checkpoint, sampler, name in (
        ("class-ddpm", "heun", "eps_hat_2"),
        ("class-flow", "heun", "v_hat_2"),
        ("class-flow", "midpoint", "v_mid"),
    ):
        trajectory = sampled(SampleRequest(str(tiny_checkpoints[checkpoint]), per_class=1, sampler=sampler, steps=3))
        frame = trajectory.frames[0]
        assert name in frame.extras and any(term.member == name for term in frame.update.terms)
        assert np.isfinite(frame.extras[name].numpy()).all()
