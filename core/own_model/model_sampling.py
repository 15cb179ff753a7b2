"""Sampling a user's own model: any PyTorch module or callable, called as CS180 part B's UNets are.

`model(x_t, t)`, or `model(x_t, t, c)` for a class-conditioned one, where `t` is a float tensor of
shape (N,): t/T with t the integer timestep for a DDPM model (ε-prediction), flow time in [0, 1]
for a flow-matching one (x₀ = noise, x₁ = data; v-prediction); `c` is one-hot (N, classes), its
rows zero for classifier-free guidance's unconditional pass, as the course trains it.

The run is composed as every model trained in the app is (`objectives.compose_sampler`): the
objective's timesteps and step rule for the chosen sampler, plain or guided, through the one loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from diffusion_stepper.core.devices import make_generator, resolve_device
from diffusion_stepper.core.diffusion.objectives import (
    DDPMObjective,
    FlowObjective,
    algorithm_name,
    compose_sampler,
)
from diffusion_stepper.core.diffusion.rules.catalogue import check_sampler_choice
from diffusion_stepper.core.diffusion.sampling import pure_noise
from diffusion_stepper.core.diffusion.schedules import DiscreteSchedule, LinearBetaSchedule
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.frames import SamplingRun
from diffusion_stepper.core.limits import CLASSES, SAMPLES, STEPS, check_guidance, check_run_fits, out_of_range

OBJECTIVES = ("ddpm", "flow")
DEFAULT_GUIDANCE = 5.0  # the course's CFG scale
DEFAULT_NUM = 16
DEFAULT_VALUE_RANGE = (0.0, 1.0)  # the course's MNIST digits
DEFAULT_NUM_CLASSES = 10


class ModelOutputError(UserFacingError, ValueError):
    """The user's model returned something a sampler cannot use (a wrong shape, NaN)."""


def schedule_from(schedule) -> DiscreteSchedule:
    """A DDPM schedule from what a user may pass: None (the course's linear β, 1e-4 to 0.02 over
    T = 300), a schedule made here (`linear_schedule`), or ᾱ as a tensor, array or list: ᾱ_1..ᾱ_T,
    or ᾱ_0..ᾱ_T with ᾱ_0 = 1 (the course's indexing: t = 0 is clean data)."""
    if schedule is None:
        return LinearBetaSchedule.create()
    if isinstance(schedule, DiscreteSchedule):
        return schedule
    try:
        alpha_bars = torch.as_tensor(schedule, dtype=torch.float64).detach().cpu().flatten()
    except (TypeError, ValueError, RuntimeError):
        raise UserFacingError(
            f"schedule must be ds.linear_schedule(...) or a list of ᾱ_t values, got {type(schedule).__name__}"
        ) from None
    if alpha_bars.numel() == 0 or not torch.isfinite(alpha_bars).all():
        raise UserFacingError("schedule: ᾱ_t must be finite numbers, at least one")
    if abs(float(alpha_bars[0]) - 1.0) > 1e-9:
        alpha_bars = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars])
    inner = alpha_bars[1:]
    if not ((inner > 0) & (inner < 1)).all() or (alpha_bars[1:] > alpha_bars[:-1]).any():
        raise UserFacingError("schedule: ᾱ_t must fall from 1 towards 0, each in (0, 1)")
    if out_of_range(len(inner), STEPS):
        raise UserFacingError(f"schedule: T must be between {STEPS[0]} and {STEPS[1]:,}, got {len(inner):,}")
    return DiscreteSchedule(alpha_bars=alpha_bars)


def model_device(model, device: str | torch.device | None) -> torch.device:
    """`device` if given ("auto", "cpu", "cuda", ...), else where the module's weights are, else the CPU."""
    if device is not None:
        return resolve_device(device) if isinstance(device, str) else torch.device(device)
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        for parameter in parameters():
            return parameter.device
    return torch.device("cpu")


class CallablePredictor:
    """Adapter from the sampler's (x, t, cond) to the user's `model(x_t, t)` / `model(x_t, t, c)`,
    t a float tensor (N,), checking each output: the shape of x_t, finite."""

    def __init__(self, model: Callable, objective, conditioned: bool):
        self.model = model
        self.objective = objective
        self.conditioned = conditioned
        self.calls = 0

    def __call__(self, x: torch.Tensor, t: float, cond: torch.Tensor | None) -> torch.Tensor:
        t_in = torch.full((x.shape[0],), float(self.objective.network_time(t)), device=x.device)
        with torch.no_grad():
            output = self.model(x, t_in, cond) if self.conditioned else self.model(x, t_in)
        self.calls += 1
        return self._checked(output, x, t)

    def _checked(self, output, x: torch.Tensor, t: float) -> torch.Tensor:
        what = "ε̂" if self.objective.name == "ddpm" else "v̂"
        where = f"at t = {t:g} (call {self.calls})"
        output = getattr(output, "sample", output)  # a diffusers model's output record
        if not isinstance(output, torch.Tensor):
            kind = type(output).__name__
            raise ModelOutputError(f"the model returned {kind} {where}: it must return {what} as a tensor")
        if tuple(output.shape) != tuple(x.shape):
            raise ModelOutputError(
                f"the model returned shape {tuple(output.shape)} for x_t of shape {tuple(x.shape)} {where}: "
                f"it must return {what} of x_t's shape"
            )
        if not torch.isfinite(output).all():
            raise ModelOutputError(f"the model returned NaN or infinite values {where}: check the model and its inputs")
        return output.to(x.dtype)


@dataclass
class ModelSampleRequest:
    """What `ds.sample` asks for: the model, how it was trained, and the run's choices."""

    model: Callable
    objective: str = "ddpm"
    shape: Sequence[int] = (1, 28, 28)
    num: int | None = None
    classes: Iterable[int] | None = None
    per_class: int = 1
    num_classes: int = DEFAULT_NUM_CLASSES
    guidance: float = DEFAULT_GUIDANCE
    sampler: str | None = None
    steps: int | None = None
    eta: float | None = None
    seed: int = 0
    schedule: object = None
    value_range: tuple[float, float] = DEFAULT_VALUE_RANGE
    device: str | torch.device | None = None
    name: str | None = None

    def start(self) -> SamplingRun:
        return sample_model(self)


def sample_model(request: ModelSampleRequest) -> SamplingRun:
    """Check every choice (one clear line for the first that does not fit), then compose the run."""
    if not callable(request.model):
        raise UserFacingError(f"model must be callable as model(x_t, t), got {type(request.model).__name__}")
    if request.objective not in OBJECTIVES:
        raise UserFacingError(f"objective must be one of {', '.join(OBJECTIVES)}, got {request.objective!r}")
    shape = _image_shape(request.shape)
    objective = DDPMObjective(schedule_from(request.schedule)) if request.objective == "ddpm" else FlowObjective()
    if request.objective == "flow" and request.schedule is not None:
        raise UserFacingError("schedule= is a DDPM model's noise schedule; a flow model has none")
    labels, classes = _labels(request)
    num = len(labels) if labels is not None else (DEFAULT_NUM if request.num is None else request.num)
    if out_of_range(num, SAMPLES):
        raise UserFacingError(f"num must be between {SAMPLES[0]} and {SAMPLES[1]:,}, got {num}")
    if labels is not None:
        check_guidance(request.guidance)
    sampler = request.sampler or objective.default_sampler
    kind = "a DDPM (ε-prediction) model" if request.objective == "ddpm" else "a flow-matching (v-prediction) model"
    check_sampler_choice(sampler, request.eta, objective.samplers, kind)
    steps = objective.default_steps if request.steps is None else request.steps
    if not isinstance(steps, int) or out_of_range(steps, STEPS):
        raise UserFacingError(f"steps must be a whole number between {STEPS[0]} and {STEPS[1]:,}, got {steps}")
    if request.objective == "ddpm" and steps > objective.schedule.T:
        raise UserFacingError(f"steps must be at most T = {objective.schedule.T} for this schedule, got {steps}")
    value_range = value_range_of(request.value_range)
    check_run_fits(1 + steps, num, shape, pictures_per_frame=7)

    device = model_device(request.model, request.device)
    generator = make_generator(request.seed, device)
    x_start = pure_noise((num, *shape), generator, device)
    predictor = CallablePredictor(request.model, objective, conditioned=labels is not None)
    frames = compose_sampler(
        predictor,
        objective,
        x_start,
        generator,
        labels=None if labels is None else labels.to(device),
        num_classes=request.num_classes,
        guidance=request.guidance,
        steps=steps,
        sampler=sampler,
        eta=request.eta,
    )
    params: dict = {"steps": steps, "num_samples": num, "source": "pure noise", "sampler": sampler}
    schedule = getattr(objective, "schedule", None)
    if isinstance(schedule, LinearBetaSchedule) or schedule is None:
        params["objective"] = objective.to_dict()
    else:  # a schedule of the user's own: the histograms' theory and the schedule plot read ᾱ itself
        params["alpha_bars"] = [float(value) for value in schedule.alpha_bars]
    if request.eta is not None:
        params["eta"] = request.eta
    if labels is not None:
        params.update(guidance=request.guidance, classes=classes, per_class=request.per_class)
    meta = {
        "algorithm": algorithm_name(objective, labels is not None),
        "model": request.name or type(request.model).__name__,
        "checkpoint": None,
        "seed": request.seed,
        "params": params,
        "value_range": list(value_range),
        "device": str(device),
    }
    return SamplingRun(frames, meta, labels, steps + 1)


def _image_shape(shape) -> tuple[int, int, int]:
    try:
        shape = tuple(int(size) for size in shape)
    except (TypeError, ValueError):
        raise UserFacingError(f"shape must be (channels, height, width), got {shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise UserFacingError(f"shape must be (channels, height, width) of positive sizes, got {shape}")
    return shape


def _labels(request: ModelSampleRequest) -> tuple[torch.Tensor | None, list[int] | None]:
    """A class model's labels: each of `classes`, `per_class` times (rows of 0..9, as the course shows them)."""
    if request.classes is None:
        return None, None
    if request.num is not None:
        raise UserFacingError("num= is for unconditional models; with classes= give per_class= instead")
    classes = [int(c) for c in request.classes]
    if out_of_range(request.num_classes, CLASSES):
        raise UserFacingError(f"num_classes must be between {CLASSES[0]} and {CLASSES[1]}, got {request.num_classes}")
    bad = [c for c in classes if not 0 <= c < request.num_classes]
    if bad or not classes:
        raise UserFacingError(f"classes must be in 0..{request.num_classes - 1}, got {classes}")
    if request.per_class < 1:
        raise UserFacingError(f"per_class must be positive, got {request.per_class}")
    return torch.tensor(classes, dtype=torch.int64).repeat(request.per_class), classes


def value_range_of(value_range) -> tuple[float, float]:
    try:
        low, high = (float(value) for value in value_range)
    except (TypeError, ValueError):
        raise UserFacingError(f"value_range must be (low, high), got {value_range!r}") from None
    if not low < high:
        raise UserFacingError(f"value_range must be (low, high) with low < high, got ({low:g}, {high:g})")
    return low, high
