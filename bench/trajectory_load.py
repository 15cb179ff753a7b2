"""What checking a trajectory file costs: `load_trajectory` (member headers against their sizes,
the meta schema, every step's caption and equation built once) against the unchecked read it
replaced (np.load of every array, then float32 tensors). Median of 5 alternating runs of each.

    python bench/trajectory_load.py [--steps 300]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from diffusion_stepper.core.cli import main as cli_main
from diffusion_stepper.core.formats.trajectory_file import load_trajectory


def unchecked_read(path: Path) -> dict[str, torch.Tensor]:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return {key: torch.from_numpy(array.astype(np.float32)) for key, array in arrays.items() if array.dtype.kind == "f"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.npz"
        cli_main(["sample", "mnist", "--steps", str(args.steps), "--out", str(path)])
        times: dict[str, list[float]] = {"unchecked": [], "checked": []}
        for _ in range(5):
            for name, read in (("unchecked", unchecked_read), ("checked", load_trajectory)):
                start = time.perf_counter()
                read(path)
                times[name].append(time.perf_counter() - start)
    baseline, checked = statistics.median(times["unchecked"]), statistics.median(times["checked"])
    print(
        f"{args.steps + 1} frames of 10 digits: unchecked {baseline:.3f} s, checked {checked:.3f} s, "
        f"ratio {checked / baseline:.2f}"
    )


if __name__ == "__main__":
    main()
