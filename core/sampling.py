"""One sampling loop, composed from small pieces (see DESIGN.md, "A sampler is a composition").

- a *predictor* maps (x, t, cond) to the model's raw output: an adapter around a network;
- a *noise estimate* turns a predictor into the estimate a step uses: plain, or CFG;
- a *step rule* turns (x_t, estimate) into x_{t'} and the clean estimate x0_hat;
- the *start* is any tensor: pure noise, or a noised image (SDEdit).

Part A adds a per-step projection (inpainting) and more noise estimates (anagrams, hybrids).

`run_sampler` composes them and yields one `Frame` per step. It never writes tensors in place,
so frames can share memory with the loop's tensors on the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Protocol, Sequence

import torch

from core.frames import Frame, to_cpu
from core.schedules import DiscreteSchedule

Predictor = Callable[[torch.Tensor, float, Optional[torch.Tensor]], torch.Tensor]


@dataclass
class NoiseEstimate:
    value: torch.Tensor  # what the step rule consumes: eps, v or x, depending on the model
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    coeffs: dict[str, float] = field(default_factory=dict)


@dataclass
class StepResult:
    x_next: torch.Tensor
    x0_hat: torch.Tensor
    noise_hat: torch.Tensor  # stored in the frame as `eps_hat` or `v_hat`
    coeffs: dict[str, float]


class StepRule(Protocol):
    noise_field: str  # "eps_hat" or "v_hat"

    def __call__(
        self, x_t: torch.Tensor, t: float, t_next: float, estimate: torch.Tensor, generator: torch.Generator
    ) -> StepResult: ...


# --- starts -------------------------------------------------------------------------------------


def pure_noise(shape: Sequence[int], generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator, device=device)


# --- noise estimates ----------------------------------------------------------------------------


class PlainEstimate:
    """The predictor's output as it is, optionally under one fixed condition."""

    def __init__(self, predict: Predictor, cond: Optional[torch.Tensor] = None):
        self.predict = predict
        self.cond = cond

    def __call__(self, x: torch.Tensor, t: float) -> NoiseEstimate:
        return NoiseEstimate(self.predict(x, t, self.cond))


class ClassifierFreeGuidance:
    """uncond + scale * (cond - uncond), with both passes in one batched forward call.

    `name` prefixes the extras: "eps" gives eps_cond / eps_uncond, "v" gives v_cond / v_uncond.
    """

    def __init__(self, predict: Predictor, cond: torch.Tensor, uncond: torch.Tensor, scale: float, name: str = "eps"):
        if scale < 0:
            raise ValueError(f"guidance scale must be >= 0, got {scale}")
        self.predict = predict
        self.both_conds = torch.cat([cond, uncond])
        self.scale = scale
        self.name = name

    def __call__(self, x: torch.Tensor, t: float) -> NoiseEstimate:
        both = self.predict(torch.cat([x, x]), t, self.both_conds)
        cond_out, uncond_out = both.chunk(2)
        guided = uncond_out + self.scale * (cond_out - uncond_out)
        return NoiseEstimate(
            guided,
            extras={f"{self.name}_cond": cond_out, f"{self.name}_uncond": uncond_out},
            coeffs={"guidance": self.scale},
        )


# --- step rules ---------------------------------------------------------------------------------


def beta_variance(alpha_bar_t: float, alpha_bar_next: float) -> float:
    """sigma^2 = beta_t, the variance of part B's Algorithm 2 (with beta_t = 1 - alpha_bar_t / alpha_bar_t')."""
    return 1.0 - alpha_bar_t / alpha_bar_next


class DDPMStep:
    """The DDPM posterior step from t to t' < t (part A eq. 3, part B Algorithm 2 line 6):

        x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)
        x_t'   = sqrt(abar_t') beta / (1 - abar_t) * x0_hat + sqrt(alpha) (1 - abar_t') / (1 - abar_t) * x_t + sigma z

    with alpha = abar_t / abar_t' and beta = 1 - alpha, so strided timesteps work unchanged.
    No noise is added on the step that lands on t' = 0 (or past the chain's end).

    With `x0_range`, x0_hat is clipped to the data range before it enters the update (the
    original DDPM sampler's "clip_denoised"); without it, this is the course's plain formula.
    """

    noise_field = "eps_hat"

    def __init__(
        self,
        schedule: DiscreteSchedule,
        variance: Callable[[float, float], float] = beta_variance,
        x0_range: Optional[tuple[float, float]] = None,
    ):
        self.schedule = schedule
        self.variance = variance
        self.x0_range = x0_range

    def x0_from_eps(self, x_t: torch.Tensor, eps: torch.Tensor, t: int) -> torch.Tensor:
        alpha_bar_t = self.schedule.alpha_bar(int(t))
        return (x_t - math.sqrt(1.0 - alpha_bar_t) * eps) / math.sqrt(alpha_bar_t)

    def __call__(
        self, x_t: torch.Tensor, t: float, t_next: float, eps: torch.Tensor, generator: torch.Generator
    ) -> StepResult:
        t, t_next = int(t), int(t_next)
        alpha_bar_t = self.schedule.alpha_bar(t)
        alpha_bar_next = self.schedule.alpha_bar(t_next)
        alpha = alpha_bar_t / alpha_bar_next
        beta = 1.0 - alpha
        coef_x0 = math.sqrt(alpha_bar_next) * beta / (1.0 - alpha_bar_t)
        coef_xt = math.sqrt(alpha) * (1.0 - alpha_bar_next) / (1.0 - alpha_bar_t)
        x0_hat = self.x0_from_eps(x_t, eps, t)
        if self.x0_range is not None:
            x0_hat = x0_hat.clamp(*self.x0_range)
        x_next = coef_x0 * x0_hat + coef_xt * x_t
        sigma = 0.0
        if t_next > 0:
            sigma = math.sqrt(self.variance(alpha_bar_t, alpha_bar_next))
            z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
            x_next = x_next + sigma * z
        coeffs = {
            "t_next": float(t_next),
            "alpha_bar_t": alpha_bar_t,
            "alpha_bar_next": alpha_bar_next,
            "alpha_t": alpha,
            "beta_t": beta,
            "coef_x0": coef_x0,
            "coef_xt": coef_xt,
            "sigma": sigma,
        }
        if self.x0_range is not None:
            coeffs["x0_clip_low"], coeffs["x0_clip_high"] = map(float, self.x0_range)
        return StepResult(x_next, x0_hat, eps, coeffs)


class EulerFlowStep:
    """One Euler step of the flow ODE from noise (t = 0) to data (t = 1): x_{t+dt} = x_t + dt * v.

    The clean estimate follows the straight path to t = 1: x0_hat = x_t + (1 - t) * v.
    """

    noise_field = "v_hat"

    def __call__(
        self, x_t: torch.Tensor, t: float, t_next: float, v: torch.Tensor, generator: torch.Generator
    ) -> StepResult:
        dt = float(t_next) - float(t)
        x0_hat = x_t + (1.0 - float(t)) * v
        return StepResult(x_t + dt * v, x0_hat, v, {"t_next": float(t_next), "dt": dt})


class SingleStepDenoise:
    """The single-step denoiser: the model predicts the clean image directly, in one jump.

    Its implied noise estimate is eps = (z - x0_hat) / sigma, with sigma the input's noise level.
    """

    noise_field = "eps_hat"

    def __call__(
        self, x_t: torch.Tensor, t: float, t_next: float, x0_pred: torch.Tensor, generator: torch.Generator
    ) -> StepResult:
        sigma = float(t)
        noise_hat = (x_t - x0_pred) / sigma if sigma > 0 else torch.zeros_like(x_t)
        return StepResult(x0_pred, x0_pred, noise_hat, {"sigma": sigma})


# --- the loop -----------------------------------------------------------------------------------


def run_sampler(
    x_start: torch.Tensor,
    timesteps: Sequence[float],
    estimate: Callable[[torch.Tensor, float], NoiseEstimate],
    step: StepRule,
    generator: torch.Generator,
) -> Iterator[Frame]:
    """Walk `timesteps` from `x_start`, yielding len(timesteps) frames (the last is the result)."""
    x = x_start
    for index in range(len(timesteps) - 1):
        t, t_next = timesteps[index], timesteps[index + 1]
        noise_estimate = estimate(x, t)
        result = step(x, t, t_next, noise_estimate.value, generator)
        yield Frame(
            index=index,
            t=t,
            x_t=to_cpu(x),
            x0_hat=to_cpu(result.x0_hat),
            **{step.noise_field: to_cpu(result.noise_hat)},
            coeffs={"t": float(t), **noise_estimate.coeffs, **result.coeffs},
            extras={name: to_cpu(image) for name, image in noise_estimate.extras.items()},
        )
        x = result.x_next
    final = to_cpu(x)
    yield Frame(
        index=len(timesteps) - 1,
        t=timesteps[-1],
        x_t=final,
        x0_hat=final,
        **{step.noise_field: torch.zeros_like(final)},
        coeffs={"t": float(timesteps[-1]), "final": 1.0},
    )
