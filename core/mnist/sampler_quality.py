"""Sample quality against the sampling budget: each sampler at NFE 5, 10, 20, 50, 100.

For a class-conditioned model, every sampler that suits it draws `per_class` digits of each
class at each budget (the most steps the budget buys), all from the same seed. The judge
(core/mnist/judge.py) reads each batch: the share it reads as the digit asked for, and the
Fréchet distance to the test set, beside the floor of as many real digits. The same rows feed
the CSV, the plot and `bench/RESULTS.md`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from diffusion_stepper.core.devices import resolve_device
from diffusion_stepper.core.diffusion.objectives import FlowObjective
from diffusion_stepper.core.diffusion.rules.catalogue import (
    check_sampler_choice,
    evaluations_for_steps,
    sampler_title,
    steps_for_budget,
)
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.formats.charts import Chart, Series, charts_side_by_side, write_csv, write_png
from diffusion_stepper.core.frames import last_frame
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint
from diffusion_stepper.core.mnist.judge import Judge
from diffusion_stepper.core.mnist.sampling import DEFAULT_CHECKPOINT, SampleRequest, start_sampling

QUALITY_BUDGETS = (5, 10, 20, 50, 100)
QUALITY_PER_CLASS = 50  # 500 digits per point, as the bench records
APP_PER_CLASS = 20  # the app's one click: 200 digits per point, a few minutes on a laptop CPU


@dataclass
class QualityRow:
    sampler: str
    guidance: float
    nfe_budget: int
    steps: int
    nfe: int  # what the run spent (ε-Heun spends one less than an even budget)
    samples: int
    accuracy: float
    fd: float
    fd_real: float
    seconds: float


@dataclass
class QualityRequest:
    checkpoint: str = DEFAULT_CHECKPOINT
    samplers: Sequence[str] | None = None  # default: every sampler that suits the model
    budgets: Sequence[int] = QUALITY_BUDGETS
    per_class: int = QUALITY_PER_CLASS
    guidance: float | None = None  # default: the sampler's default CFG scale
    seed: int = 0
    device: str = "auto"
    data_dir: str | None = None


@dataclass
class QualityPlan:
    model: str
    flow: bool
    points: list[tuple[str, int, int]]  # (sampler, NFE budget, steps)


def quality_plan(request: QualityRequest) -> QualityPlan:
    """What the measurement will sample, checked before any sampling starts."""

    checkpoint = load_checkpoint(request.checkpoint, resolve_device(request.device))
    if not checkpoint.is_class_conditioned:
        raise UserFacingError(f"quality against NFE judges digits by class: {checkpoint.name} is not class-conditioned")
    objective = checkpoint.objective
    flow = isinstance(objective, FlowObjective)
    samplers = list(request.samplers or objective.samplers)
    if not request.budgets or min(request.budgets) < 1:
        raise UserFacingError(f"NFE budgets must be positive numbers, got {list(request.budgets)}")
    for name in samplers:
        check_sampler_choice(name, None, objective.samplers, checkpoint.name)
    points = [(name, budget, steps_for_budget(name, budget, flow)) for name in samplers for budget in request.budgets]
    too_long = [(name, budget) for name, budget, steps in points if not flow and steps > objective.default_steps]
    if too_long:  # a DDPM chain of T steps cannot take more; a budget some samplers skip would leave holes
        name, budget = too_long[0]
        raise UserFacingError(
            f"NFE budget {budget} is more than {checkpoint.name}'s chain of T = {objective.default_steps} steps "
            f"lets {name} spend; use budgets up to {objective.default_steps}"
        )
    return QualityPlan(checkpoint.name, flow, points)


def quality_points(request: QualityRequest, plan: QualityPlan, judge: Judge | None = None) -> Iterator[QualityRow]:
    """One row per point of the plan, as each finishes (for progress bars)."""
    judge = judge or Judge(data_dir=request.data_dir, seed=request.seed)
    for name, budget, steps in plan.points:
        started = time.perf_counter()
        run = start_sampling(
            SampleRequest(
                request.checkpoint,
                per_class=request.per_class,
                guidance=request.guidance,
                steps=steps,
                seed=request.seed,
                device=request.device,
                sampler=name,
                eta=0.0 if name == "ddim" else None,
            )
        )
        figures = judge.score(last_frame(run.frames).x_t, run.labels)
        yield QualityRow(
            sampler=name,
            guidance=run.run_meta.guidance,
            nfe_budget=budget,
            steps=steps,
            nfe=evaluations_for_steps(name, steps, plan.flow),
            samples=figures.count,
            accuracy=figures.accuracy,
            fd=figures.fd,
            fd_real=figures.fd_real,
            seconds=time.perf_counter() - started,
        )


def quality_charts(rows: Sequence[QualityRow], model: str, flow: bool) -> list:
    samplers = list(dict.fromkeys(row.sampler for row in rows))

    def series(value: Callable[[QualityRow], float]) -> list[Series]:
        return [
            Series(
                sampler_title(name, flow, 0.0 if name == "ddim" else None),
                [row.nfe for row in rows if row.sampler == name],
                [value(row) for row in rows if row.sampler == name],
            )
            for name in samplers
        ]

    if rows:
        model = f"{model}, γ = {rows[0].guidance:g}"
    floor = rows[0].fd_real if rows else 0.0
    count = rows[0].samples if rows else 0
    lowest = min((row.accuracy for row in rows), default=0.0)
    return [
        Chart(
            f"{model}: read as the digit asked for",
            "model evaluations (NFE)",
            "share of digits (judge)",
            series(lambda row: row.accuracy),
            log_x=True,
            y_range=(max(0.0, math.floor(lowest * 10 - 1) / 10), 1.0),  # zoomed in: samplers differ by a few %
        ),
        Chart(
            f"{model}: Fréchet distance to the test set",
            "model evaluations (NFE)",
            "FD (judge features; lower is better)",
            series(lambda row: row.fd),
            log_x=True,
            horizontal_lines=[(f"{count} real digits: {floor:.2f}", floor)],
        ),
    ]


def write_quality(rows: Sequence[QualityRow], out_dir: str | Path, model: str, flow: bool) -> tuple[Path, Path]:
    """sampler-quality.csv and sampler-quality.png in `out_dir`."""
    folder = Path(out_dir)
    table = [
        {key: (f"{value:.6g}" if isinstance(value, float) else value) for key, value in asdict(row).items()}
        for row in rows
    ]
    csv_path = write_csv(table, folder / "sampler-quality.csv")
    png_path = write_png(charts_side_by_side(quality_charts(rows, model, flow)), folder / "sampler-quality.png")
    return csv_path, png_path
