"""What the commands share: the one-line parser, the types of their flags, progress bars, and
recording runs into trajectory files."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.frames import Frame, Trajectory, keep_every
from diffusion_stepper.core.parsing import parse_int_list

PROG = "diffusion-stepper"
EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage block plus a line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def _number(text: str, kind: type):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):  # nan and inf would run, and write runs of NaN
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def finite_float(text: str) -> float:
    return _number(text, float)


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def int_list(text: str) -> list[int]:
    try:
        return parse_int_list(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def progress(total: int, description: str, unit: str = "it"):
    """A progress bar on stderr, so stdout keeps only what the command wrote."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, dynamic_ncols=True, file=sys.stderr)


def _advancing(frames: Iterable[Frame], bar) -> Iterator[Frame]:
    """Pass frames through, advancing the progress bar for each one produced (kept or not)."""
    for frame in frames:
        bar.update(1)
        yield frame


def record_run(request, description: str, every: int = 1) -> Trajectory:
    """Start a request (anything with `start()` returning a SamplingRun) and record its frames,
    every `every`-th and the last, with a progress bar."""
    run = request.start()
    with progress(run.num_frames, description, unit="frame") as bar:
        frames = list(keep_every(_advancing(run.frames, bar), every, run.num_frames))
    return Trajectory(run.meta, frames, run.labels)


def write_experiment(name: str, requests: list, out_dir: str | Path) -> None:
    """One trajectory file per run of an experiment: NAME.npz, or NAME-1.npz, NAME-2.npz, ..."""
    from diffusion_stepper.core.io.trajectory_file import save_trajectory

    if not requests:
        raise UserFacingError(f"the {name} experiment has no runs with these settings")
    for number, request in enumerate(requests, 1):
        trajectory = record_run(request, f"run {number}/{len(requests)}")
        suffix = f"-{number}" if len(requests) > 1 else ""
        path = save_trajectory(trajectory, Path(out_dir) / f"{name}{suffix}.npz")
        if number == 1:
            print_image_notes(trajectory.meta)
        meta = trajectory.meta
        print(f"wrote {path}: {meta['algorithm']} · {meta['model']} · {len(trajectory)} frames")
    if "note" in trajectory.meta:
        print(trajectory.meta["note"])


def print_image_notes(meta: dict) -> None:
    """How a run's starting image was converted (IF: mode, crop, size), one line each."""
    for note in meta.get("params", {}).get("image_notes", []):
        print(f"note: image {note}")
