"""The `diffusion-stepper` console script: a CLI command if one is named, else the app."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from diffusion_stepper.core import cli


def has_display() -> bool:
    """False on a Linux box with no X or Wayland display, where Qt would abort with a core dump."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (argv[0] in cli.COMMANDS or argv[0].startswith("-")):
        return cli.main(argv)
    if not has_display():
        print(
            f"{cli.PROG}: error: no display to open the app on; use a command instead "
            f"({cli.PROG} --help), or set QT_QPA_PLATFORM=offscreen",
            file=sys.stderr,
        )
        return 1
    # Imported here so that headless commands never load Qt.
    from diffusion_stepper.visualizer.app import run_app

    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
