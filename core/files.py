"""Checks on the files a command reads and writes, made before any work starts.

An input must be a regular file: a folder, a named pipe (which would block for ever), a device
such as /dev/zero (endless) or a symlink loop each get their own one-line reason. An output's
folder must exist (it is created) and take a new file, and the output must not be a folder, so a
long run never ends in "cannot write there".
"""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.limits import format_bytes

# The temporary name `core.atomic` writes beside a target is the target's name plus this many bytes
PARTIAL_NAME_OVERHEAD = len(".") + len(".4294967295.0123456789ab.partial")


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_input_file(
    path: str | os.PathLike, error: type[UserFacingError] = UserFacingError, max_bytes: int | None = None
) -> Path:
    """`path` if it names a regular file (following symlinks), else `error` with why not."""
    path = Path(path)
    if not str(path).strip():
        raise error("no file given (the path is empty)")
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:  # a symlink loop, a name too long, a folder we may not enter
        raise error(f"{path}: cannot open it ({_reason(exc)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: not a regular file (a pipe, socket or device); give a file saved on disk")
    if not os.access(path, os.R_OK):
        raise error(f"{path}: no permission to read it")
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(f"{path}: {format_bytes(info.st_size)} is more than a file of this kind holds")
    return path


def check_output_folder(folder: str | os.PathLike, flag: str = "--out") -> Path:
    """Create `folder` (and its parents) if needed and prove a new file can be written there."""
    folder = Path(folder)
    if not str(folder).strip():
        raise UserFacingError(f"{flag} is empty: give a folder")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserFacingError(f"{folder}: is a file, not a folder ({flag})")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserFacingError(f"{folder}: cannot create the folder ({_reason(exc)}; {flag})") from None
    probe = folder / f".diffusion-stepper-probe-{uuid.uuid4().hex[:8]}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as exc:
        raise UserFacingError(f"{folder}: cannot write there ({_reason(exc)}; {flag})") from None
    return folder


def check_output_file(path: str | os.PathLike, flag: str = "--out") -> Path:
    """`path` if a file can be written there: not a folder, a name the file system takes, in a
    folder that exists (it is created) and is writable."""
    text = str(path)
    if not text.strip():
        raise UserFacingError(f"{flag} is empty: give a file name")
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)) or os.path.isdir(path):  # os.path's checks say False, never raise
        raise UserFacingError(f"{path}: is a folder; give {flag} the name of a file inside it")
    name_max = _name_max(path.parent)
    if len(os.fsencode(path.name)) + PARTIAL_NAME_OVERHEAD > name_max:
        raise UserFacingError(
            f"{path.name[:40]}...: the file name is too long for {flag} (at most "
            f"{name_max - PARTIAL_NAME_OVERHEAD} bytes here)"
        )
    check_output_folder(path.parent, flag)
    return path


def _name_max(folder: Path) -> int:
    """The longest file name the folder's file system takes (255 on every common one)."""
    for candidate in (folder, *folder.parents):
        try:
            return os.pathconf(candidate, "PC_NAME_MAX")
        except (OSError, ValueError, AttributeError):  # not there yet, or no pathconf (Windows)
            continue
    return 255
