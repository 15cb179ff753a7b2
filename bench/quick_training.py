"""The Train tab's "quick" preset: does its loss curve fall visibly within a minute on this CPU?

    python bench/quick_training.py --data-dir ../shared/data/mnist [--seconds 60] [--model class --objective ddpm]

Runs `core.mnist.training.train` with the quick preset, as the Train tab does (one loss event per
iteration), for `seconds` of wall time including loading MNIST, and compares the mean loss of
the first 10 iterations (the baseline) with that of the last 10. Goal: a clear fall (ratio <= 0.5).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import date

import torch

from diffusion_stepper.core.mnist.data import load_mnist
from diffusion_stepper.core.mnist.training import EpochEvent, LossEvent, preset_config, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--model", default="class")
    parser.add_argument("--objective", default="ddpm")
    args = parser.parse_args()

    started = time.perf_counter()
    config = preset_config("quick", args.model, None if args.model == "single-step" else args.objective)
    config.log_every, config.device = 1, "cpu"
    data = load_mnist("train", args.data_dir)
    losses, epochs_done = [], 0
    with tempfile.TemporaryDirectory() as folder:
        events = train(config, data, folder)
        for event in events:
            if isinstance(event, LossEvent):
                losses.extend(event.losses)
            elif isinstance(event, EpochEvent):
                epochs_done += 1
            if time.perf_counter() - started >= args.seconds:
                events.close()
                break
    elapsed = time.perf_counter() - started
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    print(
        f"| {date.today()} | {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__} | "
        f"quick {args.model} {config.objective}, D={config.hidden}, batch {config.batch_size}, {config.limit} digits | "
        f"{elapsed:.0f} s | {len(losses)} iterations, {epochs_done} epochs | {first:.3f} | {last:.3f} | "
        f"**{last / first:.2f}** |"
    )


if __name__ == "__main__":
    main()
