"""Errors meant for the person at the keyboard.

A `UserFacingError` carries one line that says what went wrong and what to do. The CLI prints
it without a traceback and exits non-zero; the GUI shows it in its status bar and a dialog.
Whatever a message quotes (a path holding a newline, a name with a terminal escape), it stays one
line: `one_line` writes control characters as escapes.
"""

from __future__ import annotations

import unicodedata

# The characters that would break a message's line, drive the terminal or fail to print: every
# control character but the tab, Unicode's line and paragraph separators, and the lone surrogates
# that stand for a file name's bytes that are not UTF-8
_BREAKING = {"Cc", "Zl", "Zp", "Cs"}


def one_line(text: str) -> str:
    """`text` with each control character (newline, carriage return, escape, ...) written as an
    escape such as \\n or \\x1b, so it prints as one line and cannot drive the terminal."""
    if text.isprintable():  # the usual case, at once
        return text
    return "".join(
        character if character == "\t" or unicodedata.category(character) not in _BREAKING else repr(character)[1:-1]
        for character in text
    )


class UserFacingError(Exception):
    """An error whose message is a complete, one-line explanation for the user (control characters
    in it are escaped, see `one_line`)."""

    def __init__(self, message: object = "", *args: object):
        super().__init__(one_line(str(message)), *args)


class OutOfRangeError(UserFacingError, ValueError):
    """A number outside the range it must fall in (core.limits): the user's to fix, and a ValueError
    to the code that calls a low-level piece with it."""


class TrajectoryFileError(UserFacingError):
    """A trajectory file that is missing, truncated, corrupt or not ours."""


class CheckpointError(UserFacingError):
    """A checkpoint that is missing, corrupt, or of the wrong kind for the command."""


class DataError(UserFacingError):
    """Training or test data that is missing or malformed."""


class TrainingDiverged(UserFacingError):
    """The loss became NaN or infinite."""
