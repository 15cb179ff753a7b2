"""Write files so that a crash, a full disk or a cancel never leaves a half-written one behind.

The bytes go to a temporary `.NAME.PID.RANDOM.partial` beside the target, renamed over it only
once complete. A process killed mid-write (SIGKILL, power loss) cannot remove its temporary file,
so each write first removes the ones in its folder whose writer is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

_PARTIAL = re.compile(r"\..+?\.(?:(\d+)\.)?[0-9a-f]{8,12}\.partial")  # .NAME.PID.RANDOM or .NAME.RANDOM (older)
# A temporary file untouched this long is stale even where its writer cannot be asked (Windows)
STALE_AFTER_SECONDS = 24 * 3600


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    with temporary_beside(path) as temporary:
        mode = os.stat(temporary).st_mode & 0o777
        yield temporary
        rename_into_place(temporary, path, mode)


@contextlib.contextmanager
def temporary_beside(path: str | os.PathLike) -> Iterator[Path]:
    """An empty temporary file beside `path`, made as a new file there would be (0666 less the
    umask) and named so that a dead writer's is cleaned up; removed when the block ends unless
    `rename_into_place` moved it. For writers that rename several files in an order of their own."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target.parent)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.partial")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # unlike tempfile's private 0600
    try:
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)


def rename_into_place(temporary: Path, path: str | os.PathLike, mode: int) -> None:
    """Rename a finished temporary file over `path`, with `mode` (the mode it was made with: some
    writers, safetensors among them, recreate the file as 0600)."""
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def remove_stale_partials(folder: Path) -> list[Path]:
    """Remove the temporary files in `folder` left by writers that died; returns those removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _PARTIAL.fullmatch(entry.name)
        if not match or not entry.is_file(follow_symlinks=False):
            continue
        try:
            writer = int(match.group(1)) if match.group(1) else None
            stale = time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_SECONDS
            if stale or (writer is not None and writer != os.getpid() and not _process_alive(writer)):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already, or not ours to remove
            continue
    return removed


def _process_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # os.kill(pid, 0) would end the process on Windows; the age rule covers it there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's live process (or a number no process has: keep it, to be safe)
    return True
