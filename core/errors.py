"""Errors meant for the person at the keyboard.

A `UserFacingError` carries one line that says what went wrong and what to do. The CLI prints
it without a traceback and exits non-zero; the GUI shows it in its status bar and a dialog.
"""


class UserFacingError(Exception):
    """An error whose message is a complete, one-line explanation for the user."""


class TrajectoryFileError(UserFacingError):
    """A trajectory file that is missing, truncated, corrupt or not ours."""


class CheckpointError(UserFacingError):
    """A checkpoint that is missing, corrupt, or of the wrong kind for the command."""


class DataError(UserFacingError):
    """Training or test data that is missing or malformed."""


class TrainingDiverged(UserFacingError):
    """The loss became NaN or infinite."""
