"""The guidance trade-off as an instrument: one seed, a sweep of CFG scales γ, and for each the
three numbers every lecture on CFG stops at, measured by the judge (core/mnist/judge.py):

- **right digit**: the share of digits the judge reads as the class asked for (rises with γ);
- **diversity**: within each digit as the judge reads it, the mean pairwise distance of the
  judge's features, averaged over the digits (falls with γ), beside the same for as many real
  digits of each class. Grouped by the digit read, not the one asked for: below γ = 1 many samples
  are another digit, and grouping by the class asked would measure how classes mix instead;
- **FD**: the Fréchet distance to the test set, beside the floor of as many real digits.

The CLI (`experiment mnist guidance-tradeoff`) and the app (Experiments ▸ Guidance trade-off…)
write the same rows, CSV and picture.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from diffusion_stepper.core.diffusion.rules.catalogue import sampler_title
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.formats.charts import Chart, Series, charts_side_by_side, write_csv, write_png
from diffusion_stepper.core.frames import last_frame
from diffusion_stepper.core.limits import check_guidance_sweep
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint
from diffusion_stepper.core.mnist.judge import Judge
from diffusion_stepper.core.mnist.sampling import DEFAULT_CHECKPOINT, SampleRequest, start_sampling

TRADEOFF_GUIDANCES = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0)
TRADEOFF_PER_CLASS = 20
# The sweep's sampler unless told otherwise: 10 evaluations each, so eight scales take under a
# minute on a laptop CPU, and on the bundled models as good at γ = 1 as their own defaults at 20
# (bench/RESULTS.md, "Better bundled models": FD 1.38× real for the DDPM model, 0.97× for flow).
# Not a deterministic solver for DDPM models: on the course's schedule they start from the wrong noise.
FAST_SAMPLERS = {"ddpm": ("dpm++2m-sde", 10), "flow": ("midpoint", 5)}


def default_sampler_text() -> str:
    """The sweep's default samplers in words, for help texts: "DPM-Solver++(2M) SDE, 10 steps, for DDPM models; ..."."""
    kinds = {"ddpm": "DDPM", "flow": "flow"}
    return "; ".join(
        f"{sampler_title(name, objective == 'flow')}, {steps} steps, for {kinds[objective]} models"
        for objective, (name, steps) in FAST_SAMPLERS.items()
    )


@dataclass
class TradeoffRequest:
    checkpoint: str = DEFAULT_CHECKPOINT
    guidances: Sequence[float] = TRADEOFF_GUIDANCES
    per_class: int = TRADEOFF_PER_CLASS
    sampler: str | None = None  # default: FAST_SAMPLERS for the model's objective
    steps: int | None = None
    seed: int = 0
    device: str = "auto"
    data_dir: str | None = None

    def __post_init__(self) -> None:
        check_guidance_sweep(self.guidances)

    def sample_request(self, guidance: float, objective: str) -> SampleRequest:
        """The run behind one point (the app opens it in Compare): the same seed for every γ."""
        sampler, steps = FAST_SAMPLERS.get(objective, (None, None))
        return SampleRequest(
            self.checkpoint,
            per_class=self.per_class,
            guidance=guidance,
            sampler=self.sampler or sampler,
            steps=self.steps or (None if self.sampler else steps),
            eta=0.0 if (self.sampler or sampler) == "ddim" else None,
            seed=self.seed,
            device=self.device,
        )


@dataclass
class TradeoffRow:
    guidance: float
    samples: int
    accuracy: float
    diversity: float
    diversity_real: float
    fd: float
    fd_real: float
    sampler: str
    steps: int
    seconds: float


def diversity_within_classes(features: torch.Tensor, labels: torch.Tensor) -> float:
    """The mean pairwise distance of features within each class, averaged over the classes."""
    spreads = []
    for label in labels.unique():
        members = features[labels == label]
        count = members.shape[0]
        if count < 2:
            continue
        distances = torch.cdist(members, members)
        spreads.append(float(distances.sum() / (count * (count - 1))))  # the diagonal is zero
    if not spreads:
        raise UserFacingError("diversity needs at least two digits of a class: use a larger --per-class")
    return sum(spreads) / len(spreads)


def real_diversity(judge: Judge, per_class: int) -> float:
    """The same measure on `per_class` real training digits of each class: where samples should be."""
    images, labels = judge.real_digits(per_class)
    return diversity_within_classes(torch.from_numpy(judge.features(images)), labels)


def objective_of(checkpoint: str, device: str = "cpu") -> str:
    loaded = load_checkpoint(checkpoint, device)
    if not loaded.is_class_conditioned:
        raise UserFacingError(f"the guidance trade-off needs a class-conditioned model; {loaded.name} is not one")
    return loaded.objective.name


def tradeoff_points(request: TradeoffRequest, judge: Judge | None = None) -> Iterator[TradeoffRow]:
    """One row per γ, as each finishes (for progress bars)."""
    objective = objective_of(request.checkpoint)
    judge = judge or Judge(data_dir=request.data_dir, seed=request.seed)
    diversity_real = real_diversity(judge, request.per_class)
    for guidance in request.guidances:
        started = time.perf_counter()
        run = start_sampling(request.sample_request(guidance, objective))
        final = last_frame(run.frames).x_t
        figures = judge.score(final, run.labels)
        pictures = final.clamp(0, 1)
        features = torch.from_numpy(judge.features(pictures))
        yield TradeoffRow(
            guidance=float(guidance),
            samples=figures.count,
            accuracy=figures.accuracy,
            diversity=diversity_within_classes(features, judge.predictions(pictures)),
            diversity_real=diversity_real,
            fd=figures.fd,
            fd_real=figures.fd_real,
            sampler=run.run_meta.sampler,
            steps=run.run_meta.steps,
            seconds=time.perf_counter() - started,
        )


def tradeoff_charts(rows: Sequence[TradeoffRow], model: str) -> list[Chart]:
    guidances = [row.guidance for row in rows]
    setting = f"{model} · {sampler_title(rows[0].sampler)} · {rows[0].steps} steps" if rows else model
    count = rows[0].samples if rows else 0

    def line(values: list[float]) -> list[Series]:
        return [Series(setting, guidances, values)]

    return [
        Chart(
            "Right digit (judge)",
            "guidance scale γ",
            "share read as the digit asked for",
            line([row.accuracy for row in rows]),
            y_range=(max(0.0, math.floor(min((r.accuracy for r in rows), default=0) * 10 - 1) / 10), 1.0),
        ),
        Chart(
            "Diversity within each digit (as read)",
            "guidance scale γ",
            "mean pairwise feature distance",
            line([row.diversity for row in rows]),
            horizontal_lines=[(f"real digits: {rows[0].diversity_real:.2f}", rows[0].diversity_real)] if rows else [],
        ),
        Chart(
            "Fréchet distance to the test set",
            "guidance scale γ",
            "FD (lower is better)",
            line([row.fd for row in rows]),
            horizontal_lines=[(f"{count} real digits: {rows[0].fd_real:.1f}", rows[0].fd_real)] if rows else [],
        ),
    ]


def tradeoff_picture(rows: Sequence[TradeoffRow], model: str):
    return charts_side_by_side(tradeoff_charts(rows, model), width=1920, height=640)


def write_tradeoff(rows: Sequence[TradeoffRow], out_dir: str | Path, model: str) -> tuple[Path, Path]:
    """guidance-tradeoff.csv and guidance-tradeoff.png in `out_dir`."""
    folder = Path(out_dir)
    table = [
        {key: (f"{value:.6g}" if isinstance(value, float) else value) for key, value in asdict(row).items()}
        for row in rows
    ]
    csv_path = write_csv(table, folder / "guidance-tradeoff.csv")
    return csv_path, write_png(tradeoff_picture(rows, model), folder / "guidance-tradeoff.png")
