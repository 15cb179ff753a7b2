"""Noise schedules and time grids: the "schedule" piece of every sampler.

Indexing follows the course's Algorithms 1-4: timesteps run 0..T, t = 0 is clean data, and
beta_1..beta_T are evenly spaced from `beta_start` to `beta_end`. Index 0 holds beta_0 = 0 so
that alpha_bar_0 = 1 and `alpha_bars[t]` can be read with the course's own t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEFAULT_T = 300
DEFAULT_BETA_START = 1e-4
DEFAULT_BETA_END = 0.02
DEFAULT_FLOW_STEPS = 50


@dataclass(frozen=True)
class DiscreteSchedule:
    """alpha_bar_t for integer t, from any source (a linear-beta recipe, IF's scheduler)."""

    alpha_bars: torch.Tensor  # float64, indexed by t

    @property
    def T(self) -> int:  # noqa: N802 - the course's name for the chain's length
        return self.alpha_bars.shape[0] - 1

    def alpha_bar(self, t: int) -> float:
        """alpha_bar_t; a negative t means "past the end of the chain": clean data, alpha_bar = 1."""
        return 1.0 if t < 0 else float(self.alpha_bars[t])


@dataclass(frozen=True)
class LinearBetaSchedule(DiscreteSchedule):
    """The DDPM recipe of CS180 part B: beta_t linear from beta_start to beta_end over T steps."""

    beta_start: float = DEFAULT_BETA_START
    beta_end: float = DEFAULT_BETA_END

    @classmethod
    def create(
        cls, T: int = DEFAULT_T, beta_start: float = DEFAULT_BETA_START, beta_end: float = DEFAULT_BETA_END
    ) -> LinearBetaSchedule:
        if T < 1:
            raise ValueError(f"T must be at least 1, got {T}")
        betas = torch.zeros(T + 1, dtype=torch.float64)
        betas[1:] = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        alpha_bars = torch.cumprod(1.0 - betas, dim=0)
        return cls(alpha_bars=alpha_bars, beta_start=beta_start, beta_end=beta_end)

    @property
    def betas(self) -> torch.Tensor:
        """beta_t for t in 0..T (beta_0 = 0)."""
        return 1.0 - self.alphas

    @property
    def alphas(self) -> torch.Tensor:
        """alpha_t = alpha_bar_t / alpha_bar_{t-1} for t in 0..T (alpha_0 = 1)."""
        shifted = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])
        return self.alpha_bars / shifted

    def to_dict(self) -> dict:
        return {"kind": "linear_beta", "T": self.T, "beta_start": self.beta_start, "beta_end": self.beta_end}


# --- a diffusers scheduler's terms (DeepFloyd IF, any diffusers DDPM/DDIM folder) -----------------

DIFFUSERS_CLEAN_T = -1  # the chain's clean end in diffusers' indexing, where t = 0 is still noised (ᾱ = 1)


def scheduler_schedule(scheduler) -> DiscreteSchedule:
    """A diffusers scheduler's alphas_cumprod as our schedule, indexed by diffusers' t."""
    return DiscreteSchedule(alpha_bars=scheduler.alphas_cumprod.to(torch.float64).cpu())


def scheduler_timesteps(scheduler, steps: int) -> list[int]:
    """The scheduler's own `set_timesteps(steps)` list (its spacing and offset), on a copy:
    set_timesteps changes the scheduler it is called on."""
    copy = type(scheduler).from_config(scheduler.config)
    copy.set_timesteps(int(steps))
    return [int(t) for t in copy.timesteps]


def forward_process(x0: torch.Tensor, alpha_bar: float | torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps: the DDPM forward marginal.

    `alpha_bar` is one number, or one per batch item ([N]) for training on mixed timesteps.
    """
    alpha_bar = torch.as_tensor(alpha_bar, dtype=x0.dtype, device=x0.device)
    if alpha_bar.ndim == 1:
        alpha_bar = alpha_bar.view(-1, *([1] * (x0.ndim - 1)))
    return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * noise


def strided_timesteps(start: int = 990, stride: int = 30, end: int = 0) -> list[int]:
    """The course's strided list for part A: 990, 960, ..., 0 (always ending exactly at `end`)."""
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    if start < end:
        raise ValueError(f"start ({start}) must not be below end ({end})")
    steps = list(range(start, end, -stride))
    steps.append(end)
    return steps


def evenly_spaced_timesteps(T: int, num_steps: int) -> list[int]:
    """num_steps + 1 integer timesteps from T down to 0, as evenly spaced as integers allow.

    With num_steps == T this is T, T-1, ..., 0: the full Algorithm 2 loop.
    """
    if not 1 <= num_steps <= T:
        raise ValueError(f"steps must be between 1 and {T}, got {num_steps}")
    grid = torch.linspace(T, 0, num_steps + 1, dtype=torch.float64).round().long()
    return [int(t) for t in grid]


def flow_time_grid(num_ts: int = DEFAULT_FLOW_STEPS) -> list[float]:
    """Flow-matching times 0, 1/num_ts, ..., 1: num_ts Euler steps from noise (t=0) to data (t=1)."""
    if num_ts < 1:
        raise ValueError(f"num_ts must be at least 1, got {num_ts}")
    return [i / num_ts for i in range(num_ts + 1)]
