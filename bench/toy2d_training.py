"""The 2D lab's training goal: a model that fits two moons and the checkerboard in <= 15 s on a
2-core CPU (issue 18).

    python bench/toy2d_training.py [--iterations 2000] [--datasets moons,checkerboard] [--objectives flow,ddpm]

Each dataset and objective trains with the app's defaults (core.toy2d.training.Toy2DConfig, the
iteration count given), timed from the first iteration to the trained model. Then 5,000 particles
are sampled (flow: midpoint, 50 steps; DDPM: DPM-Solver++(2M), 100 steps of T = 1,000) and
compared with 5,000 fresh data points by the energy distance, beside two baselines from the same
run: the distance between two fresh data samples of that size (the floor: a perfect model) and
the distance of the starting noise (no model). Prints rows for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
from datetime import date

import torch

from diffusion_stepper.core.toy2d.datasets import DATASETS
from diffusion_stepper.core.toy2d.metrics import energy_distance
from diffusion_stepper.core.toy2d.sampling import as_points, sample_model
from diffusion_stepper.core.toy2d.training import Toy2DConfig, Toy2DTrained, train_toy2d

SAMPLERS = {"flow": ("midpoint", 50), "ddpm": ("dpm++2m", 100)}
POINTS = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=Toy2DConfig.iterations)
    parser.add_argument("--datasets", default="moons,checkerboard")
    parser.add_argument("--objectives", default="flow,ddpm")
    args = parser.parse_args()
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    print(f"{date.today()} · {machine} · {args.iterations} iterations · {POINTS:,} points\n")
    print(
        "| dataset | objective | train time | final loss | ED samples | ED floor (data vs data) | ED noise "
        "| samples / floor |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.datasets.split(","):
        data, _ = DATASETS[name].sample(POINTS, torch.Generator().manual_seed(101))
        fresh, _ = DATASETS[name].sample(POINTS, torch.Generator().manual_seed(102))
        floor = energy_distance(data, fresh)
        for objective in args.objectives.split(","):
            config = Toy2DConfig(dataset=name, objective=objective, iterations=args.iterations)
            result = [event for event in train_toy2d(config) if isinstance(event, Toy2DTrained)][0]
            sampler, steps = SAMPLERS[objective]
            frames = list(
                sample_model(
                    result.model,
                    result.objective,
                    POINTS,
                    torch.Generator().manual_seed(7),
                    sampler=sampler,
                    steps=steps,
                )
            )
            sampled = energy_distance(as_points(frames[-1].x_t), data)
            noise = energy_distance(as_points(frames[0].x_t), data)
            print(
                f"| {name} | {objective} | {result.seconds:.1f} s | {result.final_loss:.3f} | {sampled:.4f} | "
                f"{floor:.4f} | {noise:.4f} | {sampled / floor:.1f}× |",
                flush=True,
            )


if __name__ == "__main__":
    main()
