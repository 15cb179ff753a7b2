"""The headless command line: everything the app does, without a display. One module per command,
each with its flags (`register`), which of them apply to what was asked (`flag_scopes`, optional)
and what it does (`run`):

    diffusion-stepper train mnist|mnist-judge|toy2d ...  train a part B model, the digit judge or a 2D one
    diffusion-stepper sample mnist|if|toy2d|diffusers ...  sample a model (or a diffusers folder) into a file
    diffusion-stepper experiment mnist|if|toy2d NAME   an experiment (the app's Experiments menu) into files
    diffusion-stepper export RUN.npz ...         GIF, MP4 or PNG contact sheet of a trajectory
    diffusion-stepper inspect RUN.npz            the update rule with its numbers, step by step
    diffusion-stepper models                     list the bundled checkpoints
    diffusion-stepper bundle CHECKPOINT ...      copy a checkpoint into the bundled models
    diffusion-stepper download mnist             fetch MNIST once, checking checksums

Bad input ends the command with one line on stderr and a non-zero exit, never a traceback: a
`UserFacingError`, a file-system error on a path the user gave, text that is not UTF-8, an empty
value, a flag that does nothing for what was asked, an output stream that is closed or full.
Every Ctrl+C ends with one "interrupted" line and exit 130, also one that lands while torch is
still importing (see `_Interrupts`).

Importing this package is quick (no torch): the commands' modules load in `build_parser`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from diffusion_stepper.core import PROG, __version__
from diffusion_stepper.core.errors import UserFacingError, one_line
from diffusion_stepper.core.logs import log_file

# Each command is the module core/cli/NAME.py
COMMANDS = ("train", "sample", "experiment", "export", "inspect", "models", "download", "bundle")
EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
# Flags whose empty value means something: an empty prompt is IF's unconditional one
MAY_BE_EMPTY = ("prompt", "prompt2", "prompt3", "prompt4")


def command_module(name: str):
    return importlib.import_module(f"diffusion_stepper.core.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    from diffusion_stepper.core.cli.common import OneLineParser

    parser = OneLineParser(
        prog=PROG,
        description="Step through diffusion sampling frame by frame. With no command, opens the app.",
        epilog=f"The app writes unexpected errors with their tracebacks to {log_file()} (send it with a report).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        command_module(name).register(commands)
    return parser


class _Interrupts:
    """Ctrl+C for the length of one command, on the main thread.

    Python's own handler raises KeyboardInterrupt wherever the main thread is, which goes wrong
    in a few places: halfway through importing numpy or torch (the module cannot be imported
    again: "cannot load module more than once"), in Python code that C++ called (pybind11 aborts
    with SIGABRT), or inside code that catches everything (the command runs on to exit 0). So
    while `deferred()` (the imports) a Ctrl+C is only noted and raised once the block ends, and a
    Ctrl+C that was noted decides the exit whatever happened after it: "interrupted", 130."""

    def __init__(self) -> None:
        self.seen = False
        self._deferring = 0

    def _handle(self, signum, frame) -> None:
        self.seen = True
        if not self._deferring:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Interrupts]:
        if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
            yield self
            return
        try:
            previous = signal.signal(signal.SIGINT, self._handle)
        except (ValueError, OSError):  # an embedding interpreter that keeps SIGINT to itself
            yield self
            return
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if self.seen and not self._deferring:
            raise KeyboardInterrupt


def _interrupted() -> int:
    print(f"{PROG}: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def _error(message: str, status: int = EXIT_ERROR) -> int:
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)
    return status


def _usable_streams() -> str | None:
    """Stand /dev/null in for a closed stderr, and for a closed stdout (so that nothing later opens
    a file as descriptor 1 and writes its output into it); the reason to stop if stdout was closed."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - stands in for stderr until the process ends
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - as above, for stdout
        return "standard output is closed (>&-); send it somewhere instead (> FILE, or > /dev/null)"
    return None


def _not_utf8(argv: Sequence[str]) -> str | None:
    """The first argument holding bytes that are not UTF-8 (Python passes them on as lone surrogates)."""
    for argument in argv:
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:
            return argument
    return None


def _option_names(parser: argparse.ArgumentParser, names: dict[str, str] | None = None) -> dict[str, str]:
    """Each argument's destination -> how the user typed it (--flag, or a positional's name)."""
    names = {} if names is None else names
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _option_names(subparser, names)
        else:
            names.setdefault(action.dest, action.option_strings[-1] if action.option_strings else action.dest)
    return names


def _empty_value(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The first flag given an empty (or blank) value: a path, a name or a choice that is "" would
    otherwise mean "the current folder" or "the default" without saying so."""
    for dest, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        if dest not in MAY_BE_EMPTY and any(isinstance(item, str) and not item.strip() for item in values):
            name = _option_names(parser).get(dest, dest)
            if name.startswith("-"):
                return f"{name} is empty: give it a value"
            return f"the {name} argument is empty: give a file name"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    interrupts = _Interrupts()
    with interrupts.installed():
        try:
            status = _main(argv, interrupts)
        except KeyboardInterrupt:
            return _interrupted()
        except SystemExit:  # argparse's usage errors, --help and --version
            if interrupts.seen:
                return _interrupted()
            raise
        except Exception:
            if interrupts.seen:  # what an import cut short by Ctrl+C breaks later (numpy's "load once")
                return _interrupted()
            raise
        return _interrupted() if interrupts.seen else status  # a Ctrl+C some library swallowed still counts


def _main(argv: list[str], interrupts: _Interrupts) -> int:
    closed = _usable_streams()
    if closed:
        return _error(closed)
    bad = _not_utf8(argv)
    if bad is not None:
        return _error(
            f"{bad!r} holds bytes that are not UTF-8 text; give text and file names as UTF-8 (rename the file)",
            EXIT_USAGE,
        )
    with interrupts.deferred():  # torch and the commands' modules load here
        parser = build_parser()
        import torch

    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    empty = _empty_value(parser, args)
    if empty:
        return _error(empty)
    from diffusion_stepper.core.cli.common import refuse_unused_flags, silence_stdout
    from diffusion_stepper.core.files import describe_os_error

    try:
        module = command_module(args.command)
        if hasattr(module, "flag_scopes"):  # flags that do nothing for what was asked are refused
            refuse_unused_flags(args, module.flag_scopes(args))
        status = module.run(args)
        sys.stdout.flush()  # here, inside the guard: a full disk or a reader gone is noticed now, not at exit
        return status
    except UserFacingError as exc:
        return _error(str(exc))
    except torch.OutOfMemoryError:
        return _error("out of GPU memory; use fewer samples, a smaller --batch-size, or --device cpu")
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as other tools do
        silence_stdout()
        return EXIT_ERROR
    except OSError as exc:  # a path the user gave that the file system refuses, or a full disk
        if exc.filename is not None:
            return _error(describe_os_error(exc))
        if not _flushes(sys.stdout):  # the output itself (> /dev/full): the exit's own flush must not fail again
            silence_stdout()
            return _error(f"cannot write the output ({describe_os_error(exc)})")
        return _error(describe_os_error(exc))  # a library's own (a truncated picture, a socket): its words


def _flushes(stream) -> bool:
    try:
        stream.flush()
    except (OSError, ValueError):
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
