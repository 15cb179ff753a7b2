import math

import pytest
import torch

from diffusion_stepper.core.diffusion.rules.eps import DDPMStep
from diffusion_stepper.core.diffusion.rules.flow import EulerFlowStep
from diffusion_stepper.core.diffusion.rules.single_step import SingleStepDenoise
from diffusion_stepper.core.diffusion.rules.x0 import StaticClip
from diffusion_stepper.core.diffusion.sampling import ClassifierFreeGuidance, PlainEstimate, run_sampler
from diffusion_stepper.core.diffusion.schedules import LinearBetaSchedule, evenly_spaced_timesteps, flow_time_grid
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint
from diffusion_stepper.core.mnist.sampling import sample_mnist
from diffusion_stepper.core.run_meta import RunMeta


def fake_eps(x, t, cond):
    """A deterministic stand-in for a UNet: eps depends on x and t."""
    return 0.1 * x + 0.01 * t


def test_ddpm_sampler_yields_exactly_algorithm_2():
    schedule = LinearBetaSchedule.create(T=4)
    timesteps = evenly_spaced_timesteps(4, 4)
    x_start = torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(1))
    frames = list(
        run_sampler(x_start, timesteps, PlainEstimate(fake_eps), DDPMStep(schedule), torch.Generator().manual_seed(7))
    )
    # Algorithm 2 of part B, written out independently, drawing z from the same generator.
    betas = [0.0] + [1e-4 + (0.02 - 1e-4) * i / 3 for i in range(4)]
    alpha_bars = [math.prod(1 - b for b in betas[: t + 1]) for t in range(5)]
    generator = torch.Generator().manual_seed(7)
    x = x_start.clone()
    assert len(frames) == 5  # steps + 1
    for frame, t in zip(frames, [4, 3, 2, 1]):
        eps = 0.1 * x + 0.01 * t
        x0_hat = (x - math.sqrt(1 - alpha_bars[t]) * eps) / math.sqrt(alpha_bars[t])
        expected_next = (
            math.sqrt(alpha_bars[t - 1]) * betas[t] / (1 - alpha_bars[t]) * x0_hat
            + math.sqrt(1 - betas[t]) * (1 - alpha_bars[t - 1]) / (1 - alpha_bars[t]) * x
        )
        if t > 1:
            expected_next = expected_next + math.sqrt(betas[t]) * torch.randn(x.shape, generator=generator)
        assert frame.t == t
        torch.testing.assert_close(frame.x_t, x)
        torch.testing.assert_close(frame.x0_hat, x0_hat)
        torch.testing.assert_close(frame.eps_hat, eps)
        assert frame.coeffs["beta_t"] == pytest.approx(betas[t])
        assert frame.coeffs["alpha_bar_t"] == pytest.approx(alpha_bars[t])
        assert frame.coeffs["sigma"] == pytest.approx(math.sqrt(betas[t]) if t > 1 else 0.0)
        x = expected_next
    final = frames[-1]
    assert final.index == 4 and final.t == 0
    torch.testing.assert_close(final.x_t, x)
    torch.testing.assert_close(final.x0_hat, final.x_t)
    assert torch.count_nonzero(final.eps_hat) == 0


def test_flow_sampler_takes_euler_steps():
    velocity = torch.tensor(0.5)
    x_start = torch.zeros(1, 1, 2, 2)
    frames = list(
        run_sampler(
            x_start,
            flow_time_grid(4),
            PlainEstimate(lambda x, t, c: velocity.expand_as(x)),
            EulerFlowStep(),
            torch.Generator(),
        )
    )
    assert [f.t for f in frames] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for frame in frames[:-1]:
        torch.testing.assert_close(frame.x_t, torch.full_like(x_start, 0.5 * frame.t))
        # The clean estimate follows the straight path to t = 1.
        torch.testing.assert_close(frame.x0_hat, torch.full_like(x_start, 0.5))
        assert frame.v_hat is not None and frame.eps_hat is None
    torch.testing.assert_close(frames[-1].x_t, torch.full_like(x_start, 0.5))


def test_single_step_denoiser_jumps_once():
    z = torch.full((1, 1, 2, 2), 0.9)
    frames = list(
        run_sampler(z, [0.5, 0.0], PlainEstimate(lambda x, t, c: x - 0.2), SingleStepDenoise(), torch.Generator())
    )
    assert len(frames) == 2
    torch.testing.assert_close(frames[0].x0_hat, torch.full_like(z, 0.7))
    torch.testing.assert_close(frames[0].eps_hat, torch.full_like(z, 0.4))  # (z - x0_hat) / sigma
    torch.testing.assert_close(frames[1].x_t, torch.full_like(z, 0.7))


class CountingPredictor:
    def __init__(self):
        self.batch_sizes = []

    def __call__(self, x, t, cond):
        self.batch_sizes.append(x.shape[0])
        # The output depends on the condition, so cond and uncond passes differ.
        return x * 0 + cond.sum(dim=1).view(-1, 1, 1, 1) + 0.3


@pytest.mark.parametrize("scale", [0.0, 1.0, 5.0])
def test_cfg_combines_one_batched_pass(scale):
    predictor = CountingPredictor()
    cond = torch.tensor([[2.0], [3.0]])
    uncond = torch.zeros_like(cond)
    estimate = ClassifierFreeGuidance(predictor, cond, uncond, scale)(torch.ones(2, 1, 2, 2), 10)
    assert predictor.batch_sizes == [4]  # one forward pass for both halves
    eps_cond = torch.tensor([2.3, 3.3]).view(-1, 1, 1, 1).expand(2, 1, 2, 2)
    eps_uncond = torch.full((2, 1, 2, 2), 0.3)
    torch.testing.assert_close(estimate.extras["eps_cond"], eps_cond)
    torch.testing.assert_close(estimate.extras["eps_uncond"], eps_uncond)
    torch.testing.assert_close(estimate.value, eps_uncond + scale * (eps_cond - eps_uncond))
    if scale == 1.0:
        torch.testing.assert_close(estimate.value, eps_cond)
    if scale == 0.0:
        torch.testing.assert_close(estimate.value, eps_uncond)
    assert estimate.coeffs["guidance"] == scale


def test_cfg_rejects_negative_scale():
    with pytest.raises(ValueError):
        ClassifierFreeGuidance(CountingPredictor(), torch.ones(1, 1), torch.zeros(1, 1), -1.0)


@pytest.mark.parametrize("kind", ["class-ddpm", "class-flow", "time-ddpm", "single-step"])
def test_same_seed_same_trajectory(tiny_checkpoints, kind):
    checkpoint = load_checkpoint(tiny_checkpoints[kind])

    def frames(seed):
        return list(sample_mnist(checkpoint, seed=seed, steps=None if kind == "single-step" else 6).frames)

    first, again, other = frames(3), frames(3), frames(4)
    assert len(first) == len(again)
    for a, b in zip(first, again):
        assert torch.equal(a.x_t, b.x_t) and torch.equal(a.x0_hat, b.x0_hat)
        assert a.coeffs == b.coeffs
    assert not torch.equal(first[0].x_t, other[0].x_t)


def test_class_run_carries_cfg_extras_and_labels(tiny_checkpoints):
    run = sample_mnist(
        load_checkpoint(tiny_checkpoints["class-flow"]), classes=[1, 7], per_class=2, steps=3, guidance=2.0
    )
    frames = list(run.frames)
    assert run.labels.tolist() == [1, 7, 1, 7]
    assert run.num_frames == len(frames) == 4
    assert frames[0].x_t.shape == (4, 1, 28, 28)
    assert set(frames[0].extras) == {"v_cond", "v_uncond", "v_gap"}
    extras = frames[0].extras
    assert torch.equal(extras["v_gap"], (extras["v_cond"] - extras["v_uncond"]).abs())  # where the class acts
    assert frames[0].coeffs["guidance_gap"] == pytest.approx(float(extras["v_gap"].mean()))
    assert frames[0].coeffs["guidance"] == 2.0
    assert run.meta["algorithm"] == "flow+cfg" and run.meta["value_range"] == [0.0, 1.0]


def test_clipping_x0_keeps_the_estimate_in_range_and_feeds_the_update():
    schedule = LinearBetaSchedule.create(T=4)
    x_t = 3.0 * torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(2))
    eps = torch.zeros_like(x_t)  # x0_hat = x_t / sqrt(abar): far outside [0, 1]
    plain = DDPMStep(schedule)(x_t, 4, 3, eps, torch.Generator().manual_seed(0))
    clipped = DDPMStep(schedule, x0_clip=StaticClip(0.0, 1.0))(x_t, 4, 3, eps, torch.Generator().manual_seed(0))
    torch.testing.assert_close(clipped.x0_hat, plain.x0_hat.clamp(0, 1))
    z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(0))
    expected = (
        clipped.coeffs["coef_x0"] * plain.x0_hat.clamp(0, 1)
        + clipped.coeffs["coef_xt"] * x_t
        + clipped.coeffs["sigma"] * z
    )
    torch.testing.assert_close(clipped.x_next, expected)
    assert (clipped.coeffs["x0_clip_low"], clipped.coeffs["x0_clip_high"]) == (0.0, 1.0)
    assert "x0_clip_low" not in plain.coeffs


def test_x0_clip_option_and_the_checkpoints_default(tiny_checkpoints, tmp_path):
    from diffusion_stepper.core.diffusion.equations import step_equation
    from diffusion_stepper.core.errors import UserFacingError
    from diffusion_stepper.core.mnist.checkpoints import write_bundled_copy

    checkpoint = load_checkpoint(tiny_checkpoints["class-ddpm"])
    frames = list(sample_mnist(checkpoint, classes=[1], steps=5, x0_clip="static").frames)
    assert all(f.x0_hat.min() >= 0.0 and f.x0_hat.max() <= 1.0 for f in frames[:-1])
    assert any("clip(x̂₀, 0, 1)" in line for line in step_equation(RunMeta.of({"algorithm": "ddpm+cfg"}), frames[0]))
    plain = list(sample_mnist(checkpoint, classes=[1], steps=5).frames)
    assert "x0_clip_low" not in plain[0].coeffs  # the course's formula unless asked
    write_bundled_copy(tiny_checkpoints["class-ddpm"], "mnist-class-ddpm", tmp_path, x0_clip="static")
    bundled = load_checkpoint(tmp_path / "mnist-class-ddpm.json")
    run = sample_mnist(bundled, classes=[1], steps=5)
    assert run.meta["params"]["x0_clip"] == "static" and "x0_clip_low" in next(iter(run.frames)).coeffs
    with pytest.raises(UserFacingError, match="DDPM step's option"):
        sample_mnist(load_checkpoint(tiny_checkpoints["class-flow"]), x0_clip="static")
