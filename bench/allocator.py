"""glibc's allocator kept from returning freed blocks (core/allocator.py) against its default.

    python bench/allocator.py [--per-class 20] [--steps 10] [--repeats 3]

Each setting runs in fresh processes (mallopt is process-wide), alternating, `repeats` times:
the bundled class DDPM model samples `per-class` digits of each class with CFG (a batch of
20 × per-class images a call) by DPM-Solver++(2M), in-process timing of the sampling alone.
The ratio of medians (kept / default) is the speed-up. Goal: < 1 for the measurement batches,
and no slower for the app's default Generate (`--per-class 1 --steps 50 --sampler ddpm`).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from datetime import date

CHILD = """
import json, sys, time
if sys.argv[1] == "kept":
    from diffusion_stepper.core.allocator import keep_freed_memory_for_reuse
    assert keep_freed_memory_for_reuse()
import torch
from diffusion_stepper.core.mnist.sampling import SampleRequest, start_sampling
per_class, steps, sampler = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
start = time.perf_counter()
run = start_sampling(SampleRequest(per_class=per_class, guidance=3.0, sampler=sampler, steps=steps, device="cpu"))
for frame in run.frames:
    pass
print(json.dumps({"seconds": time.perf_counter() - start, "threads": torch.get_num_threads()}))
"""


def timed(setting: str, per_class: int, steps: int, sampler: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, setting, str(per_class), str(steps), sampler],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sampler", default="dpm++2m")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = {"default": [], "kept": []}
    for _ in range(args.repeats):
        for setting in times:
            times[setting].append(timed(setting, args.per_class, args.steps, args.sampler))
    default, kept = statistics.median(times["default"]), statistics.median(times["kept"])
    machine = f"{platform.machine()}, torch threads as default"
    print(
        f"| {date.today()} | {machine} | {10 * args.per_class} digits, {args.sampler} {args.steps} steps, CFG | "
        f"{default:.2f} s | {kept:.2f} s | **{kept / default:.2f}** |"
    )


if __name__ == "__main__":
    main()
