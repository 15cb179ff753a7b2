"""The sampler lab's step rules against diffusers' schedulers, the formulas and each other.

Each exactness test feeds our rule (through `run_sampler`) and a diffusers scheduler the same
model outputs: the exact noise estimate of a known data distribution (`TwoLevelData`), a
nonlinear function of (x, t) that keeps x_t in the data's range like a trained model, so any
difference in x_t feeds back and grows. Both sides compute in float64 (our frames then store
float32): at IF's t = 999, √ᾱ_t is 5e-5, so x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t turns float32's
rounding of x_t into errors of 1e-3 in either implementation. Both walk the scheduler's own
timesteps (`set_timesteps(N)` with the spacing named in each test), then the clean end.
Two indexings are checked: IF's (diffusers' own t; the clean end is t = -1) and the course's
part B (t = diffusers' t + 1; the clean end is t = 0).
"""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_stepper.core.deepfloyd_if.tiny import if_scheduler_config
from diffusion_stepper.core.diffusion.rules.catalogue import (
    evaluations_for_steps,
    make_eps_step_rule,
    make_flow_step_rule,
    steps_for_budget,
)
from diffusion_stepper.core.diffusion.rules.eps import (
    DDIMStep,
    DPMSolverPP2MStep,
    EulerODEStep,
    HeunODEStep,
    SDEDPMSolverPP2MStep,
)
from diffusion_stepper.core.diffusion.rules.flow import EulerFlowStep, heun_flow_step, midpoint_flow_step
from diffusion_stepper.core.diffusion.rules.x0 import DynamicThreshold, StaticClip
from diffusion_stepper.core.diffusion.sampling import PlainEstimate, run_sampler
from diffusion_stepper.core.diffusion.schedules import DiscreteSchedule, LinearBetaSchedule

TOLERANCE = 1e-5
SHAPE = (2, 3, 8, 8)


def fake_eps(x: torch.Tensor, t: float) -> torch.Tensor:
    """A smooth, nonlinear stand-in for a trained ε-model."""
    return torch.tanh(1.3 * x + float(t) / 400.0) * 0.9 + 0.05 * x


class TwoLevelData:
    """The exact ε̂ = E[ε | x_t] for data whose pixels are each N(LOW, τ²) or N(HIGH, τ²) with
    equal odds: smooth and nonlinear in x_t, like a trained model. Called with diffusers' t."""

    LOW, HIGH, TAU = -0.8, 0.6, 0.2

    def __init__(self, alphas_cumprod: torch.Tensor):
        self.alpha_bars = alphas_cumprod.double()

    def __call__(self, x: torch.Tensor, t: float) -> torch.Tensor:
        alpha_bar = float(self.alpha_bars[int(round(float(t)))])
        signal, noise = math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)
        spread = alpha_bar * self.TAU**2 + noise**2  # the variance of x_t given either level
        log_odds = ((x - signal * self.LOW) ** 2 - (x - signal * self.HIGH) ** 2) / (2.0 * spread)
        weight = torch.sigmoid(log_odds)
        # E[x_t − √ᾱ·x0 | x_t, level] = (x_t − √ᾱ·μ)·(1 − ᾱτ²/spread) = (x_t − √ᾱ·μ)·σ²/spread
        residual = weight * (x - signal * self.HIGH) + (1.0 - weight) * (x - signal * self.LOW)
        return residual * noise / spread


class Indexing:
    """How our timesteps and schedule relate to diffusers' for one part of the course."""

    def __init__(self, name: str):
        self.name = name

    def config(self) -> dict:
        if self.name == "if":
            return if_scheduler_config(1)
        schedule = LinearBetaSchedule.create(300)
        return dict(
            num_train_timesteps=300,
            trained_betas=schedule.betas[1:].tolist(),
            prediction_type="epsilon",
            clip_sample=False,
        )

    def schedule(self, scheduler) -> DiscreteSchedule:
        alpha_bars = scheduler.alphas_cumprod.double()
        if self.name == "course":
            alpha_bars = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars])
        return DiscreteSchedule(alpha_bars)

    def ours(self, diffusers_timesteps) -> list[int]:
        shift, clean = (0, -1) if self.name == "if" else (1, 0)
        return [int(t) + shift for t in diffusers_timesteps] + [clean]

    def models(self, scheduler, channels: int = 3):
        """(ours, theirs): the same model, called with our t and with diffusers' t. With 6
        channels it answers as IF does: the noise estimate, then learned-variance values that the
        rules must ignore."""
        exact = TwoLevelData(scheduler.alphas_cumprod)

        def theirs(x: torch.Tensor, t: float) -> torch.Tensor:
            eps = exact(x, t)
            return eps if channels == 3 else torch.cat([eps, torch.full_like(eps, 0.3)], dim=1)

        shift = 0 if self.name == "if" else 1
        return (lambda x, t: theirs(x, float(t) - shift)), theirs


INDEXINGS = [Indexing("if"), Indexing("course")]


def ours_run(rule, timesteps, model, x_start, seed=0):
    estimate = PlainEstimate(lambda x, t, cond: model(x, t))
    return list(run_sampler(x_start, timesteps, estimate, rule, torch.Generator().manual_seed(seed)))


def start_noise(seed=1):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def in_float64(scheduler):
    """The scheduler's ᾱ and σ in float64 (diffusers keeps them in float32), the same values."""
    scheduler.alphas_cumprod = scheduler.alphas_cumprod.double()
    if hasattr(scheduler, "sigmas") and scheduler.timesteps is not None:
        alpha_bars = scheduler.alphas_cumprod[scheduler.timesteps.long()]
        scheduler.sigmas = torch.cat([((1 - alpha_bars) / alpha_bars).sqrt(), torch.zeros(1, dtype=torch.float64)])
    return scheduler


def assert_each_step_matches(frames, theirs: list[torch.Tensor]):
    assert len(theirs) == len(frames) - 1
    for index, expected in enumerate(theirs, 1):
        difference = float((frames[index].x_t - expected).abs().max())
        assert difference <= TOLERANCE, f"step {index}: max |Δ| = {difference:.2e}"


@pytest.mark.parametrize("indexing", INDEXINGS, ids=lambda i: i.name)
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("steps", [10, 25])
def test_ddim_matches_diffusers(indexing, eta, steps):
    """DDIMScheduler, "leading" spacing (t − T/N each step), ᾱ = 1 at the end (set_alpha_to_one).

    IF's dynamic thresholding is on in its config; diffusers then recomputes ε from the
    thresholded x̂₀ with use_clipped_model_output=True, which is what our rule always does."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(indexing.config(), set_alpha_to_one=True, timestep_spacing="leading")
    scheduler.set_timesteps(steps)
    in_float64(scheduler)
    timesteps = indexing.ours(scheduler.timesteps)
    x0_clip = DynamicThreshold(0.95, 1.5) if indexing.name == "if" else None
    ours, model = indexing.models(scheduler)  # 3 channels: DDIM draws its noise in the output's shape
    frames = ours_run(DDIMStep(indexing.schedule(scheduler), eta=eta, x0_clip=x0_clip), timesteps, ours, start_noise())

    generator = torch.Generator().manual_seed(0)
    sample, theirs = start_noise(), []
    for t in scheduler.timesteps:
        output = model(sample, float(t))
        sample = scheduler.step(
            output, t, sample, eta=eta, use_clipped_model_output=True, generator=generator
        ).prev_sample
        theirs.append(sample)
    assert_each_step_matches(frames, theirs)


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_ddim_beside_the_models_own_eps_matches_diffusers_default(eta):
    """DDIMPipeline steps with use_clipped_model_output off: the clipped x̂₀ beside the model's own
    ε̂ (`eps_from_clipped_x0=False`), here with the course's x̂₀ clip to [-1, 1]."""
    from diffusers import DDIMScheduler

    indexing = Indexing("course")
    scheduler = DDIMScheduler.from_config(indexing.config(), clip_sample=True, timestep_spacing="leading")
    scheduler.set_timesteps(10)
    in_float64(scheduler)
    rule = DDIMStep(indexing.schedule(scheduler), eta=eta, x0_clip=StaticClip(-1.0, 1.0), eps_from_clipped_x0=False)
    ours, model = indexing.models(scheduler)
    frames = ours_run(rule, indexing.ours(scheduler.timesteps), ours, start_noise())
    assert any(frame.x0_hat.abs().max() == 1.0 for frame in frames[:-1])  # the clip acted

    generator = torch.Generator().manual_seed(0)
    sample, theirs = start_noise(), []
    for t in scheduler.timesteps:
        sample = scheduler.step(model(sample, float(t)), t, sample, eta=eta, generator=generator).prev_sample
        theirs.append(sample)
    assert_each_step_matches(frames, theirs)


def dpm_solver_setup(indexing, algorithm: str, steps: int):
    """diffusers' DPMSolverMultistepScheduler (second order, midpoint, "linspace" spacing) in float64,
    our timesteps and x̂₀ rule for it, and the model as each side calls it (IF's with 6 channels)."""
    from diffusers import DPMSolverMultistepScheduler

    scheduler = DPMSolverMultistepScheduler.from_config(
        indexing.config(), algorithm_type=algorithm, solver_order=2, timestep_spacing="linspace"
    )
    scheduler.set_timesteps(steps)
    in_float64(scheduler)
    x0_clip = DynamicThreshold(0.95, 1.5) if indexing.name == "if" else None
    ours, model = indexing.models(scheduler, channels=6 if indexing.name == "if" else 3)
    return scheduler, indexing.ours(scheduler.timesteps), x0_clip, ours, model


@pytest.mark.parametrize("indexing", INDEXINGS, ids=lambda i: i.name)
@pytest.mark.parametrize("steps", [5, 10, 20])
def test_dpm_solver_pp_2m_matches_diffusers(indexing, steps):
    """DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint"),
    its default "linspace" spacing, σ = 0 at the end (first order there); IF's learned-variance
    channels dropped and x̂₀ thresholded, as diffusers does for IF."""
    scheduler, timesteps, x0_clip, ours, model = dpm_solver_setup(indexing, "dpmsolver++", steps)
    frames = ours_run(DPMSolverPP2MStep(indexing.schedule(scheduler), x0_clip), timesteps, ours, start_noise())

    sample, theirs = start_noise(), []
    for t in scheduler.timesteps:
        sample = scheduler.step(model(sample, float(t)), t, sample).prev_sample
        theirs.append(sample)
    assert_each_step_matches(frames, theirs)
    orders = [frame.coeffs.get("order") for frame in frames[:-1]]
    assert orders == [1.0] + [2.0] * (steps - 2) + [1.0]  # first order to start and onto clean data


@pytest.mark.parametrize("indexing", INDEXINGS, ids=lambda i: i.name)
@pytest.mark.parametrize("steps", [5, 20])
def test_dpm_solver_pp_2m_sde_matches_diffusers(indexing, steps):
    """DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++", midpoint), fed the noise our
    rule drew: the same generator's draws, in order, one per step."""
    scheduler, timesteps, x0_clip, ours, model = dpm_solver_setup(indexing, "sde-dpmsolver++", steps)
    frames = ours_run(
        SDEDPMSolverPP2MStep(indexing.schedule(scheduler), x0_clip), timesteps, ours, start_noise(), seed=7
    )

    noise = torch.Generator().manual_seed(7)
    sample, theirs = start_noise(), []
    for index, t in enumerate(scheduler.timesteps):
        last = index == len(scheduler.timesteps) - 1  # onto clean data: no noise, none drawn
        z = (
            torch.zeros(SHAPE, dtype=torch.float64)
            if last
            else torch.randn(SHAPE, generator=noise, dtype=torch.float64)
        )
        sample = scheduler.step(model(sample, float(t)), t, sample, variance_noise=z).prev_sample
        theirs.append(sample)
    assert_each_step_matches(frames, theirs)
    assert [frame.coeffs.get("order") for frame in frames[:-1]] == [1.0] + [2.0] * (steps - 2) + [1.0]
    # the step onto clean data adds none, and still records it (it is the SDE solver's step)
    assert all(frame.coeffs["coef_z"] > 0 for frame in frames[:-2]) and frames[-2].coeffs["coef_z"] == 0


def test_the_sde_solver_at_first_order_is_the_ddpm_posterior_step():
    """One first-order step of DPM-Solver++(2M) SDE is DDIM's at η = 1 (the posterior's variance
    β̃), noise and all, from the same generator."""
    schedule = LinearBetaSchedule.create(T=50)
    x, eps = start_noise(2), start_noise(3)
    sde = SDEDPMSolverPP2MStep(schedule)(x, 40, 30, eps, torch.Generator().manual_seed(5))
    ddim = DDIMStep(schedule, eta=1.0)(x, 40, 30, eps, torch.Generator().manual_seed(5))
    assert torch.allclose(sde.x_next, ddim.x_next, atol=1e-10)


def _sigma_space_run(scheduler, model_t) -> list[torch.Tensor]:
    """A diffusers σ-space scheduler (Euler, Heun) driven by `model_t(x, t)` on its scaled input;
    returns the sample after each *complete* step, back in the model's (VP) space."""
    sample = start_noise() * scheduler.sigmas[0].pow(2).add(1).sqrt()
    theirs = []
    for index, t in enumerate(scheduler.timesteps):
        model_input = scheduler.scale_model_input(sample, t)
        sample = scheduler.step(model_t(model_input, float(t)), t, sample).prev_sample
        last = index == len(scheduler.timesteps) - 1
        if getattr(scheduler, "state_in_first_order", True) or last:  # Heun: the corrector has run
            sigma = float(scheduler.sigmas[scheduler.step_index])
            theirs.append(sample / math.sqrt(sigma**2 + 1.0))
    return theirs


@pytest.mark.parametrize("indexing", INDEXINGS, ids=lambda i: i.name)
@pytest.mark.parametrize("steps", [10, 30])
def test_euler_on_the_ode_matches_diffusers(indexing, steps):
    """EulerDiscreteScheduler with "leading" spacing (integer timesteps, so σ needs no interpolation);
    diffusers works on x_σ = x_t·√(1 + σ²), we compare in the model's space x_t."""
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler.from_config(indexing.config(), timestep_spacing="leading")
    scheduler.set_timesteps(steps)
    in_float64(scheduler)
    timesteps = indexing.ours(scheduler.timesteps)
    ours, model = indexing.models(scheduler)
    frames = ours_run(EulerODEStep(indexing.schedule(scheduler)), timesteps, ours, start_noise())
    assert_each_step_matches(frames, _sigma_space_run(scheduler, model))


@pytest.mark.parametrize("indexing", INDEXINGS, ids=lambda i: i.name)
@pytest.mark.parametrize("steps", [5, 12])
def test_heun_on_the_ode_matches_diffusers(indexing, steps):
    """HeunDiscreteScheduler with "leading" spacing: two evaluations a step, Euler onto clean data.
    IF's config asks it to clip x̂₀ to [−1, 1] (clip_sample), and ours does the same."""
    from diffusers import HeunDiscreteScheduler

    scheduler = HeunDiscreteScheduler.from_config(indexing.config(), timestep_spacing="leading")
    scheduler.set_timesteps(steps)
    in_float64(scheduler)
    diffusers_levels = list(dict.fromkeys(int(t) for t in scheduler.timesteps))  # it repeats each level
    timesteps = indexing.ours(diffusers_levels)
    ours, model = indexing.models(scheduler)
    x0_clip = StaticClip(-1.0, 1.0) if indexing.name == "if" else None
    frames = ours_run(HeunODEStep(indexing.schedule(scheduler), x0_clip), timesteps, ours, start_noise())
    assert_each_step_matches(frames, _sigma_space_run(scheduler, model))
    assert frames[-1].coeffs["nfe"] == 2 * steps - 1 == evaluations_for_steps("heun", steps)


def test_euler_on_the_ode_is_ddim_at_eta_zero():
    """For an ε-model the probability-flow Euler step and DDIM η = 0 are the same update."""
    schedule = LinearBetaSchedule.create(300)
    timesteps = list(range(300, -1, -30))
    euler = ours_run(EulerODEStep(schedule), timesteps, fake_eps, start_noise())
    ddim = ours_run(DDIMStep(schedule, eta=0.0), timesteps, fake_eps, start_noise())
    for a, b in zip(euler, ddim):
        assert torch.allclose(a.x_t, b.x_t, atol=1e-5)


def test_ddim_at_eta_one_has_the_posterior_variance():
    """η = 1: σ² = β̃ = (1 − ᾱ_t′)/(1 − ᾱ_t)·β, the DDPM posterior's variance."""
    schedule = LinearBetaSchedule.create(300)
    frames = ours_run(DDIMStep(schedule, eta=1.0), [300, 200, 100, 0], fake_eps, start_noise())
    for frame in frames[:-1]:
        a, a_next = frame.coeffs["alpha_bar_t"], frame.coeffs["alpha_bar_next"]
        beta = 1 - a / a_next
        assert frame.coeffs["sigma"] ** 2 == pytest.approx((1 - a_next) / (1 - a) * beta, rel=1e-9)
    assert frames[-2].coeffs["sigma"] == 0.0  # no noise onto clean data


def test_ddim_eta_zero_is_deterministic_whatever_the_noise_seed():
    """The same x_T gives the same frames whatever generator the run holds; η > 0 does not."""
    schedule = LinearBetaSchedule.create(300)
    timesteps = list(range(300, -1, -50))
    runs = [ours_run(DDIMStep(schedule, eta=0.0), timesteps, fake_eps, start_noise(), seed=s) for s in (0, 1)]
    assert all(torch.equal(a.x_t, b.x_t) for a, b in zip(*runs))
    noisy = [ours_run(DDIMStep(schedule, eta=1.0), timesteps, fake_eps, start_noise(), seed=s) for s in (0, 1)]
    assert not torch.equal(noisy[0][-1].x_t, noisy[1][-1].x_t)


def test_multistep_history_is_reset_between_runs():
    """One DPM-Solver++ rule object used twice gives the same run twice (run_sampler resets it)."""
    schedule = LinearBetaSchedule.create(300)
    rule = DPMSolverPP2MStep(schedule)
    first = ours_run(rule, [300, 200, 100, 50, 0], fake_eps, start_noise())
    second = ours_run(rule, [300, 200, 100, 50, 0], fake_eps, start_noise())
    assert all(torch.equal(a.x_t, b.x_t) for a, b in zip(first, second))


def _flow_error(rule, steps: int) -> float:
    """The flow ODE dx/dt = v with v(x, t) = −x·(1 + t): exact x(1) = x(0)·exp(−1.5)."""
    x0 = torch.ones(1, 1, 1, 1)
    grid = [i / steps for i in range(steps + 1)]
    frames = ours_run(rule, grid, lambda x, t: -x * (1.0 + t), x0)
    return abs(float(frames[-1].x_t) - math.exp(-1.5))


@pytest.mark.parametrize("rule, order", [(EulerFlowStep, 1), (heun_flow_step, 2), (midpoint_flow_step, 2)])
def test_flow_rules_have_their_order_of_accuracy(rule, order):
    """Halving the step divides the error by 2^order."""
    ratio = _flow_error(rule(), 20) / _flow_error(rule(), 40)
    assert ratio == pytest.approx(2**order, rel=0.1)


def test_nfe_counts_each_evaluation_and_cfg_counts_once():
    calls = []

    def model(x, t, cond):
        calls.append(x.shape[0])
        return -x

    from diffusion_stepper.core.diffusion.sampling import ClassifierFreeGuidance

    cond = torch.ones(2, 3)
    estimate = ClassifierFreeGuidance(model, cond, torch.zeros_like(cond), 2.0)
    frames = list(
        run_sampler(torch.ones(2, 1, 2, 2), [0.0, 0.25, 0.5, 1.0], estimate, heun_flow_step(), torch.Generator())
    )
    assert [frame.coeffs["nfe"] for frame in frames] == [0, 2, 4, 6]
    assert calls == [4] * 6  # each evaluation is one batched pass of both conditions


def test_step_rules_by_name_and_budgets():
    schedule = LinearBetaSchedule.create(300)
    assert isinstance(make_eps_step_rule("dpm++2m", schedule), DPMSolverPP2MStep)
    assert make_eps_step_rule("ddim", schedule, eta=0.3).eta == 0.3
    assert isinstance(make_eps_step_rule("dpm++2m-sde", schedule), SDEDPMSolverPP2MStep)
    with pytest.raises(ValueError, match="use one of ddpm, ddim, dpm\\+\\+2m, dpm\\+\\+2m-sde, euler, heun"):
        make_eps_step_rule("midpoint", schedule)
    with pytest.raises(ValueError, match="use one of euler, heun, midpoint"):
        make_flow_step_rule("ddim")
    with pytest.raises(ValueError, match="η is DDIM's"):
        make_eps_step_rule("heun", schedule, eta=0.5)
    assert steps_for_budget("heun", 10) == 5 and evaluations_for_steps("heun", 5) == 9
    assert steps_for_budget("heun", 10, flow=True) == 5 and evaluations_for_steps("heun", 5, flow=True) == 10
    assert steps_for_budget("ddim", 10) == 10
