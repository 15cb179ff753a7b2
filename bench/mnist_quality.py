"""Sample quality of the class-conditioned MNIST models, and the speed/quality trade-off.

    python bench/mnist_quality.py \\
        --checkpoint mnist-class-ddpm --checkpoint mnist-class-flow [--per-class 100] [--steps 50,20] [--guidance 1,3,5]

The judge bundled with the app (core/mnist/judge.py, >= 99% test accuracy; retrain it with
`diffusion-stepper train mnist-judge`) reads the samples. For each checkpoint, `diffusion-stepper sample mnist` draws
`per-class` samples of every digit at guidance 5 (or each scale in `--guidance`), and two figures
are reported:

- class consistency: the share of samples the classifier assigns to their conditioning class
  (goal >= 99%);
- the Frechet distance between the classifier's penultimate features on the samples and on the
  MNIST test set, beside the same distance for as many real training digits (the baseline; goal:
  close to it).

With `--steps` the samples are drawn at each step count, and the time the app's default Generate
(the digits 0-9, one each, with CFG) takes at that step count on this machine is measured too:
the time to the first frame and to the last, in-process, as the app's worker runs it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from diffusion_stepper.core.formats.trajectory_file import load_trajectory
from diffusion_stepper.core.mnist.data import load_mnist
from diffusion_stepper.core.mnist.judge import accuracy, batched, frechet_distance, load_judge
from diffusion_stepper.core.mnist.sampling import SampleRequest, start_sampling

ROOT = Path(__file__).resolve().parents[1]  # the repository


def sample_with_cli(
    checkpoint: str, per_class: int, guidance: float, steps, seed: int, x0_clip, sampler=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Final samples and their labels, drawn by `diffusion-stepper sample mnist` in a subprocess."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "samples.npz"
        command = [
            sys.executable,
            "-m",
            "diffusion_stepper.visualizer",
            "sample",
            "mnist",
            "--checkpoint",
            checkpoint,
            "--per-class",
            str(per_class),
            "--guidance",
            str(guidance),
            "--seed",
            str(seed),
            "--keep-every",
            "1000000",
            "--out",
            str(out),
        ]
        if steps:
            command += ["--steps", str(steps)]
        if x0_clip:
            command += ["--x0-clip", x0_clip]
        if sampler:
            command += ["--sampler", sampler]
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        trajectory = load_trajectory(out)
        low, high = trajectory.value_range
        return trajectory.final_sample.clamp(low, high), trajectory.labels


def generate_timing(checkpoint: str, steps, x0_clip, sampler=None, repeats: int = 3) -> tuple[float, float]:
    """Median seconds to the first frame and to the last for the app's default Generate."""
    first_times, total_times = [], []
    for repeat in range(repeats + 1):
        started = time.perf_counter()
        run = start_sampling(
            SampleRequest(checkpoint=checkpoint, steps=steps, x0_clip=x0_clip, sampler=sampler, device="cpu")
        )
        first = None
        for _ in run.frames:
            if first is None:
                first = time.perf_counter() - started
        if repeat:  # the first pass warms the caches
            first_times.append(first)
            total_times.append(time.perf_counter() - started)
    return statistics.median(first_times), statistics.median(total_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True, help="bundled name or path; repeatable")
    parser.add_argument("--data-dir")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--guidance", default="5", help="comma-separated guidance scales (default 5, the course's)")
    parser.add_argument("--steps", default="", help="comma-separated step counts (default: each model's own)")
    parser.add_argument("--sampler", default="", help="comma-separated samplers (default: each model's own)")
    parser.add_argument("--x0-clip", choices=["none", "static"], help="DDPM x̂0 clipping (default: each model's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier", type=Path, help="judge weights (default: the bundled judge)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--skip-timing", action="store_true", help="leave out the in-process Generate timing")
    args = parser.parse_args()

    train_set = load_mnist("train", args.data_dir).as_float()
    test_set = load_mnist("test", args.data_dir).as_float()
    classifier = load_judge(args.classifier)
    test_accuracy = accuracy(classifier, *test_set)
    test_features = batched(classifier.features, test_set[0]).numpy().astype(np.float64)
    count = 10 * args.per_class
    real_index = torch.randperm(train_set[0].shape[0], generator=torch.Generator().manual_seed(args.seed))[:count]
    real_features = batched(classifier.features, train_set[0][real_index]).numpy().astype(np.float64)
    real_distance = frechet_distance(real_features, test_features)
    print(
        f"classifier test accuracy {test_accuracy:.4f}; FD of {count} real training digits to the test set: "
        f"{real_distance:.3f}"
    )

    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    rows = []
    step_counts = [int(s) for s in args.steps.split(",") if s] or [None]
    guidance_scales = [float(g) for g in args.guidance.split(",") if g]
    samplers = [s for s in args.sampler.split(",") if s] or [None]
    for checkpoint, sampler, steps, guidance in itertools.product(
        args.checkpoint, samplers, step_counts, guidance_scales
    ):
        started = time.perf_counter()
        samples, labels = sample_with_cli(checkpoint, args.per_class, guidance, steps, args.seed, args.x0_clip, sampler)
        sampling_seconds = time.perf_counter() - started
        predictions = batched(classifier, samples).argmax(1)
        consistency = float((predictions == labels).float().mean())
        distance = frechet_distance(batched(classifier.features, samples).numpy().astype(np.float64), test_features)
        first, total = (None, None) if args.skip_timing else generate_timing(checkpoint, steps, args.x0_clip, sampler)
        row = {
            "checkpoint": checkpoint,
            "sampler": sampler,
            "steps": steps,
            "x0_clip": args.x0_clip,
            "samples": int(labels.shape[0]),
            "guidance": guidance,
            "class_consistency": consistency,
            "fd_samples": distance,
            "fd_real": real_distance,
            "fd_ratio": distance / real_distance,
            "generate_first_frame_s": first,
            "generate_total_s": total,
            "sampling_seconds": sampling_seconds,
            "per_class_errors": [int(((predictions != labels) & (labels == d)).sum()) for d in range(10)],
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    print(f"\n{date.today()} · {machine} · classifier test accuracy {test_accuracy:.4f} · seed {args.seed}\n")
    print(
        "| model | sampler | steps | x̂0 clip | γ | samples | class consistency | FD samples→test | FD real→test | FD "
        "ratio | Generate: first frame / all |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        timing = (
            "—"
            if row["generate_total_s"] is None
            else f"{row['generate_first_frame_s']:.3f} / {row['generate_total_s']:.2f} s"
        )
        print(
            f"| {row['checkpoint']} | {row['sampler'] or 'default'} | {row['steps'] or 'default'} | "
            f"{row['x0_clip'] or 'default'} | "
            f"{row['guidance']:g} | {row['samples']} | "
            f"{row['class_consistency']:.1%} | {row['fd_samples']:.3f} | {row['fd_real']:.3f} | "
            f"{row['fd_ratio']:.2f} | {timing} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"test_accuracy": test_accuracy, "machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
