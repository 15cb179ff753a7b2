"""Capture overhead: the Frame-yielding sampler against a plain loop, same model, steps and seed.

    python bench/capture_overhead.py [--hidden 64] [--steps 50] [--per-class 2] [--repeats 5]

The plain loop is Algorithm 4 of CS180 part B as a notebook would write it: no frames, no copies.
Both run alternately `repeats` times; the ratio of medians (sampler / plain) is the overhead.
Goal: <= 1.03.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time

import torch

from diffusion_stepper.core.diffusion.objectives import DDPMObjective, one_hot
from diffusion_stepper.core.diffusion.schedules import evenly_spaced_timesteps
from diffusion_stepper.core.mnist.sampling import compose_mnist_sampler
from diffusion_stepper.core.mnist.unet import build_unet


def plain_loop(model, objective, x, labels, guidance, steps, generator):
    schedule = objective.schedule
    T = schedule.T
    c = one_hot(labels)
    both_c = torch.cat([c, torch.zeros_like(c)])
    timesteps = evenly_spaced_timesteps(T, steps)
    with torch.no_grad():
        for t, t_prev in zip(timesteps[:-1], timesteps[1:]):
            t_in = torch.full((2 * x.shape[0], 1), t / T)
            eps_c, eps_u = model(torch.cat([x, x]), t_in, both_c).chunk(2)
            eps = eps_u + guidance * (eps_c - eps_u)
            abar, abar_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
            alpha = abar / abar_prev
            beta = 1 - alpha
            x0 = (x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
            x = math.sqrt(abar_prev) * beta / (1 - abar) * x0 + math.sqrt(alpha) * (1 - abar_prev) / (1 - abar) * x
            if t_prev > 0:
                x = x + math.sqrt(beta) * torch.randn(x.shape, generator=generator)
    return x


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = build_unet("class", args.hidden).eval()
    objective = DDPMObjective()
    labels = torch.arange(10).repeat(args.per_class)
    start = torch.randn(labels.shape[0], 1, 28, 28, generator=torch.Generator().manual_seed(0))

    def run_plain():
        return plain_loop(model, objective, start, labels, 5.0, args.steps, torch.Generator().manual_seed(1))

    def run_sampler():
        frames = list(
            compose_mnist_sampler(
                model, objective, start, torch.Generator().manual_seed(1), labels=labels, guidance=5.0, steps=args.steps
            )
        )
        return frames[-1].x_t

    assert torch.allclose(run_plain(), run_sampler(), atol=1e-5), "the two loops disagree"
    plain_times, sampler_times = [], []
    for _ in range(args.repeats):
        for runner, times in ((run_plain, plain_times), (run_sampler, sampler_times)):
            begin = time.perf_counter()
            runner()
            times.append(time.perf_counter() - begin)
    plain, sampler = statistics.median(plain_times), statistics.median(sampler_times)
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}"
    )
    print(
        f"class UNet D={args.hidden}, {labels.shape[0]} samples with CFG, {args.steps} steps, median of {args.repeats}"
    )
    print(
        f"plain loop: {plain:.3f} s   sampler with frames: {sampler:.3f} s   ratio: {sampler / plain:.3f} "
        "(goal <= 1.03)"
    )


if __name__ == "__main__":
    main()
