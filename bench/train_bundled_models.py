"""Train the bundled MNIST models side by side on one machine, within a wall-clock budget.

    python bench/train_bundled_models.py --budget-seconds 420 --out DIR [--device cuda] [--only NAME,...]

Every model is trained by the project's own command (`diffusion-stepper train mnist ...`), each
in its own process, all at once: the course UNet at D = 32 is far too small to fill a GPU, so
several runs share one without slowing each other much. The number of epochs must be fixed before
a run starts (the learning rate falls to zero over the run), so the script first times each
recipe: two short epochs of 6,400 digits, all recipes at once as in the real runs, the time
between the two epoch checkpoints giving the time per digit. Each recipe then gets as many whole
epochs as fit the budget (within its own bounds).

On a GPU machine where the package is not installed (the bundled models were trained so, on an
H200 with its own torch), point Python at links to the repository's folders first:

    mkdir -p /tmp/pkg/diffusion_stepper && ln -s $PWD/core $PWD/resources /tmp/pkg/diffusion_stepper/
    PYTHONPATH=/tmp/pkg OMP_NUM_THREADS=2 python3 bench/train_bundled_models.py --budget-seconds 360 \\
        --deadline-seconds 430 --out /tmp/train

Writes DIR/NAME/ (the run: every epoch's sidecar, the last epoch's weights and training state,
the epoch sample grids, the log) and DIR/NAME.tar holding that folder, plus DIR/plan.json with the
probe's figures and the commands that ran. Bundle a run afterwards with
`diffusion-stepper bundle DIR/NAME/epoch-EEE.json --name NAME`.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

# The CLI as a module call, so that this also runs where the package is importable but its console
# script is not installed (a bare GPU machine with the repository on PYTHONPATH).
CLI = [sys.executable, "-c", "import sys; from diffusion_stepper.core import cli; sys.exit(cli.main(sys.argv[1:]))"]
PROBE_DIGITS = 6400
MNIST_TRAIN_DIGITS = 60_000


@dataclass(frozen=True)
class Recipe:
    name: str
    options: str  # `train mnist` options other than --epochs, --device and --out
    min_epochs: int
    max_epochs: int


# Long runs with a warm-up then cosine learning rate falling to zero and an exponential moving
# average of the weights over the last ~2,000 iterations: the usual recipe for small diffusion
# models. The course UNet, objectives and class dropout are unchanged.
LONG_RUN = "--hidden 32 --batch-size 128 --lr-schedule warmup-cosine --ema-decay 0.9995"
RECIPES = (
    Recipe("mnist-class-ddpm", f"--model class --objective ddpm --lr 1e-3 {LONG_RUN}", 8, 200),
    Recipe(
        "mnist-class-ddpm-b256",
        "--model class --objective ddpm --hidden 32 --batch-size 256 --lr 2e-3 --lr-schedule warmup-cosine "
        "--ema-decay 0.999",
        8,
        120,
    ),
    Recipe("mnist-class-flow", f"--model class --objective flow --lr 5e-3 {LONG_RUN}", 8, 80),
    Recipe("mnist-time-ddpm", f"--model time --objective ddpm --lr 1e-3 {LONG_RUN}", 8, 80),
    Recipe("mnist-time-flow", f"--model time --objective flow --lr 5e-3 {LONG_RUN}", 8, 80),
    # The single-step denoisers: the course's own recipe (5 epochs, batch 256, Adam 1e-4).
    Recipe(
        "mnist-single-step", "--model single-step --hidden 32 --batch-size 256 --lr 1e-4 --lr-schedule constant", 5, 5
    ),
    Recipe(
        "mnist-pure-noise",
        "--model single-step --pure-noise --hidden 32 --batch-size 256 --lr 1e-4 --lr-schedule constant",
        5,
        5,
    ),
)


def train_command(recipe: Recipe, epochs: int, device: str, out: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        *CLI,
        "train",
        "mnist",
        *recipe.options.split(),
        "--epochs",
        str(epochs),
        "--device",
        device,
        "--out",
        str(out),
        *extra,
    ]


def run_all(commands: dict[str, list[str]], logs: Path, deadline_seconds: float | None = None) -> dict[str, float]:
    """Run every command at once; returns each one's wall time. Raises if any fails. A run still
    going at the deadline is stopped (its last whole epoch's checkpoint stays) and reported."""
    logs.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    processes = {}
    for name, command in commands.items():
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 (closed below)
        processes[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log)
    seconds = {}
    failed = []
    while processes:
        for name, (process, log) in list(processes.items()):
            if process.poll() is not None:
                log.close()
                seconds[name] = time.perf_counter() - started
                if process.returncode != 0:
                    failed.append(name)
                del processes[name]
            elif deadline_seconds is not None and time.perf_counter() - started > deadline_seconds:
                print(f"{name}: stopped at the deadline ({deadline_seconds:.0f} s)", flush=True)
                process.kill()
                process.wait()
                log.close()
                seconds[name] = time.perf_counter() - started
                del processes[name]
        time.sleep(0.5)
    for name in failed:
        print(f"--- {name} failed; the end of its log:\n{(logs / f'{name}.log').read_text()[-3000:]}", flush=True)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")
    return seconds


def seconds_per_digit(run_dir: Path, probe_digits: int) -> float:
    """The time between the two probe epochs' checkpoints, per digit trained."""
    first, second = (run_dir / f"epoch-00{epoch}.json" for epoch in (1, 2))
    # at least a microsecond: a tiny probe's two epochs can end within the file system's time resolution
    return max(second.stat().st_mtime - first.stat().st_mtime, 1e-6) / probe_digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget-seconds", type=float, required=True, help="wall time for the real runs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--only", help="comma-separated recipe names (default: all)")
    parser.add_argument("--probe-digits", type=int, default=PROBE_DIGITS, help="digits per probe epoch")
    parser.add_argument("--deadline-seconds", type=float, help="stop real runs still going after this long")
    parser.add_argument("--limit", type=int, help="real runs train on the first N digits only (to try the script)")
    args = parser.parse_args()
    recipes = [r for r in RECIPES if not args.only or r.name in args.only.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    probe_dir = args.out / "probe"
    probe_extra = ("--limit", str(args.probe_digits), "--epoch-samples", "0")
    probe_wall = run_all(
        {r.name: train_command(r, 2, args.device, probe_dir / r.name, probe_extra) for r in recipes}, probe_dir
    )
    plan = {"device": args.device, "budget_seconds": args.budget_seconds, "runs": {}}
    commands = {}
    digits_per_epoch = args.limit or MNIST_TRAIN_DIGITS
    real_extra = ("--limit", str(args.limit)) if args.limit else ()
    for recipe in recipes:
        per_digit = seconds_per_digit(probe_dir / recipe.name, args.probe_digits)
        fitting = math.floor(args.budget_seconds / (per_digit * digits_per_epoch))
        epochs = max(recipe.min_epochs, min(recipe.max_epochs, fitting))
        commands[recipe.name] = train_command(recipe, epochs, args.device, args.out / recipe.name, real_extra)
        plan["runs"][recipe.name] = {
            "probe_seconds_per_epoch": per_digit * digits_per_epoch,
            "probe_wall_seconds": probe_wall[recipe.name],
            "epochs": epochs,
            "command": " ".join(["diffusion-stepper", *commands[recipe.name][len(CLI) :]]),
        }
        print(
            f"{recipe.name}: {per_digit * digits_per_epoch:.1f} s per epoch in the probe -> {epochs} epochs", flush=True
        )
    (args.out / "plan.json").write_text(json.dumps(plan, indent=2))

    wall = run_all(commands, args.out, args.deadline_seconds)
    for name, seconds in wall.items():
        plan["runs"][name]["wall_seconds"] = seconds
        print(f"{name}: {seconds:.0f} s", flush=True)
    (args.out / "plan.json").write_text(json.dumps(plan, indent=2))

    for recipe in recipes:
        run_dir = args.out / recipe.name
        last = max(int(path.stem.split("-")[1]) for path in run_dir.glob("epoch-*.json"))  # less if stopped
        with tarfile.open(args.out / f"{recipe.name}.tar", "w") as tar:
            for path in sorted(run_dir.iterdir()):
                keep = path.suffix in (".json", ".png") or path.name.startswith(f"epoch-{last:03d}.")
                if keep:
                    tar.add(path, arcname=f"{recipe.name}/{path.name}")
            tar.add(args.out / f"{recipe.name}.log", arcname=f"{recipe.name}/train.log")
            tar.add(args.out / "plan.json", arcname=f"{recipe.name}/plan.json")


if __name__ == "__main__":
    main()
