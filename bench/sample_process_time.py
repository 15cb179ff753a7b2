"""The default Generate as a whole process: `diffusion-stepper sample mnist`, launch to exit.

    python bench/sample_process_time.py [--baseline CHECKPOINT] [--repeats 5]

Times the command with its defaults (the bundled default model, its own sampler and steps, the
digits 0-9, CFG γ = 5), torch's import and the trajectory file included, as a user at a terminal
sees it. With `--baseline` the same command on another checkpoint (for instance an earlier
bundled model kept elsewhere) runs in turn with it, alternating, and the ratio of the medians is
printed. Goal (issue 17): <= 2.5 s on the project's 2-core CPU.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path


def console_script() -> list[str]:
    """The installed `diffusion-stepper` of this Python (found also where its folder is not on PATH),
    else the one on PATH, else the package run as a module."""
    beside = Path(sys.executable).with_name("diffusion-stepper")
    if beside.is_file():
        return [str(beside)]
    on_path = shutil.which("diffusion-stepper")
    return [on_path] if on_path else [sys.executable, "-m", "diffusion_stepper.visualizer"]


def launch_seconds(extra: list[str], out: Path) -> float:
    command = [*console_script(), "sample", "mnist", *extra, "--out", str(out)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="another checkpoint to time in turn (bundled name or path)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    variants = {"default": []}
    if args.baseline:
        variants["baseline"] = ["--checkpoint", args.baseline]
    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as folder:
        for extra in variants.values():  # one untimed launch each warms the disk cache
            launch_seconds(extra, Path(folder) / "warm.npz")
        for _ in range(args.repeats):
            for name, extra in variants.items():
                times[name].append(launch_seconds(extra, Path(folder) / f"{name}.npz"))
    machine = f"{platform.machine()}, {platform.python_version()}, {sys.platform}"
    print(f"{date.today()} · {machine} · {args.repeats} launches each, alternating")
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})")
    if args.baseline:
        ratio = statistics.median(times["default"]) / statistics.median(times["baseline"])
        print(f"ratio default / baseline: {ratio:.2f}")


if __name__ == "__main__":
    main()
