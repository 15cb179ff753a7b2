"""The three part B objectives: what a model learns, and how it is sampled.

Each objective is the one home for its formulas: its training loss, the timesteps its sampler
walks, the step rule that walks them (`step_rule`, the same signature for all three), and how
its t is fed to the network. Training and sampling, MNIST's and the 2D lab's, read them from
here, and every model trained here samples through `compose_sampler`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from diffusion_stepper.core import schema
from diffusion_stepper.core.diffusion.rules.catalogue import (
    DEFAULT_EPS_SAMPLER,
    DEFAULT_FLOW_SAMPLER,
    EPS_SAMPLERS,
    FLOW_SAMPLERS,
    make_eps_step_rule,
    make_flow_step_rule,
)
from diffusion_stepper.core.diffusion.rules.single_step import SingleStepDenoise
from diffusion_stepper.core.diffusion.rules.x0 import StaticClip
from diffusion_stepper.core.diffusion.sampling import (
    ClassifierFreeGuidance,
    PlainEstimate,
    Predictor,
    StepRule,
    run_sampler,
)
from diffusion_stepper.core.diffusion.schedules import (
    DEFAULT_BETA_END,
    DEFAULT_BETA_START,
    DEFAULT_FLOW_STEPS,
    DEFAULT_T,
    LinearBetaSchedule,
    evenly_spaced_timesteps,
    flow_time_grid,
    forward_process,
)
from diffusion_stepper.core.frames import Frame
from diffusion_stepper.core.limits import CHAIN_LENGTH, FLOW_STEPS, NOISE_SIGMA

# (x, t in [0, 1] as [N, 1], one-hot condition or None) -> network output
Network = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]

DEFAULT_SIGMA = 0.5
P_UNCOND = 0.1
DEFAULT_GUIDANCE = 5.0  # the course's CFG scale γ for class-conditioned models


def one_hot(labels: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    return F.one_hot(labels.long(), num_classes).float()


def class_condition_with_dropout(
    labels: torch.Tensor, num_classes: int, p_uncond: float, generator: torch.Generator
) -> torch.Tensor:
    """One-hot c, set to the zero vector with probability p_uncond (Algorithm 3, lines 4-5)."""
    keep = torch.rand(labels.shape[0], generator=generator, device=labels.device) >= p_uncond
    return one_hot(labels, num_classes) * keep[:, None].float()


class SingleStepObjective:
    """z = x + sigma * eps; the network maps z straight to x under an L2 loss.

    With `pure_noise` the input is eps alone (part B's "denoising pure noise"): z says nothing
    about x, so the L2-optimal output is the mean of the training digits.
    """

    name = "single-step"
    noise_field = "eps_hat"

    def __init__(self, sigma: float = DEFAULT_SIGMA, pure_noise: bool = False):
        self.sigma = 1.0 if pure_noise else sigma  # pure N(0, I) is "clean zero plus noise of sigma 1"
        self.pure_noise = pure_noise

    def training_loss(self, net: Network, x: torch.Tensor, cond, generator: torch.Generator) -> torch.Tensor:
        if self.pure_noise:
            noisy = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        else:
            noisy = add_gaussian_noise(x, self.sigma, generator)
        return F.mse_loss(net(noisy, None, None), x)

    @property
    def default_steps(self) -> int:
        return 1

    def timesteps(self, steps: int | None = None, sigma: float | None = None) -> list[float]:
        """One jump from the noise level sigma to clean; `t` in its frames is sigma."""
        if steps not in (None, 1):
            raise ValueError("the single-step denoiser takes exactly one step")
        return [self.sigma if sigma is None else sigma, 0.0]

    samplers: tuple[str, ...] = ()  # one jump: no choice of step rule
    default_sampler = None

    def step_rule(
        self, sampler: str | None = None, *, eta: float | None = None, x0_range: tuple[float, float] | None = None
    ) -> StepRule:
        """The one jump; it has no sampler, η or x̂₀ range to choose."""
        if sampler is not None or eta is not None or x0_range is not None:
            raise ValueError("the single-step denoiser jumps once: it takes no sampler, η or x̂₀ clipping")
        return SingleStepDenoise()

    def network_time(self, t: float) -> float | None:
        return None

    def to_dict(self) -> dict:
        spec = {"name": self.name, "sigma": self.sigma}
        if self.pure_noise:
            spec["pure_noise"] = True
        return spec


class DDPMObjective:
    """Algorithms 1-4 of part B: predict eps from x_t and t/T (and the class)."""

    name = "ddpm"
    noise_field = "eps_hat"

    def __init__(self, schedule: LinearBetaSchedule | None = None):
        self.schedule = schedule or LinearBetaSchedule.create()
        self._alpha_bars_on: dict[torch.device, torch.Tensor] = {}

    def _alpha_bars(self, device: torch.device) -> torch.Tensor:
        if device not in self._alpha_bars_on:
            self._alpha_bars_on[device] = self.schedule.alpha_bars.to(device=device, dtype=torch.float32)
        return self._alpha_bars_on[device]

    def training_loss(self, net: Network, x0: torch.Tensor, cond, generator: torch.Generator) -> torch.Tensor:
        T = self.schedule.T
        t = torch.randint(1, T + 1, (x0.shape[0],), generator=generator, device=x0.device)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device)
        x_t = forward_process(x0, self._alpha_bars(x0.device)[t], eps)
        return F.mse_loss(net(x_t, (t.float() / T)[:, None], cond), eps)

    @property
    def default_steps(self) -> int:
        return self.schedule.T

    def timesteps(self, steps: int | None = None, sigma: float | None = None) -> list[float]:
        return evenly_spaced_timesteps(self.schedule.T, steps or self.schedule.T)

    samplers = tuple(EPS_SAMPLERS)
    default_sampler = DEFAULT_EPS_SAMPLER

    def step_rule(
        self, sampler: str | None = None, *, eta: float | None = None, x0_range: tuple[float, float] | None = None
    ) -> StepRule:
        """Part B's DDPM step (the default) or any ε-model sampler; `x0_range` clips x̂₀ to the data's range."""
        x0_clip = StaticClip(*x0_range) if x0_range else None
        return make_eps_step_rule(sampler or self.default_sampler, self.schedule, eta=eta, x0_clip=x0_clip)

    def network_time(self, t: float) -> float | None:
        return float(t) / self.schedule.T

    def to_dict(self) -> dict:
        return {"name": self.name, "schedule": self.schedule.to_dict()}


class FlowObjective:
    """The course's flow matching: x0 is noise, x1 is data, x_t = (1 - t) x0 + t x1, target x1 - x0."""

    name = "flow"
    noise_field = "v_hat"

    def __init__(self, num_ts: int = DEFAULT_FLOW_STEPS):
        self.num_ts = num_ts

    @staticmethod
    def interpolate(noise: torch.Tensor, data: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.view(-1, *([1] * (data.ndim - 1)))
        return (1.0 - t) * noise + t * data

    def training_loss(self, net: Network, x1: torch.Tensor, cond, generator: torch.Generator) -> torch.Tensor:
        x0 = torch.randn(x1.shape, generator=generator, device=x1.device)
        t = torch.rand(x1.shape[0], generator=generator, device=x1.device)
        x_t = self.interpolate(x0, x1, t)
        return F.mse_loss(net(x_t, t[:, None], cond), x1 - x0)

    @property
    def default_steps(self) -> int:
        return self.num_ts

    def timesteps(self, steps: int | None = None, sigma: float | None = None) -> list[float]:
        return flow_time_grid(steps or self.num_ts)

    samplers = tuple(FLOW_SAMPLERS)
    default_sampler = DEFAULT_FLOW_SAMPLER

    def step_rule(
        self, sampler: str | None = None, *, eta: float | None = None, x0_range: tuple[float, float] | None = None
    ) -> StepRule:
        """Euler (the default), Heun or midpoint; a flow has no η, and its x̂ is not clipped."""
        if eta is not None or x0_range is not None:
            raise ValueError("a flow-matching model's samplers take no η or x̂₀ clipping")
        return make_flow_step_rule(sampler or self.default_sampler)

    def network_time(self, t: float) -> float | None:
        return float(t)

    def to_dict(self) -> dict:
        return {"name": self.name, "num_ts": self.num_ts}


Objective = SingleStepObjective | DDPMObjective | FlowObjective
OBJECTIVES = ("single-step", "ddpm", "flow")


def add_gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """z = x + sigma * eps, the single-step denoiser's noising process."""
    return x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def objective_spec(value, where: str = "objective") -> dict:
    """The schema of an objective as checkpoints and trajectory files store it (`to_dict`): its
    name and numbers, each in its range; raises `SchemaError` naming the field."""
    name = schema.record({"name": schema.text(OBJECTIVES)}, required=("name",))(value, where)["name"]
    if name == "single-step":
        fields = {"sigma": schema.number(*NOISE_SIGMA), "pure_noise": schema.boolean}
    elif name == "flow":
        fields = {"num_ts": schema.number(*FLOW_STEPS, integer=True)}
    else:
        fields = {"schedule": _linear_beta_spec}
    return schema.record({"name": schema.text(OBJECTIVES), **fields})(value, where)


def _linear_beta_spec(value, where: str) -> dict:
    probability = schema.number(0, 1)
    spec = schema.record(
        {
            "kind": schema.text(("linear_beta",)),
            "T": schema.number(*CHAIN_LENGTH, integer=True),
            "beta_start": probability,
            "beta_end": probability,
        }
    )(value, where)
    start, end = spec.get("beta_start", DEFAULT_BETA_START), spec.get("beta_end", DEFAULT_BETA_END)
    if not 0 < start <= end < 1:
        raise schema.SchemaError(where, f"expected 0 < beta_start <= beta_end < 1, got {start:g} and {end:g}")
    return spec


def objective_from_dict(spec: dict) -> Objective:
    """The objective `spec` describes; raises `SchemaError` (a ValueError) for a malformed one."""
    spec = objective_spec(spec)
    name = spec["name"]
    if name == "single-step":
        return SingleStepObjective(spec.get("sigma", DEFAULT_SIGMA), spec.get("pure_noise", False))
    if name == "ddpm":
        schedule = spec.get("schedule", {})
        return DDPMObjective(
            LinearBetaSchedule.create(
                schedule.get("T", DEFAULT_T),
                float(schedule.get("beta_start", DEFAULT_BETA_START)),
                float(schedule.get("beta_end", DEFAULT_BETA_END)),
            )
        )
    return FlowObjective(spec.get("num_ts", DEFAULT_FLOW_STEPS))


# --- the sampler, composed once for every model trained here -----------------------------------------


def algorithm_name(objective: Objective, guided: bool) -> str:
    """What a run's record calls its algorithm: the objective's name, "+cfg" when guided."""
    return objective.name + ("+cfg" if guided else "")


def class_guided_estimate(
    predict: Predictor,
    objective: Objective,
    labels: torch.Tensor | None = None,
    num_classes: int = 0,
    guidance: float = 1.0,
):
    """`predict` as the loop's noise estimate: plain, or with `labels` (one per sample) guided by
    CFG at `guidance`, the null (all-zero) class as the unconditional pass."""
    if labels is None:
        return PlainEstimate(predict)
    cond = one_hot(labels, num_classes)
    name = "v" if objective.noise_field == "v_hat" else "eps"
    return ClassifierFreeGuidance(predict, cond, torch.zeros_like(cond), guidance, name=name)


def compose_sampler(
    predict: Predictor,
    objective: Objective,
    x_start: torch.Tensor,
    generator: torch.Generator,
    *,
    labels: torch.Tensor | None = None,
    num_classes: int = 0,
    guidance: float = 1.0,
    steps: int | None = None,
    sigma: float | None = None,
    sampler: str | None = None,
    eta: float | None = None,
    x0_range: tuple[float, float] | None = None,
) -> Iterator[Frame]:
    """The frames of one run: the objective's timesteps walked by its step rule for `sampler`
    (None: its own), on the class-guided (or plain) estimate. MNIST's UNets and the 2D lab's
    networks and exact fields all sample through here."""
    estimate = class_guided_estimate(predict, objective, labels, num_classes, guidance)
    rule = objective.step_rule(sampler, eta=eta, x0_range=x0_range)
    return run_sampler(x_start, objective.timesteps(steps, sigma), estimate, rule, generator)
