"""`diffusion-stepper download mnist`: fetch MNIST once, keeping a file only if its checksum matches."""

from __future__ import annotations

import argparse
import sys

NAME = "download"


def register(commands) -> None:
    download = commands.add_parser(NAME, help="download MNIST once, verifying checksums")
    download.add_argument("dataset", choices=["mnist"])
    download.add_argument("--data-dir")


def run(args: argparse.Namespace) -> int:
    from diffusion_stepper.core.mnist.data import download_mnist

    directory = download_mnist(args.data_dir, report=lambda message: print(message, file=sys.stderr))
    print(f"MNIST is in {directory}")
    return 0
