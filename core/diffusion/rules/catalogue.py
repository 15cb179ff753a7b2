"""The samplers by name: what the CLI, the docks and the race call each, what a step costs in
model evaluations, and the one place that turns a sampler's name into its step rule."""

from __future__ import annotations

from dataclasses import dataclass

from diffusion_stepper.core.diffusion.rules.eps import (
    DDIMStep,
    DDPMStep,
    DPMSolverPP2MStep,
    EulerODEStep,
    HeunODEStep,
    SDEDPMSolverPP2MStep,
)
from diffusion_stepper.core.diffusion.rules.flow import EulerFlowStep, heun_flow_step, midpoint_flow_step
from diffusion_stepper.core.diffusion.rules.x0 import FixedVariance, LearnedRangeVariance, PosteriorVariance, X0Clip
from diffusion_stepper.core.diffusion.sampling import StepRule
from diffusion_stepper.core.diffusion.schedules import DiscreteSchedule
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.limits import ETA, out_of_range


@dataclass(frozen=True)
class Sampler:
    """A sampler as the CLI, the docks and the race name it."""

    name: str  # the CLI's word
    title: str  # how the app labels it
    evaluations_per_step: int  # model evaluations (NFE) a step costs; the last ε-Heun step costs one
    summary: str


EPS_SAMPLERS = {
    sampler.name: sampler
    for sampler in (
        Sampler("ddpm", "DDPM", 1, "the posterior step of the DDPM paper: adds fresh noise each step"),
        Sampler("ddim", "DDIM", 1, "η = 0 deterministic; η = 1 adds the DDPM posterior's noise"),
        Sampler("dpm++2m", "DPM-Solver++(2M)", 1, "second order from the previous step's x̂₀, one evaluation per step"),
        Sampler(
            "dpm++2m-sde",
            "DPM-Solver++(2M) SDE",
            1,
            "DPM-Solver++(2M) with fresh noise each step, as DDPM adds: second order, and it forgives a start "
            "that is not quite the noise the model was trained to reach",
        ),
        Sampler("euler", "Euler (ODE)", 1, "one Euler step of the probability-flow ODE (DDIM η = 0's update)"),
        Sampler("heun", "Heun (ODE)", 2, "Euler, then a corrector at the next level: two evaluations per step"),
    )
}

FLOW_SAMPLERS = {
    sampler.name: sampler
    for sampler in (
        Sampler("euler", "Euler", 1, "x ← x + Δt·v̂"),
        Sampler("heun", "Heun", 2, "Euler, then the average of the slopes at both ends"),
        Sampler("midpoint", "Midpoint", 2, "the slope half a step ahead"),
    )
}

ALL_SAMPLERS = tuple(dict.fromkeys([*EPS_SAMPLERS, *FLOW_SAMPLERS]))

# IF's runs take the rules that handle its schedule's clean end and x̂₀ thresholding as diffusers does.
IF_SAMPLERS = ("ddpm", "ddim", "dpm++2m", "dpm++2m-sde")

DEFAULT_EPS_SAMPLER = "ddpm"

DEFAULT_FLOW_SAMPLER = "euler"


def sampler_title(name: str, flow: bool = False, eta: float | None = None) -> str:
    """ "DDIM η=0", "Heun", ...: the label of a sampler in the app and the plots."""
    table = FLOW_SAMPLERS if flow else EPS_SAMPLERS
    title = table[name].title if name in table else name
    return f"{title} η={eta:g}" if name == "ddim" and eta is not None else title


def unsuitable_sampler(name: str, suitable, kind: str) -> str:
    return f"the {name!r} sampler does not suit {kind}; use one of {', '.join(suitable)}"


def check_sampler_choice(name: str, eta: float | None, suitable, kind: str) -> None:
    """One clear line for a sampler that does not suit the model, or an η it cannot use."""
    if name not in suitable:
        raise UserFacingError(unsuitable_sampler(name, suitable, kind))
    if eta is not None and "ddim" not in suitable:
        raise UserFacingError(f"--eta is DDIM's noise scale, and {kind} has no DDIM sampler: leave out --eta")
    if eta is not None and name != "ddim":
        raise UserFacingError(f"--eta is DDIM's noise scale; the {name!r} sampler has none (use --sampler ddim)")
    if eta is not None and out_of_range(eta, ETA):
        raise UserFacingError(f"eta must be between {ETA[0]:g} and {ETA[1]:g}, got {eta:g}")


def make_eps_step_rule(
    name: str,
    schedule: DiscreteSchedule,
    *,
    eta: float | None = None,
    x0_clip: X0Clip | None = None,
    variance: FixedVariance | PosteriorVariance | LearnedRangeVariance | None = None,
    clean_t: int = 0,
    noise_while_t_above: int | None = None,
    eps_from_clipped_x0: bool = True,
) -> StepRule:
    """The step rule of an ε-model sampler. `variance`, `clean_t` and `noise_while_t_above` are
    DDPM's own (fixed or learned variance, and where it stops adding noise); η and
    `eps_from_clipped_x0` are DDIM's (see core.diffusion.rules.eps)."""
    if name not in EPS_SAMPLERS:
        raise ValueError(unsuitable_sampler(name, EPS_SAMPLERS, "a noise-prediction (DDPM) model"))
    if eta is not None and name != "ddim":
        raise ValueError(f"η is DDIM's noise scale; the {name!r} sampler has none")
    if name == "ddpm":
        return DDPMStep(
            schedule, variance=variance, x0_clip=x0_clip, clean_t=clean_t, noise_while_t_above=noise_while_t_above
        )
    if name == "ddim":
        return DDIMStep(
            schedule, eta=0.0 if eta is None else eta, x0_clip=x0_clip, eps_from_clipped_x0=eps_from_clipped_x0
        )
    if name == "dpm++2m":
        return DPMSolverPP2MStep(schedule, x0_clip=x0_clip)
    if name == "dpm++2m-sde":
        return SDEDPMSolverPP2MStep(schedule, x0_clip=x0_clip)
    if name == "euler":
        return EulerODEStep(schedule, x0_clip=x0_clip)
    return HeunODEStep(schedule, x0_clip=x0_clip)


def make_flow_step_rule(name: str) -> StepRule:
    if name not in FLOW_SAMPLERS:
        raise ValueError(unsuitable_sampler(name, FLOW_SAMPLERS, "a flow-matching model"))
    return {"euler": EulerFlowStep, "heun": heun_flow_step, "midpoint": midpoint_flow_step}[name]()


def steps_for_budget(name: str, budget: int, flow: bool = False) -> int:
    """The most steps a sampler takes within `budget` model evaluations (at least one step).

    ε-Heun's last step (to clean data) is Euler's, so S steps cost 2S − 1 evaluations.
    """
    if budget < 1:
        raise ValueError(f"an evaluation budget must be at least 1, got {budget}")
    per_step = (FLOW_SAMPLERS if flow else EPS_SAMPLERS)[name].evaluations_per_step
    if per_step == 1:
        return budget
    return max(1, budget // 2) if flow else max(1, (budget + 1) // 2)


def evaluations_before(name: str | None, step: int, total_steps: int, flow: bool = False) -> int:
    """The model evaluations a run of `total_steps` steps has spent when it reaches step `step`
    (0 at the start): what a frame's `nfe` will say, before the frame exists."""
    table = FLOW_SAMPLERS if flow else EPS_SAMPLERS
    per_step = table[name].evaluations_per_step if name in table else 1
    step = max(0, min(step, total_steps))
    if per_step == 1:
        return step
    return 2 * step if flow or step < total_steps else evaluations_for_steps(name, total_steps, flow)


def evaluations_for_steps(name: str, steps: int, flow: bool = False) -> int:
    """The NFE of a run of `steps` steps (the inverse of `steps_for_budget`)."""
    per_step = (FLOW_SAMPLERS if flow else EPS_SAMPLERS)[name].evaluations_per_step
    if per_step == 1:
        return steps
    return 2 * steps if flow else 2 * steps - 1
