"""The sampler race's chart: each run's x̂₀ distance to its own final image against NFE and
against t, as a PNG beside a CSV of the same rows (core.diffusion.sampler_race measures them)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from diffusion_stepper.core.diffusion.sampler_race import ConvergenceCurve, note_same_updates, run_label, x0_convergence
from diffusion_stepper.core.formats.charts import Chart, Series, charts_side_by_side, write_csv, write_png
from diffusion_stepper.core.frames import Trajectory


def convergence_rows(curves: Sequence[ConvergenceCurve]) -> list[dict]:
    """One CSV row per frame of each run."""
    return [
        {"run": curve.label, "step": step, "nfe": nfe, "x0_distance_to_final": f"{distance:.6g}"}
        for curve in curves
        for step, nfe, distance in zip(curve.steps, curve.nfe, curve.distance)
    ]


def convergence_charts(curves: Sequence[ConvergenceCurve]) -> list[Chart]:
    """The same curves against NFE (how the race is fair) and against the step."""
    y_label = "RMS distance of x̂₀ to the final image"
    return [
        Chart(
            "When is the picture decided? x̂₀ against NFE",
            "model evaluations (NFE)",
            y_label,
            [Series(curve.label, curve.nfe, curve.distance) for curve in curves],
        ),
        Chart(
            "x̂₀ against the step",
            "step",
            y_label,
            [Series(curve.label, curve.steps, curve.distance) for curve in curves],
        ),
    ]


def write_convergence(
    trajectories: Sequence[Trajectory], png_path: str | Path, labels: Sequence[str] | None = None
) -> tuple[Path, Path]:
    """The runs' curves as a PNG at `png_path` and their numbers as a CSV beside it (same name)."""
    metas = [trajectory.run_meta for trajectory in trajectories]
    labels = note_same_updates(labels or [run_label(meta) for meta in metas], metas)
    curves = [x0_convergence(trajectory, label) for trajectory, label in zip(trajectories, labels)]
    png_path = Path(png_path)
    csv_path = write_csv(convergence_rows(curves), png_path.with_suffix(".csv"))
    return csv_path, write_png(charts_side_by_side(convergence_charts(curves)), png_path)
