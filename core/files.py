"""Checks on the files a command reads and writes, made before any work starts.

An input must be a regular file: a folder, a named pipe (which would block for ever), a device
such as /dev/zero (endless) or a symlink loop each get their own one-line reason. An output's
folder must exist (it is created) and take a new file, and the output must not be a folder, so a
long run never ends in "cannot write there".
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.limits import format_bytes

# The temporary name `core.atomic` writes beside a target is the target's name plus this many bytes
PARTIAL_NAME_OVERHEAD = len(".") + len(".4294967295.0123456789ab.partial")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def describe_os_error(exc: OSError) -> str:
    """One line for an error of the file system on a path the user gave ("NAME: cannot use it
    (File name too long)"), or on a stream with no name ("No space left on device")."""
    if exc.filename is None:
        return _reason(exc)
    shown = os.fsdecode(exc.filename) if isinstance(exc.filename, bytes) else str(exc.filename)
    if len(shown) > 120:
        shown = shown[:60] + "..." + shown[-40:]
    return f"{shown}: cannot use it ({_reason(exc)})"


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


def check_path_usable(path: str | os.PathLike, error: type[UserFacingError] = UserFacingError) -> None:
    """Refuse, with the file system's reason, a path it cannot even look up (a name too long, a
    folder we may not enter); a path that is merely not there passes, for the caller to say so."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as exc:
        raise error(f"{path}: cannot open it ({_reason(exc)})") from None
    except ValueError:  # a NUL byte in the name
        raise error(f"{path}: not a usable file name") from None


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


def check_output_file(path: str | os.PathLike, flag: str = "--out", inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """`path` if a file can be written there: not a folder, not one of the command's `inputs`
    (which writing would destroy), a name the file system takes, in a folder that exists (it is
    created) and is writable."""
    text = str(path)
    if not text.strip():
        raise UserFacingError(f"{flag} is empty: give a file name")
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)) or os.path.isdir(path):  # os.path's checks say False, never raise
        raise UserFacingError(f"{path}: is a folder; give {flag} the name of a file inside it")
    for source in inputs:
        if _same_file(path, Path(source).expanduser()):
            raise UserFacingError(
                f"{path}: is also an input of this command, which {flag} would overwrite; give {flag} another name"
            )
    name_max = _name_max(path.parent)
    if len(os.fsencode(path.name)) + PARTIAL_NAME_OVERHEAD > name_max:
        raise UserFacingError(
            f"{path.name[:40]}...: the file name is too long for {flag} (at most "
            f"{name_max - PARTIAL_NAME_OVERHEAD} bytes here)"
        )
    check_output_folder(path.parent, flag)
    return path


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links too); False where either cannot be looked at."""
    with contextlib.suppress(OSError, ValueError):
        return os.path.samefile(a, b)
    with contextlib.suppress(OSError, ValueError):
        return os.path.realpath(a) == os.path.realpath(b)
    return False


def read_torch_data(path: str | os.PathLike):
    """`torch.load(path, weights_only=True)`: tensors, numbers and containers, never code. The
    warnings torch prints on the way (a legacy file format, a storage deprecation) are not the
    user's to read: the caller's one line says what went wrong, if anything did."""

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True)


def _name_max(folder: Path) -> int:
    """The longest file name the folder's file system takes (255 on every common one)."""
    for candidate in (folder, *folder.parents):
        try:
            return os.pathconf(candidate, "PC_NAME_MAX")
        except (OSError, ValueError, AttributeError):  # not there yet, or no pathconf (Windows)
            continue
    return 255
