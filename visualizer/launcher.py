"""The `diffusion-stepper` console script: a CLI command if one is named, else the app."""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Sequence

from diffusion_stepper.core import PROG

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def has_display() -> bool:
    """False on a Linux box with no X or Wayland display, where Qt would abort with a core dump."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: Sequence[str] | None = None) -> int:
    """Every exit is quiet: Ctrl+C (even while torch is still importing) and a closed pipe
    (`... | head`) end without a traceback."""
    try:
        from diffusion_stepper.core.allocator import keep_freed_memory_for_reuse

        keep_freed_memory_for_reuse()  # before torch allocates: large CPU batches run twice as fast on Linux
        return _dispatch(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        from diffusion_stepper.core.cli.common import silence_stdout

        silence_stdout()
        return 1


def _dispatch(argv: list[str]) -> int:
    # Imported here, not at the top, so that Ctrl+C during the imports (torch takes a second) is caught.
    from diffusion_stepper.core import cli

    if argv and (argv[0] in cli.COMMANDS or argv[0].startswith("-")):
        return cli.main(argv)  # which ends in one line, whatever happens (Ctrl+C, a closed pipe, a full disk)
    if argv and not _names_a_file(argv[0]):
        guess = difflib.get_close_matches(argv[0], cli.COMMANDS, n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        print(
            f"{PROG}: error: unknown command {argv[0]!r}{hint}; the commands are {', '.join(cli.COMMANDS)}, "
            f"or name a file for the app to open (see {PROG} --help)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not has_display():
        print(
            f"{PROG}: error: no display to open the app on; use a command instead "
            f"({PROG} --help), or set QT_QPA_PLATFORM=offscreen",
            file=sys.stderr,
        )
        return 1
    from diffusion_stepper.visualizer.system_libraries import (
        missing_libraries_message,
        missing_xcb_libraries,
        uses_xcb,
    )

    missing = missing_xcb_libraries() if uses_xcb() else []
    if missing:  # Qt would print a paragraph and abort with a core dump
        print(f"{PROG}: error: {missing_libraries_message(missing)}", file=sys.stderr)
        return 1
    # Imported here so that headless commands never load Qt.
    from diffusion_stepper.visualizer.app import run_app

    return run_app(argv)


def _names_a_file(word: str) -> bool:
    """Whether the app should be given `word` to open (it reports a file it cannot read): a path,
    or a name with a suffix such as run.npz or photo.png; no command has either."""
    return os.path.exists(word) or os.sep in word or "." in word


if __name__ == "__main__":
    sys.exit(main())
