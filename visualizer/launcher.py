"""The `diffusion-stepper` console script: a CLI command if one is named, else the app."""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from core import cli


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (argv[0] in cli.COMMANDS or argv[0].startswith("-")):
        return cli.main(argv)
    # Imported here so that headless commands never load Qt.
    from visualizer.app import run_app

    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
