"""The 2D lab's experiments, one click (or one command) each: lists of requests whose runs the
app shows side by side on one timeline, and `experiment toy2d NAME` writes one file each (one
`core.experiments.Experiments`, as every family's).

Every experiment runs on a model: a trained checkpoint where the experiment suits it, else the
exact field of a Gaussian-mixture dataset (8 Gaussians by default, or a drawing), the "perfect
model" that needs no training. The runs of one experiment share their seed, so they start from
the same noise and differ only in what the experiment varies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import torch

from diffusion_stepper.core.devices import make_generator
from diffusion_stepper.core.diffusion.objectives import DDPMObjective, FlowObjective
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.experiments import Experiment, Experiments
from diffusion_stepper.core.frames import FORWARD_NOISED, Frame, SamplingRun
from diffusion_stepper.core.toy2d.checkpoints import load_toy2d_checkpoint
from diffusion_stepper.core.toy2d.drawn import resolve_dataset
from diffusion_stepper.core.toy2d.runs import (
    DATA_SAMPLE,
    DEFAULT_PARTICLES,
    DEFAULT_STEPS,
    Toy2DSettings,
    Toy2DSource,
    as_images,
    check_particle_count,
    marginal_ab,
    toy2d_meta,
    toy2d_run,
    with_fields,
)
from diffusion_stepper.core.toy2d.training import make_objective

DEFAULT_DATASET = "8-gaussians"
FORWARD_STEPS = 50
FEW_STEPS = (2, 5, 10)
GUIDANCE_SCALES = (0.0, 1.0, 3.0, 6.0)
SAME_BUDGET_STEPS = 10
ODE_SDE_STEPS = 50
GUIDED_CLASS = 0


@dataclass
class SourceSpec:
    """Which model walks the particles: a checkpoint, or the exact field of a mixture dataset."""

    checkpoint: str | None = None
    dataset: str = DEFAULT_DATASET
    objective: str = "ddpm"

    def load(self) -> Toy2DSource:
        if self.checkpoint:
            return Toy2DSource.from_checkpoint(self.checkpoint)
        return Toy2DSource.exact(resolve_dataset(self.dataset), make_objective(self.objective))


@dataclass
class Toy2DRequest:
    """One run: sample `source` with `settings`, or (kind) show the forward process or the
    conditional flow paths of its data."""

    source: SourceSpec
    settings: Toy2DSettings = field(default_factory=Toy2DSettings)
    kind: str = "sample"  # sample | forward | conditional

    def start(self) -> SamplingRun:
        source = self.source.load()
        if self.kind == "forward":
            return forward_run(source, self.settings)
        if self.kind == "conditional":
            return conditional_paths_run(source, self.settings)
        return toy2d_run(source, self.settings)


@dataclass
class Toy2DExperimentOptions:
    checkpoint: str | None = None  # default: the exact field of `dataset`
    dataset: str = DEFAULT_DATASET
    count: int = DEFAULT_PARTICLES
    seed: int = 0


# --- runs that are not a sampler's ------------------------------------------------------------


def _data_and_noise(source: Toy2DSource, settings: Toy2DSettings) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Data points for the particles (each paired with its own noise) and the run's data sample."""
    check_particle_count(settings.count)
    generator = make_generator(settings.seed, "cpu")
    noise = torch.randn((settings.count, 2), generator=generator)  # first, as a sampler's start is
    points, _ = source.dataset.sample(settings.count, generator)
    shown, _ = source.dataset.sample(DATA_SAMPLE, make_generator(settings.seed + 1, "cpu"))
    return points, noise, shown


def forward_frames(
    data: torch.Tensor, noise: torch.Tensor, objective: DDPMObjective | FlowObjective, steps: int
) -> Iterator[Frame]:
    """The forward process from the data to noise with one fixed noise draw per particle:
    x_t = a·x₀ + b·z along the objective's own path (DDPM's ᾱ_t, flow's straight line)."""
    if objective.name == "flow":
        times = [1.0 - i / steps for i in range(steps + 1)]  # flow's data is at t = 1
    else:
        times = [float(t) for t in reversed(objective.timesteps(steps))]  # 0 up to T
    for index, t in enumerate(times):
        a, b = marginal_ab(objective, t)
        x_t = a * data + b * noise
        coeffs = {"t": t, FORWARD_NOISED: 1.0}
        if objective.name == "ddpm":
            coeffs["alpha_bar_t"] = a * a
        estimate = {"v_hat": as_images(data - noise)} if objective.name == "flow" else {"eps_hat": as_images(noise)}
        yield Frame(index=index, t=t, x_t=as_images(x_t), x0_hat=as_images(data), coeffs=coeffs, **estimate)


def forward_run(source: Toy2DSource, settings: Toy2DSettings) -> SamplingRun:
    steps = settings.steps or FORWARD_STEPS
    data, noise, shown = _data_and_noise(source, settings)
    objective = source.objective
    frames = with_fields(forward_frames(data, noise, objective, steps), objective, source.dataset, source)
    note = settings.note or (
        "The forward process: each particle is a data point, blurred by its own fixed noise as t grows; "
        "the heat map is p_t, the data's density at that noise level."
    )
    meta = toy2d_meta(source, f"{objective.name}-forward", replace(settings, note=note), steps)
    return SamplingRun(frames, meta, None, steps + 1, data=shown)


def conditional_path_frames(data: torch.Tensor, noise: torch.Tensor, steps: int) -> Iterator[Frame]:
    """Flow matching's conditional paths: each particle on the straight line from its own noise z
    to its own data point x₁, x_t = (1 − t)·z + t·x₁, at the constant velocity x₁ − z."""
    for index in range(steps + 1):
        t = index / steps
        x_t = FlowObjective.interpolate(noise, data, torch.full((data.shape[0],), t))
        yield Frame(
            index=index,
            t=t,
            x_t=as_images(x_t),
            x0_hat=as_images(data),
            v_hat=as_images(data - noise),
            coeffs={"t": t},
        )


def conditional_paths_run(source: Toy2DSource, settings: Toy2DSettings) -> SamplingRun:
    if source.objective.name != "flow":
        raise UserFacingError("conditional paths are flow matching's: use a flow model or the exact flow field")
    steps = settings.steps or DEFAULT_STEPS["flow"]
    data, noise, shown = _data_and_noise(source, settings)
    frames = with_fields(conditional_path_frames(data, noise, steps), source.objective, source.dataset, source)
    note = settings.note or (
        "Conditional paths: each noise z paired at random with a data point x₁ and moved on a straight line. "
        "Training regresses v̂ onto these x₁ − z; their average at each point is the marginal field, whose "
        "paths (the other run) curve and never cross."
    )
    meta = toy2d_meta(source, "flow-conditional", replace(settings, note=note), steps)
    return SamplingRun(frames, meta, None, steps + 1, data=shown)


# --- the experiments ----------------------------------------------------------------------------


def _spec(options: Toy2DExperimentOptions, objective: str) -> SourceSpec:
    """The dock's trained model where it was trained with `objective`, else the exact field of
    the options' dataset with that objective (see `_fallback_note`)."""
    if options.checkpoint and _source_objective(options, objective) == objective:
        return SourceSpec(options.checkpoint, options.dataset, objective)
    return SourceSpec(None, options.dataset, objective)


def _fallback_note(options: Toy2DExperimentOptions, objective: str) -> str:
    """What a run says when the dock's model did not suit it and the exact field stood in."""
    if not options.checkpoint or _source_objective(options, objective) == objective:
        return ""
    trained = _source_objective(options, objective)
    return f"(The 2D lab's model is {trained}-trained; this uses the exact {objective} field instead.) "


def _settings(options: Toy2DExperimentOptions, **changes) -> Toy2DSettings:
    return replace(Toy2DSettings(count=options.count, seed=options.seed), **changes)


def _source_objective(options: Toy2DExperimentOptions, default: str) -> str:
    """The checkpoint's objective (read from its sidecar), or `default` for the exact field."""
    if not options.checkpoint:
        return default

    return load_toy2d_checkpoint(options.checkpoint).objective.name


def _forward(options: Toy2DExperimentOptions) -> list[Toy2DRequest]:
    return [Toy2DRequest(_spec(options, _source_objective(options, "ddpm")), _settings(options), "forward")]


def _ode_vs_sde(options: Toy2DExperimentOptions) -> list[Toy2DRequest]:
    spec, note = _spec(options, "ddpm"), _fallback_note(options, "ddpm") + ODE_SDE_NOTE
    return [
        Toy2DRequest(spec, _settings(options, steps=ODE_SDE_STEPS, sampler="ddpm", note=note)),
        Toy2DRequest(spec, _settings(options, steps=ODE_SDE_STEPS, sampler="ddim", eta=0.0, note=note)),
    ]


ODE_SDE_NOTE = (
    f"The same starting noise, {ODE_SDE_STEPS} steps each: the SDE (DDPM's posterior step) adds fresh noise every "
    "step, so its paths jitter; the ODE (DDIM, η = 0) follows the field smoothly. Both end on the data."
)


def _same_budget(options: Toy2DExperimentOptions) -> list[Toy2DRequest]:
    """DDPM, DDIM and flow on the exact fields of one dataset: a trained model of one objective
    could not stand in for the other, so the comparison is fair only between exact fields."""
    steps = SAME_BUDGET_STEPS
    note = f"{steps} steps each from the same noise: DDPM's stochastic step, DDIM's deterministic one, flow's Euler"
    note += " (on the exact fields, so that only the sampler differs)."
    ddpm, flow = SourceSpec(None, options.dataset, "ddpm"), SourceSpec(None, options.dataset, "flow")
    return [
        Toy2DRequest(ddpm, _settings(options, steps=steps, sampler="ddpm", note=note)),
        Toy2DRequest(ddpm, _settings(options, steps=steps, sampler="ddim", eta=0.0, note=note)),
        Toy2DRequest(flow, _settings(options, steps=steps, sampler="euler", note=note)),
    ]


def _conditional_vs_marginal(options: Toy2DExperimentOptions) -> list[Toy2DRequest]:
    spec = _spec(options, "flow")
    steps = DEFAULT_STEPS["flow"]
    field = "learned" if spec.checkpoint else "exact"
    marginal_note = f"The marginal paths: the same noise, moved by the {field} velocity field."
    marginal_note = _fallback_note(options, "flow") + marginal_note
    return [
        Toy2DRequest(spec, _settings(options, steps=steps), "conditional"),
        Toy2DRequest(spec, _settings(options, steps=steps, sampler="euler", note=marginal_note)),
    ]


def _guidance(options: Toy2DExperimentOptions) -> list[Toy2DRequest]:
    objective = _source_objective(options, "flow")
    spec = _spec(options, objective)
    note = "Every particle asked for class {label} with CFG at γ = {scale:g}: γ = 0 ignores the class, 1 is the "
    note += "conditional model, larger γ pushes past it towards the class's far side."
    return [
        Toy2DRequest(
            spec,
            _settings(options, label=GUIDED_CLASS, guidance=scale, note=note.format(label=GUIDED_CLASS, scale=scale)),
        )
        for scale in GUIDANCE_SCALES
    ]


def _few_steps(options: Toy2DExperimentOptions) -> list[Toy2DRequest]:
    spec = _spec(options, "flow")
    note = _fallback_note(options, "flow")
    note += "Euler with {steps} steps: each step follows the velocity where it starts, so too few steps cut the curves."
    return [
        Toy2DRequest(spec, _settings(options, steps=steps, sampler="euler", note=note.format(steps=steps)))
        for steps in FEW_STEPS
    ]


TOY2D_EXPERIMENTS = Experiments(
    "2D experiment",
    (
        Experiment("forward", "Forward process", _forward, summary="the data spreading into noise as t grows"),
        Experiment(
            "ode-vs-sde", "ODE vs SDE", _ode_vs_sde, compare=True, summary="DDIM against DDPM from the same noise"
        ),
        Experiment(
            "same-budget",
            "DDPM vs DDIM vs flow",
            _same_budget,
            compare=True,
            summary=f"{SAME_BUDGET_STEPS} steps each, exact fields",
        ),
        Experiment(
            "conditional-paths",
            "Conditional vs marginal paths",
            _conditional_vs_marginal,
            compare=True,
            summary="flow matching's straight training paths against the curved sampling ones",
        ),
        Experiment(
            "guidance",
            "Guidance",
            _guidance,
            compare=True,
            summary=f"CFG towards class {GUIDED_CLASS} at γ = 0, 1, 3, 6",
        ),
        Experiment("few-steps", "Too few steps", _few_steps, compare=True, summary="Euler at 2, 5 and 10 steps"),
    ),
    check=lambda options: check_particle_count(options.count),
)
