"""The error log: unexpected exceptions with their tracebacks, in a rotating file in the work folder.

Expected user errors (a `UserFacingError`, out of memory) stay one line on screen and are not
logged; anything else is a bug, and its traceback goes to `log_file()` so that a lecturer can send
it with a report. The app names the file in its error dialog, the CLI in `--help`.
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

from diffusion_stepper.core.paths import work_folder

LOGGER_NAME = "diffusion_stepper"
LOG_BYTES = 1_000_000  # one file's size before it rotates
LOG_BACKUPS = 2  # older files kept beside it (.1, .2)


def log_file() -> Path:
    return work_folder("logs", "diffusion-stepper.log")


def log_unexpected(exc: BaseException, context: str) -> Path | None:
    """Write `exc` with its traceback to the log file; the file's path, or None if it cannot be written."""
    path = log_file()
    logger = logging.getLogger(LOGGER_NAME)
    if [getattr(handler, "baseFilename", None) for handler in logger.handlers] != [str(path)]:
        for handler in list(logger.handlers):  # the work folder moved (tests do that): one file at a time
            logger.removeHandler(handler)
            handler.close()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
        except OSError:
            return None  # an unwritable work folder must not turn one error into two
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # the file only: the window and the CLI say their one line themselves
    logger.error("%s", context, exc_info=(type(exc), exc, exc.__traceback__))
    logger.handlers[0].flush()
    return path
