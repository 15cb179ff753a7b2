"""The Train tab's Quick preset: digits from scratch within a minute on a laptop CPU?

    python bench/quick_training.py [--skip-series] [--series-seconds 60] [--per-digit 10] [--limit N] \\
        [--keep-epochs N]

1. The goal. `diffusion-stepper train mnist --preset quick --out DIR` runs as a new process with a
   fresh, empty home folder (so MNIST comes from the copy bundled with the app), timed from launch
   to exit, torch import included. Its last checkpoint is sampled at γ = 5 with its default steps,
   10 samples per digit (`--per-digit`), at sampling seeds 0-4, and the judge (the small CNN
   bundled with the app, >= 99% test accuracy) reads them. Goal: the whole process <= 60 s, and
   the worst seed's samples read as the right digit >= 97% of the time (issue 31).
   Then the run is kept training (`--resume DIR --epochs +N`: the Train tab's Keep training, N the
   epochs a minute takes at its pace) and the time curve is drawn: at 10, 20, 30, 45 and 60 s
   from the launch, the last checkpoint written by then (the kept run's clock starts where the
   first process ended), judged at seeds 0-4, mean and worst.

2. The curve, beside the course recipe (the baseline). Each recipe trains in this process for 60 s
   of training with a sample grid drawn every 15 s, and at each epoch's end, 10 of each digit at
   γ = 5 (quick: the grid steps of its Train tab; course: 50 strided DDPM steps, as its epoch
   grids); the judge reads each grid. The clock is the Train tab's: training, epoch grids and
   checkpoints, but not the time spent drawing these mid-epoch grids.

`--limit N` trains on the first N digits only, in both parts: a try of the script (with a small
`--per-digit` and `--series-seconds 0`), not a figure.
Prints rows for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from console import run_console

from diffusion_stepper.core.frames import last_frame
from diffusion_stepper.core.mnist.checkpoints import saved_epochs
from diffusion_stepper.core.mnist.data import load_mnist
from diffusion_stepper.core.mnist.judge import accuracy, batched, load_judge
from diffusion_stepper.core.mnist.recipes import preset_config
from diffusion_stepper.core.mnist.sampling import SampleRequest, start_sampling
from diffusion_stepper.core.mnist.training import LossEvent, PreviewEvent, train

PER_DIGIT = 10
GUIDANCE = 5.0
SAMPLING_SEEDS = (0, 1, 2, 3, 4)  # a lecturer gets one sample: the last checkpoint is judged at each
CURVE_SECONDS = (10, 20, 30, 45, 60)  # the time curve's marks, from the launch
GOAL_SECONDS, GOAL_ACCURACY = 60.0, 0.97


def judge_accuracy(judge, samples: torch.Tensor, labels: torch.Tensor) -> float:
    return float((batched(judge, samples).argmax(1) == labels).float().mean())


def judge_checkpoint(judge, checkpoint: Path, per_digit: int = PER_DIGIT, seed: int = 0) -> float:
    """Sample a checkpoint as `sample mnist --seed SEED` does (γ = 5, its default steps) and judge it."""
    run = start_sampling(
        SampleRequest(checkpoint=str(checkpoint), per_class=per_digit, guidance=GUIDANCE, device="cpu", seed=seed)
    )
    return judge_accuracy(judge, last_frame(run.frames).x_t.clamp(0, 1), run.labels)


def goal_run(judge, limit: int | None = None, per_digit: int = PER_DIGIT, keep_epochs: int | None = None) -> list[str]:
    """The CLI's quick preset, timed as a whole process from a fresh home folder; then kept
    training (`--epochs +N`, the Train tab's Keep training) past the last mark of the time curve."""
    with tempfile.TemporaryDirectory() as home:
        out = Path(home) / "quick-run"
        extra = ["--limit", str(limit)] if limit else []
        started = time.time()
        wall = run_console(["train", "mnist", "--preset", "quick", "--out", str(out), *extra], home)
        first_epochs = saved_epochs(out)
        saved_at = {epoch: sidecar.stat().st_mtime - started for epoch, sidecar in first_epochs.items()}
        # Kept training until past the curve's last mark, at the first run's pace (and one epoch more)
        per_epoch = max(saved_at.values()) / len(saved_at)
        more = keep_epochs or max(1, math.ceil((CURVE_SECONDS[-1] - wall) / per_epoch) + 1)
        kept_started = time.time()
        keep_training = ["train", "mnist", "--resume", str(out), "--epochs", f"+{more}", "--out", str(out)]
        kept_wall = run_console(keep_training, home)
        for epoch, sidecar in saved_epochs(out).items():
            if epoch not in saved_at:  # on the clock after the first run's whole process
                saved_at[epoch] = wall + sidecar.stat().st_mtime - kept_started
        checkpoints = saved_epochs(out)
        judged: dict[int, list[float]] = {}

        def by_seed(epoch: int) -> list[float]:
            if epoch not in judged:
                judged[epoch] = [judge_checkpoint(judge, checkpoints[epoch], per_digit, s) for s in SAMPLING_SEEDS]
            return judged[epoch]

        last = max(first_epochs)
        shares = by_seed(last)
        curve = []
        for mark in CURVE_SECONDS:
            ready = [epoch for epoch, at in saved_at.items() if at <= mark]
            if ready:
                epoch = max(ready)
                figures = by_seed(epoch)
                curve.append(f"{mark} s: epoch {epoch}, mean {np.mean(figures):.1%}, worst {min(figures):.0%}")
            else:
                curve.append(f"{mark} s: no checkpoint yet")
    accuracy = min(shares)  # the worst sampling seed: the one a lecturer may get
    met = wall <= GOAL_SECONDS and accuracy >= GOAL_ACCURACY
    seeds = ", ".join(f"{share:.0%}" for share in shares)
    print(f"goal run: {wall:.1f} s wall, last checkpoint {seeds} right at seeds {SAMPLING_SEEDS}", file=sys.stderr)
    times = ", ".join(f"epoch {epoch} at {at:.0f} s" for epoch, at in sorted(saved_at.items()))
    return [
        f"| {date.today()} | {machine()} | `train mnist --preset quick`, whole process, fresh home | "
        f"**{wall:.1f} s** | **{accuracy:.0%}** (worst of seeds 0–4: {seeds}), mean {np.mean(shares):.1%} | "
        f"{'met' if met else 'NOT met'} |",
        "",
        f"Accuracy against time (the last checkpoint saved by then, judged at seeds 0–4; after the preset's "
        f"{last} epochs, `--epochs +{more}` kept training, {kept_wall:.1f} s more): " + "; ".join(curve),
        f"Checkpoints: {times}.",
    ]


def series(judge, preset: str, seconds: float, limit: int | None = None, per_digit: int = PER_DIGIT) -> str:
    """Judge accuracy of a recipe's sample grids, drawn every 15 s of training and at each epoch's
    end, up to `seconds`."""
    config = preset_config(preset, "class")
    config.device, config.epoch_samples, config.preview_seconds = "cpu", 10 * per_digit, 15.0
    if limit:
        config.limit = limit
    points = []
    with tempfile.TemporaryDirectory() as folder:
        events = train(config, load_mnist("train"), folder)
        latest_loss = None  # its clock dates an epoch's grid, which comes right after it
        for event in events:
            if isinstance(event, LossEvent):
                latest_loss = event
                continue
            at = event.seconds if isinstance(event, PreviewEvent) else latest_loss.seconds
            points.append((at, judge_accuracy(judge, event.samples, event.sample_labels)))
            print(f"{preset}: {at:.0f} s, {points[-1][1]:.0%}", file=sys.stderr)
            if at >= seconds:
                break
        events.close()
    cells = ", ".join(f"{at:.0f} s: {share:.0%}" for at, share in points)
    return (
        f"| {date.today()} | {machine()} | {preset}: {config.objective}, D = {config.hidden}, batch "
        f"{config.batch_size}, lr {config.lr:g} {config.lr_schedule}, EMA {config.ema_decay:g} | {cells} |"
    )


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-series", action="store_true", help="only the goal run")
    parser.add_argument("--series-seconds", type=float, default=60.0)
    parser.add_argument("--per-digit", type=int, default=PER_DIGIT, help="samples of each digit the judge reads")
    parser.add_argument("--limit", type=int, help="train on the first N digits only (to try the script)")
    parser.add_argument("--keep-epochs", type=int, help="epochs to keep training (default: past the curve's end)")
    args = parser.parse_args()
    test_set = load_mnist("test").as_float()
    judge = load_judge()
    test_accuracy = accuracy(judge, *test_set)
    print(f"judge: test accuracy {test_accuracy:.4f}", file=sys.stderr)
    rows = goal_run(judge, args.limit, args.per_digit, args.keep_epochs)
    if not args.skip_series:
        rows += [
            series(judge, preset, args.series_seconds, args.limit, args.per_digit) for preset in ("quick", "course")
        ]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
