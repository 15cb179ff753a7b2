"""Running `diffusion-stepper` as a user does, for the benches that time whole processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def console_command() -> list[str]:
    """The installed console script (or `python -m` where the package is not installed)."""
    script = Path(sys.executable).with_name("diffusion-stepper")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "diffusion_stepper.visualizer"]


def fresh_environment(home: str) -> dict[str, str]:
    """This environment with `home` as HOME and no data folder of ours: a first launch."""
    environment = {key: value for key, value in os.environ.items() if key != "DIFFUSION_STEPPER_DATA"}
    environment["HOME"] = home
    return environment


def run_console(arguments: list[str], home: str) -> float:
    """One `diffusion-stepper` process from the fresh home folder `home`: its seconds, launch to exit."""
    started = time.perf_counter()
    subprocess.run(
        [*console_command(), *arguments],
        check=True,
        env=fresh_environment(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started
