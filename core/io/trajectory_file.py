"""The trajectory file: one `.npz` (no pickle) holding every frame of a run.

Arrays, F frames of N images of C x H x W:
  x_t, x0_hat        float32 [F, N, C, H, W]
  eps_hat | v_hat    float32 [F, N, C, H, W]   (whichever the algorithm has)
  t                  float64 [F]
  labels             int64   [N]                (class-conditioned runs only)
  extra_<name>       float32 [F, N', C', H', W'] (named extra images, zeros where a frame lacks one)
  meta               a 0-d string array holding JSON (see `save_trajectory`)

The README's "Trajectory files" section documents the same thing for users.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from diffusion_stepper.core.atomic import atomic_path
from diffusion_stepper.core.errors import TrajectoryFileError
from diffusion_stepper.core.frames import NOISE_FIELDS, Frame, Trajectory

FORMAT_NAME = "diffusion-stepper-trajectory"
FORMAT_VERSION = 1
EXTRA_PREFIX = "extra_"
REQUIRED_META = ("algorithm", "model", "checkpoint", "seed", "params", "value_range")
# Keys the file format adds to the run's own metadata.
_FILE_KEYS = ("format", "version", "coeffs", "extras")


def save_trajectory(trajectory: Trajectory, path: str | os.PathLike) -> Path:
    """Write `trajectory` to `path` atomically; returns the path written."""
    frames = trajectory.frames
    if not frames:
        raise ValueError("cannot save a trajectory with no frames")
    missing = [key for key in REQUIRED_META if key not in trajectory.meta]
    if missing:
        raise ValueError(f"trajectory meta lacks {', '.join(missing)}")
    noise_field = trajectory.noise_field
    arrays: dict[str, np.ndarray] = {
        "x_t": trajectory.stack("x_t").numpy(),
        "x0_hat": trajectory.stack("x0_hat").numpy(),
        "t": np.asarray([float(frame.t) for frame in frames], dtype=np.float64),
    }
    if noise_field is not None:
        arrays[noise_field] = trajectory.stack(noise_field).numpy()
    if trajectory.labels is not None:
        arrays["labels"] = trajectory.labels.to(torch.int64).numpy()
    extras_present = {}
    for name in trajectory.extra_names():
        present = [frame.index for frame in frames if name in frame.extras]
        template = frames[present[0]].extras[name]
        stacked = [frame.extras.get(name, torch.zeros_like(template)) for frame in frames]
        arrays[EXTRA_PREFIX + name] = torch.stack(stacked).numpy()
        extras_present[name] = present
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        **trajectory.meta,
        "coeffs": [frame.coeffs for frame in frames],
        "extras": extras_present,
    }
    arrays["meta"] = np.asarray(json.dumps(meta))
    target = Path(path)
    with atomic_path(target) as temporary, open(temporary, "wb") as handle:  # a handle: numpy appends no ".npz"
        np.savez_compressed(handle, **arrays)
    return target


def load_trajectory(path: str | os.PathLike) -> Trajectory:
    """Read a trajectory file; any problem raises one `TrajectoryFileError` line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise TrajectoryFileError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):  # else numpy reads it as a pickle and suggests unpickling it
        raise TrajectoryFileError(
            f"{path}: not a readable trajectory file (truncated or corrupt: not a complete .npz archive)"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, zipfile.LargeZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TrajectoryFileError(f"{path}: not a readable trajectory file (truncated or corrupt: {reason})") from None
    return _trajectory_from_arrays(path, arrays)


def _trajectory_from_arrays(path: Path, arrays: dict[str, np.ndarray]) -> Trajectory:
    def fail(message: str) -> TrajectoryFileError:
        return TrajectoryFileError(f"{path}: {message}")

    missing = [key for key in ("x_t", "x0_hat", "t", "meta") if key not in arrays]
    if missing:
        raise fail(f"not a diffusion-stepper trajectory (missing {', '.join(missing)})")
    try:
        meta = json.loads(str(arrays["meta"][()]))
    except (json.JSONDecodeError, TypeError, ValueError, IndexError):
        raise fail("its meta entry is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise fail("not a diffusion-stepper trajectory (meta has no matching 'format')")
    if meta.get("version") != FORMAT_VERSION:
        raise fail(
            f"trajectory format version {meta.get('version')} is not supported (this build reads {FORMAT_VERSION})"
        )
    lacking = [key for key in REQUIRED_META if key not in meta]
    if lacking:
        raise fail(f"meta lacks {', '.join(lacking)}")

    x_t, x0_hat, t = arrays["x_t"], arrays["x0_hat"], arrays["t"]
    if x_t.ndim != 5:
        raise fail(f"x_t must be [F, N, C, H, W], got shape {x_t.shape}")
    num_frames = x_t.shape[0]
    if num_frames == 0:
        raise fail("it holds no frames")
    if x0_hat.shape != x_t.shape:
        raise fail(f"x0_hat shape {x0_hat.shape} differs from x_t shape {x_t.shape}")
    if t.shape != (num_frames,):
        raise fail(f"t must have one entry per frame ({num_frames}), got shape {t.shape}")
    for name, array in arrays.items():
        if name not in ("meta", "labels", "t") and not np.issubdtype(array.dtype, np.floating):
            raise fail(f"{name} must be a float array, got {array.dtype}")
    noise_fields = [name for name in NOISE_FIELDS if name in arrays]
    if len(noise_fields) > 1:
        raise fail("it holds both eps_hat and v_hat")
    for name in noise_fields:
        if arrays[name].shape != x_t.shape:
            raise fail(f"{name} shape {arrays[name].shape} differs from x_t shape {x_t.shape}")
    coeffs = meta.get("coeffs") or [{} for _ in range(num_frames)]
    if len(coeffs) != num_frames:
        raise fail(f"meta has coefficients for {len(coeffs)} frames, arrays hold {num_frames}")
    labels = None
    if "labels" in arrays:
        if arrays["labels"].shape != (x_t.shape[1],):
            raise fail(f"labels must have one entry per image ({x_t.shape[1]}), got shape {arrays['labels'].shape}")
        labels = torch.from_numpy(arrays["labels"].astype(np.int64))
    extras_present = meta.get("extras", {})
    extras = {}
    for key, array in arrays.items():
        if key.startswith(EXTRA_PREFIX):
            if array.ndim != 5 or array.shape[0] != num_frames:
                raise fail(f"{key} must be [F, N, C, H, W] with F = {num_frames}, got shape {array.shape}")
            name = key[len(EXTRA_PREFIX) :]
            extras[name] = (
                torch.from_numpy(array.astype(np.float32, copy=False)),
                set(extras_present.get(name, range(num_frames))),
            )

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(arrays[name].astype(np.float32, copy=False))

    images = {name: tensor(name) for name in ("x_t", "x0_hat", *noise_fields)}
    frames = []
    for index in range(num_frames):
        frames.append(
            Frame(
                index=index,
                t=float(t[index]),
                **{name: stack[index] for name, stack in images.items()},
                coeffs=dict(coeffs[index]),
                extras={name: stack[index] for name, (stack, present) in extras.items() if index in present},
            )
        )
    run_meta = {key: value for key, value in meta.items() if key not in _FILE_KEYS}
    return Trajectory(meta=run_meta, frames=frames, labels=labels)
