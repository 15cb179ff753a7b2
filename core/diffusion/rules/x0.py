"""What a step does with its clean estimate and its noise: x̂₀ clipped to the data range
(`StaticClip`, the original DDPM sampler's) or thresholded (`DynamicThreshold`, IF's), as a
diffusers scheduler's config asks (`scheduler_x0_clip`), and DDPM's variance: fixed by the schedule
(part B's β, or the posterior's β̃) or learned by the model (IF)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch


def beta_variance(alpha_bar_t: float, alpha_bar_next: float) -> float:
    """sigma^2 = beta_t, the variance of part B's Algorithm 2 (with beta_t = 1 - alpha_bar_t / alpha_bar_t')."""
    return 1.0 - alpha_bar_t / alpha_bar_next


class FixedVariance:
    """Part B's variance, fixed by the timesteps: sigma^2 = beta_t."""

    def split(self, estimate: torch.Tensor, channels: int) -> tuple[torch.Tensor, None]:
        return estimate, None

    def std(self, alpha_bar_t: float, alpha_bar_next: float, model_variance: None) -> float:
        return math.sqrt(beta_variance(alpha_bar_t, alpha_bar_next))


class PosteriorVariance:
    """The posterior's variance, sigma^2 = beta_tilde = (1 - alpha_bar_t') / (1 - alpha_bar_t) * beta_t
    (diffusers' "fixed_small"), floored at 1e-20 as diffusers floors it (onto clean data, where
    alpha_bar_t' = 1, beta_tilde is 0)."""

    formula = ",   σ² = β̃_t = (1 − ᾱ_t′)/(1 − ᾱ_t)·β_t"

    def split(self, estimate: torch.Tensor, channels: int) -> tuple[torch.Tensor, None]:
        return estimate, None

    def std(self, alpha_bar_t: float, alpha_bar_next: float, model_variance: None) -> float:
        beta = beta_variance(alpha_bar_t, alpha_bar_next)
        return math.sqrt(max((1.0 - alpha_bar_next) / (1.0 - alpha_bar_t) * beta, 1e-20))


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


def scheduler_x0_clip(config: Mapping) -> X0Clip | None:
    """The x̂₀ handling a diffusers DDPM or DDIM scheduler's config (defaults filled in) asks for:
    dynamic thresholding, else the clip to ±clip_sample_range, else none."""
    if config["thresholding"]:
        return DynamicThreshold(float(config["dynamic_thresholding_ratio"]), float(config["sample_max_value"]))
    if config["clip_sample"]:
        return StaticClip(-float(config["clip_sample_range"]), float(config["clip_sample_range"]))
    return None


def x0_clip_name(x0_clip: X0Clip | None) -> str:
    """What a run records as its x̂₀ handling: "dynamic", "static" or "none"."""
    if isinstance(x0_clip, DynamicThreshold):
        return "dynamic"
    return "static" if isinstance(x0_clip, StaticClip) else "none"
