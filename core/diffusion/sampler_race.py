"""The sampler race's measurements: when each run's picture is decided.

For every frame of a run, the distance of its clean estimate x̂₀ to the run's final image (the
root-mean-square over pixels, averaged over the run's images), against the step and against the
model evaluations spent (NFE). A sampler whose curve falls early has decided the picture early;
DDPM's falls late, because it adds fresh noise until the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from diffusion_stepper.core.diffusion.labels import sampler_label
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.run_meta import RunMeta


@dataclass
class ConvergenceCurve:
    label: str
    steps: list[int]
    nfe: list[int]
    distance: list[float]  # RMS distance of x̂₀ to the final image, per frame


def run_label(meta: RunMeta) -> str:
    """ "DDIM η=0 · 10 steps": what tells a race's runs apart."""
    title = sampler_label(meta) or meta.algorithm or "run"
    return f"{title} · {meta.steps} steps" if meta.steps is not None else title


def note_same_updates(labels: Sequence[str], metas: Sequence[RunMeta]) -> list[str]:
    """The runs' labels, Euler's saying "= DDIM η=0" where both race on an ε-model: Euler on the
    probability-flow ODE takes DDIM η = 0's very step (in σ-space), so their curves coincide."""

    def is_run(meta: RunMeta, sampler: str) -> bool:
        eta_ok = sampler != "ddim" or meta.eta in (None, 0)  # unset: DDIM's default, 0
        return meta.family == "ddpm" and meta.sampler == sampler and eta_ok

    both = any(is_run(meta, "ddim") for meta in metas) and any(is_run(meta, "euler") for meta in metas)
    return [f"{label} (= DDIM η=0)" if both and is_run(meta, "euler") else label for label, meta in zip(labels, metas)]


def x0_convergence(trajectory: Trajectory, label: str | None = None) -> ConvergenceCurve:
    final = trajectory.final_sample
    steps, nfe, distance = [], [], []
    for frame in trajectory:
        steps.append(frame.index)
        nfe.append(int(frame.coeffs.get("nfe", frame.index)))
        per_image = (frame.x0_hat - final).pow(2).flatten(1).mean(1).sqrt()
        distance.append(float(per_image.mean()))
    return ConvergenceCurve(label or run_label(trajectory.run_meta), steps, nfe, distance)
