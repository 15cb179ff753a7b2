"""What theory says a frame should look like: noise histograms with their densities, and the
schedule a run followed. Qt-free numbers that the GUI plots and tests check.

The forward marginal of every objective here has the form x_t = a * x0 + b * noise:
  DDPM / IF     a = sqrt(alpha_bar_t), b = sqrt(1 - alpha_bar_t)
  flow          a = t,                 b = 1 - t        (t = 0 is noise, t = 1 is data)
  single-step   a = 1,                 b = sigma    (also the noising process of part B)
so where the clean image x0 is known, the pixel values of x_t follow the mixture of
N(a * x0_i, b^2) over the pixels i of x0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from diffusion_stepper.core.diffusion.objectives import DDPMObjective, objective_from_dict
from diffusion_stepper.core.frames import FORWARD_NOISED, Frame, Trajectory
from diffusion_stepper.core.run_meta import RunMeta

HISTOGRAM_EDGES = np.linspace(-4.0, 4.0, 81)  # wide enough for N(0, 1) and the [0, 1] data range
CURVE_POINTS = 401
CLEAN_EXTRA = "x0"  # the extra image that holds the known clean image, when a run has one
_MIXTURE_LEVELS = 128


def density_histogram(values: torch.Tensor, edges: np.ndarray = HISTOGRAM_EDGES) -> np.ndarray:
    """Counts per bin divided by (all values x bin width): a density, so values outside the edges
    lower the bars instead of being silently renormalized away."""
    flat = values.detach().reshape(-1).cpu().double().numpy()
    counts, _ = np.histogram(flat, bins=edges)
    return counts / (max(flat.size, 1) * np.diff(edges))


def normal_pdf(x: np.ndarray, mean: float | np.ndarray = 0.0, std: float = 1.0) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2.0 * math.pi))


def mixture_density(x: np.ndarray, clean: torch.Tensor, a: float, b: float) -> np.ndarray:
    """The density of a * x0_i + b * N(0, 1) with i a uniformly random pixel of `clean`.

    The pixel values are first binned into a few levels, so this stays fast for big images.
    """
    values = clean.detach().reshape(-1).cpu().double().numpy()
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        return normal_pdf(x, a * low, b)
    counts, edges = np.histogram(values, bins=_MIXTURE_LEVELS, range=(low, high))
    centres = 0.5 * (edges[:-1] + edges[1:])
    weights = counts / counts.sum()
    keep = weights > 0
    return (weights[keep, None] * normal_pdf(x[None, :], a * centres[keep, None], b)).sum(axis=0)


def marginal_coefficients(meta: RunMeta, frame: Frame) -> tuple[float, float] | None:
    """(a, b) with x_t = a * x0 + b * noise at this frame, or None where the run does not say."""
    family = meta.family
    if family == "ddpm":
        alpha_bar = frame.coeffs.get("alpha_bar_t")
        if alpha_bar is None:
            alpha_bar = 1.0 if frame.t <= 0 else None  # the final frame: clean data
        if alpha_bar is None:
            return None
        return math.sqrt(alpha_bar), math.sqrt(max(0.0, 1.0 - alpha_bar))
    if family == "flow":
        return float(frame.t), 1.0 - float(frame.t)
    if family in ("single-step", "noising") and "sigma" in frame.coeffs:
        return 1.0, float(frame.coeffs["sigma"])
    return None


def known_clean_image(trajectory: Trajectory) -> torch.Tensor | None:
    """The clean image a run started from (SDEdit, inpainting, noised test digits), if it has one."""
    for frame in trajectory.frames:
        if CLEAN_EXTRA in frame.extras:
            return frame.extras[CLEAN_EXTRA]
    return None


def starts_from_pure_noise(meta: RunMeta) -> bool:
    return meta.source == "pure noise"


@dataclass
class Curve:
    x: np.ndarray
    y: np.ndarray
    label: str


@dataclass
class FrameHistograms:
    """The histograms of one frame and the densities theory predicts for them."""

    edges: np.ndarray
    x_t: np.ndarray
    noise: np.ndarray | None  # eps_hat or v_hat, whichever the frame has
    noise_name: str | None
    x_t_theory: Curve | None
    noise_theory: Curve | None
    x_t_note: str  # why there is (or is not) a theory curve for x_t


def frame_histograms(trajectory: Trajectory, frame: Frame, edges: np.ndarray = HISTOGRAM_EDGES) -> FrameHistograms:
    grid = np.linspace(edges[0], edges[-1], CURVE_POINTS)
    meta = trajectory.run_meta
    noise_name = frame.noise_field
    is_final = bool(frame.coeffs.get("final"))
    noise_values = None if noise_name is None or is_final else frame.image(noise_name)
    noise_theory = None
    if noise_values is not None and noise_name == "eps_hat":
        # the density of the true noise. The model's ε̂ strays wider where the sampler's x_t is off
        # what it was trained on; guidance barely changes that (MNIST: std 1.68 at γ = 0, 1.83 at γ = 10)
        noise_theory = Curve(grid, normal_pdf(grid), "N(0, 1): the true ε")

    family = meta.family
    clean_name = "x1" if family == "flow" else "x0"  # flow matching: x0 is noise, x1 the data
    x_t_theory, note = None, f"none: {clean_name} is unknown while sampling, so p(x_t) has no closed form"
    coefficients = marginal_coefficients(meta, frame)
    clean = known_clean_image(trajectory)
    if clean is not None and coefficients is not None and coefficients[1] > 0 and frame.coeffs.get(FORWARD_NOISED):
        a, b = coefficients
        x_t_theory = Curve(grid, mixture_density(grid, clean, a, b), f"{a:.2f}·{clean_name} + {b:.2f}·N(0,1)")
        note = f"the forward marginal of the known {clean_name}: {a:.3f}·{clean_name} + {b:.3f}·N(0, 1)"
    elif frame.index == 0 and starts_from_pure_noise(meta):
        x_t_theory = Curve(grid, normal_pdf(grid), "N(0, 1)")
        start = "x_0 ~ N(0, 1) (t = 0)" if family == "flow" else "x_T ~ N(0, 1)"
        note = f"pure noise at the start, {start}"
    elif clean is not None:
        note = "none: this x_t comes from denoising steps, not the forward process"
    elif "density" in frame.extras:  # core.toy2d.runs.DENSITY: a 2D run whose data is a known Gaussian mixture
        if len(meta.classes or ()) == 1:
            note = "the 2D view draws p_t of the class asked for, exactly; guided particles follow another density"
        else:
            note = "p_t is known exactly here: the data is a Gaussian mixture, so the 2D view draws p_t itself"
    return FrameHistograms(
        edges=edges,
        x_t=density_histogram(frame.x_t, edges),
        noise=None if noise_values is None else density_histogram(noise_values, edges),
        noise_name=noise_name,
        x_t_theory=x_t_theory,
        noise_theory=noise_theory,
        x_t_note=note,
    )


@dataclass
class ScheduleCurves:
    """A run's noise schedule over t, for a plot with a cursor at the current step."""

    x_label: str
    curves: list[Curve]
    reversed_time: bool  # True when sampling runs from high t to low t (DDPM, IF)


def no_schedule_reason(meta: RunMeta) -> str:
    """What the schedule plot says for a run that has none."""
    family = meta.family
    if family == "noising":
        return "no schedule: the noise level σ itself is the step"
    if family == "single-step":
        return "no schedule: the single-step denoiser jumps in one step"
    return "no schedule recorded for this run"


def schedule_curves(meta: RunMeta) -> ScheduleCurves | None:
    """alpha_bar_t and sigma_t = sqrt(1 - alpha_bar_t) over t, or the flow's weights; None if the
    run has no schedule (the single-step denoiser)."""

    family = meta.family
    if family == "flow":
        t = np.linspace(0.0, 1.0, CURVE_POINTS)
        return ScheduleCurves(
            "t (0 = noise, 1 = data)", [Curve(t, t, "data weight t"), Curve(t, 1 - t, "noise weight 1 − t")], False
        )
    if family != "ddpm":
        return None
    alpha_bars = meta.alpha_bars  # runs that carry their own (IF)
    if alpha_bars is None:
        spec = meta.objective
        if not spec:
            return None
        objective = objective_from_dict(spec)
        if not isinstance(objective, DDPMObjective):
            return None
        alpha_bars = objective.schedule.alpha_bars.numpy()
    alpha_bars = np.asarray(alpha_bars, dtype=np.float64)
    t = np.arange(alpha_bars.shape[0], dtype=np.float64)
    return ScheduleCurves(
        "t", [Curve(t, alpha_bars, "ᾱ_t"), Curve(t, np.sqrt(1.0 - alpha_bars), "σ_t = √(1 − ᾱ_t)")], True
    )
