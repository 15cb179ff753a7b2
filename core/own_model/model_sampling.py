"""Sampling a user's own model: any PyTorch module or callable, called as CS180 part B's UNets are.

`model(x_t, t)`, or `model(x_t, t, c)` for a class-conditioned one, where `t` is a float tensor of
shape (N,): t/T with t the integer timestep for a DDPM model (ε-prediction), flow time in [0, 1]
for a flow-matching one (x₀ = noise, x₁ = data; v-prediction); `c` is one-hot (N, classes), its
rows zero for classifier-free guidance's unconditional pass, as the course trains it.

The run is composed as every model trained in the app is (`objectives.compose_sampler`): the
objective's timesteps and step rule for the chosen sampler, plain or guided, through the one loop.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from diffusion_stepper.core.devices import make_generator, resolve_device
from diffusion_stepper.core.diffusion.objectives import (
    DEFAULT_GUIDANCE,
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
from diffusion_stepper.core.limits import (
    CHAIN_LENGTH,
    CLASSES,
    PICTURE_CHANNELS,
    SAMPLES,
    SEED,
    STEPS,
    check_guidance,
    check_run_fits,
    out_of_range,
)

OBJECTIVES = ("ddpm", "flow")
DEFAULT_NUM = 16
DEFAULT_VALUE_RANGE = (0.0, 1.0)  # the course's MNIST digits
DEFAULT_NUM_CLASSES = 10


class ModelOutputError(UserFacingError, ValueError):
    """The user's model returned something a sampler cannot use (a wrong shape, NaN)."""


class ModelCallError(UserFacingError, RuntimeError):
    """The user's model raised an exception of its own (its `__cause__`)."""


def schedule_from(schedule) -> DiscreteSchedule:
    """A DDPM schedule from what a user may pass: None (the course's linear β, 1e-4 to 0.02 over
    T = 300), a schedule made here (`linear_schedule`), or ᾱ as a tensor, array or list: ᾱ_1..ᾱ_T,
    or ᾱ_0..ᾱ_T with ᾱ_0 = 1 (the course's indexing: t = 0 is clean data). Checked either way."""
    if schedule is None:
        return LinearBetaSchedule.create()
    if isinstance(schedule, DiscreteSchedule):
        alpha_bars = schedule.alpha_bars
    else:
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
    if out_of_range(len(inner), CHAIN_LENGTH):
        raise UserFacingError(
            f"schedule: T must be between {CHAIN_LENGTH[0]} and {CHAIN_LENGTH[1]:,}, got {len(inner):,}"
        )
    if isinstance(schedule, DiscreteSchedule) and alpha_bars is schedule.alpha_bars:
        return schedule  # as it came: a linear one keeps its recipe, which the run's record names
    return DiscreteSchedule(alpha_bars=alpha_bars)


def linear_schedule(T, beta_start: float, beta_end: float) -> LinearBetaSchedule:  # noqa: N803
    """The course's recipe, β_t linear from `beta_start` to `beta_end` over T steps, checked."""
    T = whole_number(T, "T", CHAIN_LENGTH)  # noqa: N806
    start, end = finite_number(beta_start, "beta_start"), finite_number(beta_end, "beta_end")
    if not 0 < start <= end < 1:
        raise UserFacingError(f"expected 0 < beta_start <= beta_end < 1, got {start:g} and {end:g}")
    return LinearBetaSchedule.create(T, start, end)


def whole_number(value, name: str, bounds: tuple[int, int]) -> int:
    """`value` as an int (a numpy or tensor integer too) within `bounds`, or one clear line."""
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if number is None or isinstance(value, bool):
        raise UserFacingError(f"{name} must be a whole number, got {value!r}")
    if out_of_range(number, bounds):
        raise UserFacingError(f"{name} must be between {bounds[0]:,} and {bounds[1]:,}, got {number:,}")
    return number


def finite_number(value, name: str) -> float:
    """`value` as a finite float (a numpy or tensor number too), or one clear line."""
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise UserFacingError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise UserFacingError(f"{name} must be finite, got {number}")
    return number


def _first_weight(model) -> torch.Tensor | None:
    parameters = getattr(model, "parameters", None)
    return next(iter(parameters()), None) if callable(parameters) else None


def model_device(model, device: str | torch.device | None) -> torch.device:
    """`device` if given ("auto", "cpu", "cuda", ...), else where the module's weights are, else the
    CPU (a plain function, or a module without weights)."""
    if device is not None:
        try:
            return resolve_device(device) if isinstance(device, str) else torch.device(device)
        except (TypeError, RuntimeError):
            raise UserFacingError(f"device must be 'auto', 'cpu', 'cuda' or 'mps', got {device!r}") from None
    weight = _first_weight(model)
    return weight.device if weight is not None else torch.device("cpu")


def model_dtype(model) -> torch.dtype:
    """What the model computes in: its weights' floating type (float64, float16, ...), else float32."""
    weight = _first_weight(model)
    return weight.dtype if weight is not None and weight.is_floating_point() else torch.float32


class CallablePredictor:
    """Adapter from the sampler's (x, t, cond) to the user's `model(x_t, t)` / `model(x_t, t, c)`,
    t a float tensor (N,), checking each output: the shape of x_t, finite."""

    def __init__(self, model: Callable, objective, conditioned: bool, dtype: torch.dtype = torch.float32):
        self.model = model
        self.objective = objective
        self.conditioned = conditioned
        self.dtype = dtype  # the model's own: x_t, t and c are handed over in it
        self.calls = 0

    def __call__(self, x: torch.Tensor, t: float, cond: torch.Tensor | None) -> torch.Tensor:
        t_in = torch.full((x.shape[0],), float(self.objective.network_time(t)), device=x.device, dtype=self.dtype)
        inputs = (x.to(self.dtype), t_in) + ((cond.to(self.dtype),) if self.conditioned else ())
        self.calls += 1
        try:
            with torch.no_grad():
                output = self.model(*inputs)
        except Exception as error:  # the model's own: say how it was called, which is the usual cause
            called = ", ".join(f"{name} {tuple(value.shape)}" for name, value in zip(("x_t", "t", "c"), inputs))
            raise ModelCallError(
                f"the model raised {type(error).__name__}: {error} (called as model({called}) in {self.dtype}, "
                f"at t = {t:g})"
            ) from error
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
        return output.to(x.dtype)  # the loop's float32


@dataclass
class ModelSampleRequest:
    """What `ds.sample` asks for: the model, how it was trained, and the run's choices."""

    model: Callable
    objective: str = "ddpm"
    shape: Sequence[int] = (1, 28, 28)
    num: int | None = None  # unconditional: how many (default DEFAULT_NUM)
    classes: Iterable[int] | None = None  # class-conditioned: which classes...
    per_class: int | None = None  # ...how many of each (default 1)
    num_classes: int | None = None  # ...out of how many (default 10, the digits)
    guidance: float | None = None  # ...at which CFG scale (default the course's 5)
    sampler: str | None = None
    steps: int | None = None
    eta: float | None = None
    seed: int = 0
    schedule: object = None
    value_range: Sequence[float] = DEFAULT_VALUE_RANGE
    device: str | torch.device | None = None
    name: str | None = None

    def start(self) -> SamplingRun:
        return sample_model(self)


@dataclass
class _Choices:
    """A request's choices, checked and in plain Python types (what the file's record holds)."""

    shape: tuple[int, int, int]
    num: int
    labels: torch.Tensor | None
    classes: list[int] | None
    per_class: int | None
    num_classes: int
    guidance: float
    sampler: str
    steps: int
    eta: float | None
    seed: int
    value_range: tuple[float, float]


def sample_model(request: ModelSampleRequest) -> SamplingRun:
    """Check every choice (one clear line for the first that does not fit), then compose the run."""
    if not callable(request.model):
        raise UserFacingError(f"model must be callable as model(x_t, t), got {type(request.model).__name__}")
    if request.objective not in OBJECTIVES:
        raise UserFacingError(f"objective must be one of {', '.join(OBJECTIVES)}, got {request.objective!r}")
    if request.objective == "flow" and request.schedule is not None:
        raise UserFacingError("schedule= is a DDPM model's noise schedule; a flow model has none")
    objective = DDPMObjective(schedule_from(request.schedule)) if request.objective == "ddpm" else FlowObjective()
    choices = _checked_choices(request, objective)
    check_run_fits(1 + choices.steps, choices.num, choices.shape, pictures_per_frame=7)

    device = model_device(request.model, request.device)
    generator = make_generator(choices.seed, device)
    x_start = pure_noise((choices.num, *choices.shape), generator, device)
    labels = choices.labels
    predictor = CallablePredictor(request.model, objective, labels is not None, model_dtype(request.model))
    frames = compose_sampler(
        predictor,
        objective,
        x_start,
        generator,
        labels=None if labels is None else labels.to(device),
        num_classes=choices.num_classes,
        guidance=choices.guidance,
        steps=choices.steps,
        sampler=choices.sampler,
        eta=choices.eta,
    )
    params: dict = {
        "steps": choices.steps,
        "num_samples": choices.num,
        "source": "pure noise",
        "sampler": choices.sampler,
    }
    schedule = getattr(objective, "schedule", None)
    if schedule is None or isinstance(schedule, LinearBetaSchedule):
        params["objective"] = objective.to_dict()
    else:  # a schedule of the user's own: the histograms' theory and the schedule plot read ᾱ itself
        params["alpha_bars"] = [float(value) for value in schedule.alpha_bars]
    if choices.eta is not None:
        params["eta"] = choices.eta
    if labels is not None:
        params.update(guidance=choices.guidance, classes=choices.classes, per_class=choices.per_class)
    meta = {
        "algorithm": algorithm_name(objective, labels is not None),
        "model": request.name or type(request.model).__name__,
        "checkpoint": None,
        "seed": choices.seed,
        "params": params,
        "value_range": list(choices.value_range),
        "device": str(device),
    }
    return SamplingRun(frames, meta, labels, choices.steps + 1)


def _checked_choices(request: ModelSampleRequest, objective) -> _Choices:
    shape = _image_shape(request.shape)
    seed = whole_number(request.seed, "seed", SEED)
    if request.classes is None:
        for name in ("per_class", "num_classes", "guidance"):
            if getattr(request, name) is not None:
                raise UserFacingError(f"{name}= is for a class-conditioned model: give classes= too, or leave it out")
        num = DEFAULT_NUM if request.num is None else whole_number(request.num, "num", SAMPLES)
        labels = classes = per_class = None
        num_classes, guidance = 0, 1.0
    else:
        if request.num is not None:
            raise UserFacingError("num= is for unconditional models; with classes= give per_class= instead")
        num_classes = DEFAULT_NUM_CLASSES if request.num_classes is None else request.num_classes
        num_classes = whole_number(num_classes, "num_classes", CLASSES)
        per_class = 1 if request.per_class is None else whole_number(request.per_class, "per_class", SAMPLES)
        classes = _classes(request.classes, num_classes)
        labels = torch.tensor(classes, dtype=torch.int64).repeat(per_class)  # rows of 0..9, as the course shows
        num = len(labels)
        if out_of_range(num, SAMPLES):
            raise UserFacingError(f"at most {SAMPLES[1]:,} samples in one run, asked for {num:,}")
        guidance = DEFAULT_GUIDANCE if request.guidance is None else finite_number(request.guidance, "guidance")
        check_guidance(guidance)
    sampler = request.sampler or objective.default_sampler
    eta = None if request.eta is None else finite_number(request.eta, "eta")
    kind = "a DDPM (ε-prediction) model" if request.objective == "ddpm" else "a flow-matching (v-prediction) model"
    check_sampler_choice(sampler, eta, objective.samplers, kind)
    steps = objective.default_steps if request.steps is None else whole_number(request.steps, "steps", STEPS)
    if request.objective == "ddpm" and steps > objective.schedule.T:
        raise UserFacingError(f"steps must be at most T = {objective.schedule.T} for this schedule, got {steps}")
    value_range = value_range_of(request.value_range)
    return _Choices(
        shape, num, labels, classes, per_class, num_classes, guidance, sampler, steps, eta, seed, value_range
    )


def _image_shape(shape) -> tuple[int, int, int]:
    try:
        shape = tuple(operator.index(size) for size in shape)
    except TypeError:
        raise UserFacingError(f"shape must be (channels, height, width), got {shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise UserFacingError(f"shape must be (channels, height, width) of positive sizes, got {shape}")
    if shape[0] not in PICTURE_CHANNELS:
        hint = " (channels come first)" if shape[2] in PICTURE_CHANNELS else ""
        raise UserFacingError(f"shape: pictures are grey (1 channel) or RGB (3), got {shape[0]} channels{hint}")
    return shape


def _classes(classes, num_classes: int) -> list[int]:
    try:
        chosen = [operator.index(c) for c in classes]
    except TypeError:
        raise UserFacingError(f"classes must be whole numbers, e.g. range(10) or [3, 7], got {classes!r}") from None
    bad = [c for c in chosen if not 0 <= c < num_classes]
    if bad or not chosen:
        raise UserFacingError(f"classes must be in 0..{num_classes - 1}, got {chosen}")
    return chosen


def value_range_of(value_range) -> tuple[float, float]:
    """(low, high) as finite floats with low < high, or one clear line."""
    try:
        low, high = (float(value) for value in value_range)
    except (TypeError, ValueError):
        raise UserFacingError(f"value_range must be (low, high), got {value_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise UserFacingError(f"value_range must be (low, high), finite, with low < high, got ({low:g}, {high:g})")
    return low, high
