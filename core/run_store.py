"""Frames of runs that are off screen, kept in temporary files instead of memory.

The session decides which runs go to disk and when (see `Session`, "memory"); this module only
writes a run's frames to a file of its own and reads them back. The files hold plain data
(tensors, numbers, dicts), read with `torch.load(weights_only=True)`: never code, even though
the app wrote them itself. They live in one temporary folder, removed when the store closes or
at exit.
"""

from __future__ import annotations

import atexit
import pickle
import shutil
import tempfile
from pathlib import Path

import torch

from diffusion_stepper.core.frames import Frame
from diffusion_stepper.core.updates import update_from_record


class FrameStoreError(Exception):
    """A stored run's frames could not be read back (the file went, or is damaged)."""


class FrameStore:
    """One temporary folder of frame files. A disk that cannot take a file (full, read-only) turns
    the store off (`usable` False) so the caller keeps everything in memory from then on."""

    def __init__(self) -> None:
        self._folder: Path | None = None
        self.usable = True

    def put(self, name: str, frames: list[Frame]) -> Path | None:
        """Write `frames` to the file `name` in the store; its path, or None if the disk refused."""
        if not self.usable:
            return None
        try:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="diffusion-stepper-runs-"))
                atexit.register(shutil.rmtree, self._folder, True)
            path = self._folder / f"{name}.pt"
            torch.save([_frame_record(frame) for frame in frames], path)
        except (OSError, RuntimeError):
            self.usable = False
            return None
        return path

    @staticmethod
    def take(path: Path) -> list[Frame]:
        """The frames stored at `path`; the file is removed either way."""
        try:
            records = torch.load(path, weights_only=True)
            return [_frame_from_record(record) for record in records]
        except (OSError, RuntimeError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            raise FrameStoreError(f"its frames could not be read back from {path}: {exc}") from None
        finally:
            path.unlink(missing_ok=True)

    @staticmethod
    def discard(path: Path | None) -> None:
        if path is not None:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Remove the folder and every file still in it (also done at exit)."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _frame_record(frame: Frame) -> dict:
    """A frame as plain data (tensors, numbers, dicts) that `torch.load(weights_only=True)` reads back."""
    return {
        "index": int(frame.index),
        "t": float(frame.t),
        "x_t": frame.x_t,
        "x0_hat": frame.x0_hat,
        "eps_hat": frame.eps_hat,
        "v_hat": frame.v_hat,
        "coeffs": {name: _plain(value) for name, value in frame.coeffs.items()},
        "extras": dict(frame.extras),
        "update": frame.update.to_record() if frame.update is not None else None,
    }


def _frame_from_record(record: dict) -> Frame:
    update = record.pop("update", None)
    return Frame(**record, update=update_from_record(update) if update is not None else None)


def _plain(value):
    """A number as Python's own type (a numpy or tensor scalar is not plain data to weights_only)."""
    return value if isinstance(value, (str, bool, int, float)) else float(value)
