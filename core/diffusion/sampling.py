"""One sampling loop, composed from small pieces (see DESIGN.md, "A sampler is a composition").

- a *predictor* maps (x, t, cond) to the model's raw output: an adapter around a network;
- a *noise estimate* turns a predictor into the estimate a step uses: plain, or CFG;
- a *step rule* turns (x_t, estimate) into x_{t'} and the clean estimate x0_hat; a second-order
  rule may evaluate the noise estimate again (Heun, midpoint), and a multistep rule keeps its
  history in the rule object (DPM-Solver++); the lab's rules live in core.diffusion.solvers;
- the *start* is any tensor: pure noise, or a noised image (SDEdit).

Part A adds a per-step projection (inpainting) and more noise estimates (anagrams, hybrids).

`run_sampler` composes them and yields one `Frame` per step. It never writes tensors in place,
so frames can share memory with the loop's tensors on the CPU. Each frame records in its
coefficients `nfe`, the model evaluations spent to reach its x_t (CFG's two passes are one
batched evaluation, so they count once).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch

from diffusion_stepper.core.diffusion.schedules import DiscreteSchedule
from diffusion_stepper.core.frames import Frame, to_cpu
from diffusion_stepper.core.limits import check_guidance
from diffusion_stepper.core.updates import NOISE, NOISE_STD, Term, Update

Predictor = Callable[[torch.Tensor, float, torch.Tensor | None], torch.Tensor]
# (x, t) -> the value a step rule consumes: the noise estimate evaluated again, for rules that
# look at more than one point per step
Evaluate = Callable[[torch.Tensor, float], torch.Tensor]


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
    evaluations: int = 1  # model evaluations the step spent, the first estimate included
    update: Update | None = None  # x_next as terms of what the frame shows (core.updates)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # what the update needs beyond x_t, x̂₀, ε̂/v̂


class StepRule(Protocol):
    noise_field: str  # "eps_hat" or "v_hat"

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        estimate: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult: ...


# --- starts -------------------------------------------------------------------------------------


def pure_noise(shape: Sequence[int], generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator, device=device)


# --- noise estimates ----------------------------------------------------------------------------


class NetworkPredictor:
    """Adapter from the sampler's (x, t, cond) to a trained network's (x, t in [0, 1] as [N, 1],
    one-hot c), the convention of every model trained here (the MNIST UNets, the 2D MLPs): the
    objective says how its timestep becomes the network's time."""

    def __init__(self, model: torch.nn.Module, objective):
        self.model = model
        self.objective = objective

    def __call__(self, x: torch.Tensor, t: float, cond: torch.Tensor | None) -> torch.Tensor:
        network_time = self.objective.network_time(t)
        t_in = None if network_time is None else torch.full((x.shape[0], 1), network_time, device=x.device)
        with torch.no_grad():
            return self.model(x, t_in, cond)


class PlainEstimate:
    """The predictor's output as it is, optionally under one fixed condition."""

    def __init__(self, predict: Predictor, cond: torch.Tensor | None = None):
        self.predict = predict
        self.cond = cond

    def __call__(self, x: torch.Tensor, t: float) -> NoiseEstimate:
        return NoiseEstimate(self.predict(x, t, self.cond))


class ClassifierFreeGuidance:
    """uncond + scale * (cond - uncond), with both passes in one batched forward call.

    `name` prefixes the extras: "eps" gives eps_cond / eps_uncond, "v" gives v_cond / v_uncond,
    and eps_gap / v_gap = |cond − uncond|: where the condition changes the estimate (its mean is
    the coefficient `guidance_gap`, which shows when in the chain guidance acts).
    With `guided_channels`, only the output's first channels are guided and the rest are the
    conditional pass's own: IF's learned-variance channels are not extrapolated (as in diffusers).
    """

    def __init__(
        self,
        predict: Predictor,
        cond: torch.Tensor,
        uncond: torch.Tensor,
        scale: float,
        name: str = "eps",
        guided_channels: int | None = None,
    ):
        check_guidance(scale)
        self.predict = predict
        self.both_conds = torch.cat([cond, uncond])
        self.scale = scale
        self.name = name
        self.guided_channels = guided_channels

    def __call__(self, x: torch.Tensor, t: float) -> NoiseEstimate:
        both = self.predict(torch.cat([x, x]), t, self.both_conds)
        cond_out, uncond_out = both.chunk(2)
        k = self.guided_channels or cond_out.shape[1]
        cond_part, uncond_part = cond_out[:, :k], uncond_out[:, :k]
        difference = cond_part - uncond_part
        guided = torch.cat([uncond_part + self.scale * difference, cond_out[:, k:]], dim=1)
        gap = difference.abs()
        return NoiseEstimate(
            guided,
            extras={f"{self.name}_cond": cond_part, f"{self.name}_uncond": uncond_part, f"{self.name}_gap": gap},
            coeffs={"guidance": self.scale, "guidance_gap": float(gap.float().mean())},
        )


# --- step rules ---------------------------------------------------------------------------------


def beta_variance(alpha_bar_t: float, alpha_bar_next: float) -> float:
    """sigma^2 = beta_t, the variance of part B's Algorithm 2 (with beta_t = 1 - alpha_bar_t / alpha_bar_t')."""
    return 1.0 - alpha_bar_t / alpha_bar_next


class FixedVariance:
    """Part B's variance, fixed by the timesteps: sigma^2 = beta_t."""

    def split(self, estimate: torch.Tensor, channels: int) -> tuple[torch.Tensor, None]:
        return estimate, None

    def std(self, alpha_bar_t: float, alpha_bar_next: float, model_variance: None) -> float:
        return math.sqrt(beta_variance(alpha_bar_t, alpha_bar_next))


class LearnedRangeVariance:
    """IF's learned variance (diffusers' "learned_range"), part A's "add_variance".

    The model outputs twice the image's channels: the noise estimate, then v in [-1, 1], which
    interpolates the log variance between the posterior's beta_tilde (v = -1) and beta (v = 1):

        log sigma^2 = (v + 1)/2 * log beta + (1 - v)/2 * log beta_tilde,
        beta_tilde  = (1 - alpha_bar_t') / (1 - alpha_bar_t) * beta.
    """

    def split(self, estimate: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        if estimate.shape[1] != 2 * channels:
            raise ValueError(f"a learned-variance model outputs {2 * channels} channels, got {estimate.shape[1]}")
        return estimate[:, :channels], estimate[:, channels:]

    def std(self, alpha_bar_t: float, alpha_bar_next: float, model_variance: torch.Tensor) -> torch.Tensor:
        beta = 1.0 - alpha_bar_t / alpha_bar_next
        beta_tilde = max((1.0 - alpha_bar_next) / (1.0 - alpha_bar_t) * beta, 1e-20)  # diffusers' floor
        fraction = (model_variance + 1.0) / 2.0
        log_variance = fraction * math.log(beta) + (1.0 - fraction) * math.log(beta_tilde)
        return torch.exp(0.5 * log_variance)


@dataclass(frozen=True)
class StaticClip:
    """x0_hat clipped to the data range: the original DDPM sampler's "clip_denoised"."""

    low: float
    high: float

    def __call__(self, x0_hat: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return x0_hat.clamp(self.low, self.high), {"x0_clip_low": float(self.low), "x0_clip_high": float(self.high)}


@dataclass(frozen=True)
class DynamicThreshold:
    """Imagen's dynamic thresholding, as IF's scheduler applies it to images in [-1, 1].

    Per image, s is the `ratio` quantile of |x0_hat|, kept within [1, max_value]; x0_hat is then
    clipped to [-s, s] and divided by s. With s = 1 this is the plain clip to [-1, 1].
    """

    ratio: float = 0.95
    max_value: float = 1.5

    def __call__(self, x0_hat: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        flat = x0_hat.float().reshape(x0_hat.shape[0], -1)  # quantile needs float32 or float64
        s = torch.quantile(flat.abs(), self.ratio, dim=1).clamp(1.0, self.max_value).unsqueeze(1)
        thresholded = (torch.clamp(flat, -s, s) / s).reshape(x0_hat.shape).to(x0_hat.dtype)
        return thresholded, {
            "x0_threshold_ratio": self.ratio,
            "x0_threshold_max": self.max_value,
            "x0_threshold_s": float(s.max()),
        }


X0Clip = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


class DDPMStep:
    """The DDPM posterior step from t to t' < t (part A eq. 3, part B Algorithm 2 line 6):

        x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)
        x_t'   = sqrt(abar_t') beta / (1 - abar_t) * x0_hat + sqrt(alpha) (1 - abar_t') / (1 - abar_t) * x_t + sigma z

    with alpha = abar_t / abar_t' and beta = 1 - alpha, so strided timesteps work unchanged.

    - `variance` gives sigma: part B's fixed sigma^2 = beta, or IF's learned range.
    - `x0_clip` (StaticClip, DynamicThreshold) reworks x0_hat before it enters the update;
      without it, this is the course's plain formula.
    - No noise is added on the step that lands on `clean_t`, the chain's clean end: t = 0 in
      part B (the course's indexing), t = -1 for IF (diffusers' indexing, where t = 0 is the
      first noised level and its step still adds noise).
    """

    noise_field = "eps_hat"

    def __init__(
        self,
        schedule: DiscreteSchedule,
        variance: FixedVariance | LearnedRangeVariance | None = None,
        x0_clip: X0Clip | None = None,
        clean_t: int = 0,
    ):
        self.schedule = schedule
        self.variance = variance or FixedVariance()
        self.x0_clip = x0_clip
        self.clean_t = clean_t

    def x0_from_eps(self, x_t: torch.Tensor, eps: torch.Tensor, t: int) -> torch.Tensor:
        alpha_bar_t = self.schedule.alpha_bar(int(t))
        return (x_t - math.sqrt(1.0 - alpha_bar_t) * eps) / math.sqrt(alpha_bar_t)

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        estimate: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult:
        t, t_next = int(t), int(t_next)
        eps, model_variance = self.variance.split(estimate, x_t.shape[1])
        alpha_bar_t = self.schedule.alpha_bar(t)
        alpha_bar_next = self.schedule.alpha_bar(t_next)
        alpha = alpha_bar_t / alpha_bar_next
        beta = 1.0 - alpha
        coef_x0 = math.sqrt(alpha_bar_next) * beta / (1.0 - alpha_bar_t)
        coef_xt = math.sqrt(alpha) * (1.0 - alpha_bar_next) / (1.0 - alpha_bar_t)
        x0_hat = self.x0_from_eps(x_t, eps, t)
        clip_coeffs: dict[str, float] = {}
        if self.x0_clip is not None:
            x0_hat, clip_coeffs = self.x0_clip(x0_hat)
        x_next = coef_x0 * x0_hat + coef_xt * x_t
        terms = [Term(coef_x0, "x0_hat"), Term(coef_xt, "x_t")]
        formula = "x_t′ = √ᾱ_t′·β_t/(1 − ᾱ_t)·x̂₀ + √α_t·(1 − ᾱ_t′)/(1 − ᾱ_t)·x_t"
        sigma: float | torch.Tensor = 0.0
        extras = {}
        if t_next > self.clean_t:
            sigma = self.variance.std(alpha_bar_t, alpha_bar_next, model_variance)
            z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
            x_next = x_next + sigma * z
            if isinstance(sigma, torch.Tensor):  # learned: one σ per pixel, stored to be seen and checked
                terms.append(Term(1.0, NOISE, scale=NOISE_STD))
                extras[NOISE_STD] = sigma.expand_as(x_t)
                formula += " + σ⊙z   (σ learned, per pixel)"
            else:
                terms.append(Term(sigma, NOISE))
                formula += " + σ·z"
        coeffs = {
            "t_next": float(t_next),
            "alpha_bar_t": alpha_bar_t,
            "alpha_bar_next": alpha_bar_next,
            "alpha_t": alpha,
            "beta_t": beta,
            "coef_x0": coef_x0,
            "coef_xt": coef_xt,
            **_sigma_coeffs(sigma),
            **clip_coeffs,
        }
        return StepResult(x_next, x0_hat, eps, coeffs, update=Update(tuple(terms), formula), extras=extras)


def _sigma_coeffs(sigma: float | torch.Tensor) -> dict[str, float]:
    """A fixed sigma as it is; a learned, per-pixel one as its mean and range."""
    if isinstance(sigma, torch.Tensor):
        return {"sigma": float(sigma.mean()), "sigma_min": float(sigma.min()), "sigma_max": float(sigma.max())}
    return {"sigma": float(sigma)}


class EulerFlowStep:
    """One Euler step of the flow ODE from noise (t = 0) to data (t = 1): x_{t+dt} = x_t + dt * v.

    The clean estimate follows the straight path to t = 1: x0_hat = x_t + (1 - t) * v.
    """

    noise_field = "v_hat"

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        v: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult:
        dt = float(t_next) - float(t)
        x0_hat = x_t + (1.0 - float(t)) * v
        update = Update((Term(1.0, "x_t"), Term(dt, "v_hat")), "x_t+Δt = x_t + Δt·v̂")
        return StepResult(x_t + dt * v, x0_hat, v, {"t_next": float(t_next), "dt": dt}, update=update)


class SingleStepDenoise:
    """The single-step denoiser: the model predicts the clean image directly, in one jump.

    Its implied noise estimate is eps = (z - x0_hat) / sigma, with sigma the input's noise level.
    """

    noise_field = "eps_hat"

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        x0_pred: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult:
        sigma = float(t)
        noise_hat = (x_t - x0_pred) / sigma if sigma > 0 else torch.zeros_like(x_t)
        update = Update((Term(1.0, "x0_hat"),), "x̂₀ = D_θ(z): the result is the network's prediction")
        return StepResult(x0_pred, x0_pred, noise_hat, {"sigma": sigma}, update=update)


# --- the loop -----------------------------------------------------------------------------------


def run_sampler(
    x_start: torch.Tensor,
    timesteps: Sequence[float],
    estimate: Callable[[torch.Tensor, float], NoiseEstimate],
    step: StepRule,
    generator: torch.Generator,
    project: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor] | None = None,
) -> Iterator[Frame]:
    """Walk `timesteps` from `x_start`, yielding len(timesteps) frames (the last is the result).

    `project(x_next, t_next, generator)`, when given, reworks each step's result before the next
    step sees it (inpainting keeps the known region).
    """
    reset = getattr(step, "reset", None)
    if reset is not None:
        reset()  # a multistep rule starts each run without history

    def evaluate(x: torch.Tensor, t: float) -> torch.Tensor:
        return estimate(x, t).value

    # after a projection the update holds only where the projection keeps the step's result
    holds_where = getattr(project, "update_holds_where", None)
    x = x_start
    evaluations = 0
    for index in range(len(timesteps) - 1):
        t, t_next = timesteps[index], timesteps[index + 1]
        noise_estimate = estimate(x, t)
        result = step(x, t, t_next, noise_estimate.value, generator, evaluate=evaluate)
        update = result.update
        if update is not None and project is not None:
            update = replace(update, where=holds_where) if holds_where else None
        yield Frame(
            index=index,
            t=t,
            x_t=to_cpu(x),
            x0_hat=to_cpu(result.x0_hat),
            **{step.noise_field: to_cpu(result.noise_hat)},
            coeffs={"t": float(t), "nfe": float(evaluations), **noise_estimate.coeffs, **result.coeffs},
            extras={name: to_cpu(image) for name, image in {**noise_estimate.extras, **result.extras}.items()},
            update=update,
        )
        evaluations += result.evaluations
        x = result.x_next if project is None else project(result.x_next, t_next, generator)
    final = to_cpu(x)
    yield Frame(
        index=len(timesteps) - 1,
        t=timesteps[-1],
        x_t=final,
        x0_hat=final,
        **{step.noise_field: torch.zeros_like(final)},
        coeffs={"t": float(timesteps[-1]), "nfe": float(evaluations), "final": 1.0},
    )
