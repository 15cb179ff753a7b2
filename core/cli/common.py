"""What the commands share: the one-line parser, the types of their flags, progress bars, and
recording runs into trajectory files."""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from diffusion_stepper.core import PROG
from diffusion_stepper.core.errors import UserFacingError, one_line
from diffusion_stepper.core.frames import Frame, Trajectory, keep_every
from diffusion_stepper.core.limits import (
    BELOW_ONE,
    ETA,
    INT_LIST_VALUES,
    SAMPLES,
    SEED,
    STEPS,
    check_guidance_sweep,
    out_of_range,
)
from diffusion_stepper.core.parsing import parse_float_list, parse_int_list
from diffusion_stepper.core.run_meta import RunMeta

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage block plus a line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{PROG}: error: {one_line(message)} (see {self.prog} --help)\n")


@dataclass(frozen=True)
class FlagScope:
    """Flags that do something only where `applies(args)` holds. Given anywhere else they would be
    silently ignored, so `refuse_unused_flags` refuses them in one line: "{flag} is for {where}".

    Each command keeps a table of these beside its flags and says which apply to the arguments
    given in its `flag_scopes(args)`; `core.cli.main` refuses before the command runs. A flag
    counts as given when its value is not None, False or an empty list (so flags whose default
    matters default to None and the command fills the default in)."""

    flags: tuple[str, ...]  # as typed: "--preset"
    applies: Callable[[argparse.Namespace], bool]
    where: str  # what they are for: "train mnist", "--class (CFG towards a class)"
    dests: dict[str, str] = field(default_factory=dict)  # a flag whose value lives under another name


def when(attribute: str, *values: str) -> Callable[[argparse.Namespace], bool]:
    """A FlagScope's `applies`: the command's `attribute` (its experiment, task, target) is one of `values`."""
    return lambda args: getattr(args, attribute) in values


def flag_given(args: argparse.Namespace, flag: str, dest: str | None = None) -> bool:
    value = getattr(args, dest or flag.lstrip("-").replace("-", "_"), None)
    return value is not None and value is not False and value != []


def refuse_unused_flags(args: argparse.Namespace, scopes: Iterable[FlagScope]) -> None:
    """Refuse, in one line, the first flag given where its scope says it does nothing."""
    for scope in scopes:
        given = [flag for flag in scope.flags if flag_given(args, flag, scope.dests.get(flag))]
        if given and not scope.applies(args):
            raise UserFacingError(f"{given[0]} is for {scope.where}; leave it out")


# A command with kinds (`train mnist|mnist-judge|toy2d`): each kind's `--help` lists only its own
# flags, yet a flag given to the wrong kind is refused by a FlagScope in one line that names the
# kinds it is for, rather than by argparse's "unrecognized arguments".
KindArguments = Callable[[argparse.ArgumentParser], None]  # adds one kind's own flags to a parser


@functools.cache
def own_flags(add_arguments: KindArguments) -> dict[str, str]:
    """The flags `add_arguments` declares, as typed (--preset), each with where its value lives."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return {flag: action.dest for action in parser._actions for flag in action.option_strings}


def add_kinds(subparsers, kinds: dict[str, tuple[str, KindArguments]]) -> dict[str, argparse.ArgumentParser]:
    """One parser per kind (name -> (its help line, what adds its flags)), each with its own flags
    shown and the other kinds' flags parsed but hidden, for `kind_scopes` to refuse."""
    parsers = {}
    for name, (help_line, add_arguments) in kinds.items():
        parsers[name] = subparsers.add_parser(name, help=help_line, description=help_line[:1].upper() + help_line[1:])
        add_arguments(parsers[name])
    for parser in parsers.values():
        for other in parsers.values():
            for action in other._actions:
                if action.option_strings and action.option_strings[0] not in parser._option_string_actions:
                    hidden = copy.copy(action)  # parsed as the other kind parses it, not listed
                    hidden.help, hidden.required = argparse.SUPPRESS, False
                    parser._add_action(hidden)
    return parsers


def kind_scopes(command: str, attribute: str, kinds: dict[str, tuple[str, KindArguments]]) -> tuple[FlagScope, ...]:
    """A FlagScope for each flag that only some kinds take: "--preset is for train mnist"."""
    owners: dict[str, list[str]] = {}
    dests: dict[str, str] = {}
    for name, (_, add_arguments) in kinds.items():
        for flag, dest in own_flags(add_arguments).items():
            owners.setdefault(flag, []).append(name)
            dests[flag] = dest
    return tuple(
        FlagScope((flag,), when(attribute, *names), f"{command} {' and '.join(names)}", {flag: dests[flag]})
        for flag, names in owners.items()
        if len(names) < len(kinds)
    )


def input_files(*values: str | os.PathLike | None) -> list[Path]:
    """The files a command reads, for `check_output_file`'s `inputs`: each path given, and for a
    checkpoint both of its files (the .json sidecar and the .safetensors weights). A bundled
    model's name or a missing value adds nothing that exists, which is harmless."""
    files = []
    for value in values:
        if value is None or not str(value).strip():
            continue
        path = Path(value).expanduser()
        files.append(path)
        if path.suffix in (".json", ".safetensors"):
            files += [path.with_suffix(".json"), path.with_suffix(".safetensors")]
    return files


def silence_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone (`... | head`), so that Python's last
    flush at exit does not fail a second time."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _number(text: str, kind: type):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None
    if not math.isfinite(value):  # nan and inf would run, and write runs of NaN
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _in_range(kind: type, low: float | None, high: float | None):
    """An argparse type: a finite number of `kind` within [low, high] (None: no bound)."""

    def read(text: str):
        value = _number(text, kind)
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                wanted = f"between {low:g} and {high:g}"
            else:
                wanted = f"at least {low:g}" if low is not None else f"at most {high:g}"
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    read.__name__ = kind.__name__  # argparse names the type in some messages
    return read


def int_in(bounds: tuple[int, int]):
    return _in_range(int, *bounds)


def float_in(bounds: tuple[float, float]):
    return _in_range(float, *bounds)


finite_float = _in_range(float, None, None)
positive_int = _in_range(int, 1, None)
seed = int_in(SEED)
steps = int_in(STEPS)
samples = int_in(SAMPLES)
fraction = float_in(BELOW_ONE)  # a probability or decay


def add_sampler_arguments(
    parser: argparse.ArgumentParser, choices, default_text: str, default: str | None = None
) -> None:
    """--sampler and --eta. Which samplers suit a model depends on the model (DDPM-trained or flow),
    so the model's own check names them; the choices here are every sampler there is."""
    parser.add_argument(
        "--sampler",
        choices=list(choices),
        default=default,
        help=f"the step rule that walks the chain (default: {default_text}); see `diffusion-stepper models`",
    )
    parser.add_argument("--eta", type=float_in(ETA), help="DDIM's noise scale η: 0 deterministic (default), 1 DDPM's")


def guidance_list(text: str) -> list[float]:
    """ "0, 0.5, 1": CFG scales, each finite and within GUIDANCE, at most GUIDANCE_SWEEP_VALUES of them."""
    try:
        values = parse_float_list(text)
        check_guidance_sweep(values)
    except ValueError as exc:  # OutOfRangeError is one too
        raise argparse.ArgumentTypeError(str(exc)) from None
    return values


def int_list(text: str) -> list[int]:
    try:
        return parse_int_list(text, max_values=INT_LIST_VALUES)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def step_list(text: str) -> list[int]:
    """ "5,10,20": step counts or NFE budgets, each within STEPS."""
    values = int_list(text)
    bad = [value for value in values if out_of_range(value, STEPS)]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"expected numbers from {STEPS[0]} to {STEPS[1]:,}, got {text!r}")
    return values


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
    return Trajectory(run.meta, frames, run.labels, run.data)


def run_file_suffixes(requests: list) -> list[str]:
    """What tells an experiment's run files apart: "" for one run; the sampler where each run has its
    own (a race: "-ddim-eta0", "-heun"), else the guidance scale (a sweep: "-gamma5"); else the
    run's number ("-1", "-2", ...)."""
    if len(requests) == 1:
        return [""]

    def distinct(attribute: str) -> list | None:
        values = [getattr(request, attribute, None) for request in requests]
        return values if None not in values and len(set(values)) == len(values) else None

    if samplers := distinct("sampler"):
        return [
            f"-{sampler}" + (f"-eta{request.eta:g}" if getattr(request, "eta", None) is not None else "")
            for sampler, request in zip(samplers, requests)
        ]
    if guidances := distinct("guidance"):
        return [f"-gamma{guidance:g}" for guidance in guidances]
    return [f"-{number}" for number in range(1, len(requests) + 1)]


def write_experiment(name: str, requests: list, out_dir: str | Path) -> list[Trajectory]:
    """One trajectory file per run of an experiment, named by `run_file_suffixes`: NAME.npz,
    NAME-heun.npz, NAME-1.npz ...; returns the runs."""
    from diffusion_stepper.core.formats.trajectory_file import save_trajectory

    if not requests:
        raise UserFacingError(f"the {name} experiment has no runs with these settings")
    trajectories = []
    for number, (request, suffix) in enumerate(zip(requests, run_file_suffixes(requests)), 1):
        trajectory = record_run(request, f"run {number}/{len(requests)}")
        trajectories.append(trajectory)
        path = save_trajectory(trajectory, Path(out_dir) / f"{name}{suffix}.npz")
        meta = trajectory.run_meta
        if number == 1:
            print_image_notes(meta)
        print(f"wrote {path}: {meta.algorithm} · {meta.model} · {len(trajectory)} frames")
    if trajectory.run_meta.note is not None:
        print(trajectory.run_meta.note)
    return trajectories


def print_image_notes(meta: RunMeta) -> None:
    """How a run's starting image was converted (IF: mode, crop, size), one line each."""
    for note in meta.image_notes or ():
        print(f"note: image {note}")
