"""The trajectory file: one `.npz` (no pickle) holding every frame of a run.

Arrays, F frames of N images of C x H x W:
  x_t, x0_hat        float32 [F, N, C, H, W]
  eps_hat | v_hat    float32 [F, N, C, H, W]   (whichever the algorithm has)
  t                  float64 [F]
  labels             int64   [N]                (class-conditioned runs only)
  data               float32 [M, 2]             (2D runs: a sample of the training data)
  extra_<name>       float32 [F, N', C', H', W'] (named extra images, zeros where a frame lacks one)
  meta               a 0-d string array holding JSON (see `save_trajectory`)

The README's "Trajectory files" section documents the same thing for users; the meta's schema is
core.formats.trajectory_meta, and `Trajectory.run_meta` reads it back as typed fields.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from diffusion_stepper.core.atomic import atomic_path
from diffusion_stepper.core.diffusion.equations import frame_caption, step_equation
from diffusion_stepper.core.errors import TrajectoryFileError, UserFacingError
from diffusion_stepper.core.files import check_input_file
from diffusion_stepper.core.formats.trajectory_meta import REQUIRED_META, meta_reader
from diffusion_stepper.core.frames import IMAGE_FIELDS, NOISE_FIELDS, Frame, Trajectory
from diffusion_stepper.core.limits import (
    CLASSES,
    IMAGE_MAGNITUDE,
    MAX_UNPACK_RATIO,
    MIN_UNPACK_ALLOWANCE,
    PICTURE_CHANNELS,
    check_memory,
    format_bytes,
)
from diffusion_stepper.core.run_meta import DENSITY, EXACT_EXTRAS, GRID_EXTRAS, PARTICLES, RunMeta
from diffusion_stepper.core.schema import SchemaError, parse_json
from diffusion_stepper.core.updates import NOISE, update_from_record

FORMAT_NAME = "diffusion-stepper-trajectory"
FORMAT_VERSION = 1
EXTRA_PREFIX = "extra_"
ARRAY_NAMES = ("x_t", "x0_hat", "t", "labels", "data", "meta", *NOISE_FIELDS)
# Keys the file format adds to the run's own metadata.
_FILE_KEYS = ("format", "version", "coeffs", "extras", "updates")


def save_trajectory(trajectory: Trajectory, path: str | os.PathLike) -> Path:
    """Write `trajectory` to `path` atomically; returns the path written. What is written must
    read back: pictures with NaN or overflowing values, or a record `load_trajectory` would refuse
    (a name too long), are refused here in one line, before the file is replaced."""
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
    if trajectory.data is not None:
        arrays["data"] = trajectory.data.to(torch.float32).numpy()
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
        "updates": [frame.update.to_record() if frame.update is not None else None for frame in frames],
    }
    target = Path(path)

    def refuse(reason: str) -> UserFacingError:
        return UserFacingError(f"{target}: not written, as it would not open again: {reason}")

    for name, array in arrays.items():
        if name not in ("t", "labels", "data"):
            reason = _not_finite_pictures(name, array)
            if reason:
                raise refuse(f"{reason} (the run diverged: try fewer steps, a smaller guidance or another sampler)")
    try:
        meta_reader(len(frames), list(extras_present))(json.loads(json.dumps(meta)), "meta")
    except SchemaError as exc:
        raise refuse(str(exc)) from None
    arrays["meta"] = np.asarray(json.dumps(meta))
    with atomic_path(target) as temporary:
        write_npz(temporary, arrays)
    return target


# zlib's fastest level: frames are mostly float noise, which no level shrinks much: an MNIST run
# comes out 1% larger than at numpy's default level 6, in two thirds of the time.
COMPRESS_LEVEL = 1


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """What `np.savez_compressed` writes (any `np.load` reads it), at `COMPRESS_LEVEL`."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def load_trajectory(path: str | os.PathLike) -> Trajectory:
    """Read a trajectory file; any problem raises one `TrajectoryFileError` line naming the file
    and, where one is to blame, the array or meta field."""
    path = check_input_file(path, TrajectoryFileError)
    try:
        arrays = _read_arrays(path)
        meta = parse_json(_meta_text(arrays), "meta")
        return _trajectory_from_arrays(path, arrays, meta)
    except SchemaError as exc:
        raise TrajectoryFileError(f"{path}: {exc}") from None


# The first bytes of files a user may open by mistake, and what to do with each instead
_OTHER_FILES = (
    (b"GIF8", "a GIF animation (an export), not a run: open the .npz trajectory it was made from"),
    (b"\x89PNG", "a PNG picture, not a run: open a .npz trajectory, or drop the picture on the IF dock as its image"),
    (b"\xff\xd8\xff", "a JPEG picture, not a run: open a .npz trajectory, or use the picture as the IF dock's image"),
    (b"<!DOCTYPE html", "an interactive page (an export): open it in a browser; the app opens .npz trajectories"),
)


def _other_kind_of_file(path: Path) -> str | None:
    """What a file that is not a zip archive is instead, and what to do with it, when we can tell
    from its first bytes: a model checkpoint, an export, a picture; None otherwise."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(4096)  # enough for a sidecar to name its format
    except OSError:
        return None
    for magic, what in _OTHER_FILES:
        if head.startswith(magic):
            return what
    if head[4:8] == b"ftyp":
        return "an MP4 video (an export), not a run: open the .npz trajectory it was made from"
    checkpoint = "a model checkpoint, not a run: add it as a model (File ▸ Add checkpoint…, or drop it on the window)"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return checkpoint  # safetensors: an 8-byte header length, then the JSON header
    if head.lstrip().startswith(b"{") and b"-checkpoint" in head:
        return checkpoint  # a checkpoint's JSON sidecar ("format": "diffusion-stepper-...-checkpoint")
    return None


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The archive's arrays, each header checked against the member's real size (and the whole
    against a memory budget) before any array is allocated; nothing in it is ever unpickled."""

    def corrupt(reason: str) -> TrajectoryFileError:
        return TrajectoryFileError(f"{path}: not a readable trajectory file (truncated or corrupt: {reason})")

    if not zipfile.is_zipfile(path):  # else numpy reads it as a pickle and suggests unpickling it
        kind = _other_kind_of_file(path)
        if kind:
            raise TrajectoryFileError(f"{path}: {kind}")
        raise corrupt("not a complete .npz archive")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_unpacked_size(path, members)
            arrays = {}
            for member in members:
                if not member.filename.endswith(".npy"):
                    raise TrajectoryFileError(f"{path}: holds {member.filename[:60]!r}, which is not an array (.npy)")
                name = member.filename.removesuffix(".npy")
                if name in ARRAY_NAMES or name.startswith(EXTRA_PREFIX):  # any other is a later version's: left
                    with archive.open(member) as stream:
                        arrays[name] = _read_member(path, name, stream, member.file_size)
            return arrays
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise corrupt(reason) from None


def _check_unpacked_size(path: Path, members: list[zipfile.ZipInfo]) -> None:
    """Refuse an archive whose arrays would unpack far beyond its own size (a zip bomb) or beyond
    the memory free, before unpacking any of it."""
    unpacked = sum(member.file_size for member in members)
    packed = path.stat().st_size
    if unpacked > max(MIN_UNPACK_ALLOWANCE, MAX_UNPACK_RATIO * packed):
        raise TrajectoryFileError(
            f"{path}: its arrays would unpack to {format_bytes(unpacked)} from {format_bytes(packed)} "
            f"(more than {MAX_UNPACK_RATIO}x), which no run of ours does; refused"
        )
    # the arrays, plus float32 copies of any stored at another precision
    check_memory(2 * unpacked, f"opening {path}", "close other runs or programs, or open it on a larger machine")


def _read_member(path: Path, name: str, stream, stored_bytes: int) -> np.ndarray:
    """One .npy member: its header, checked against the bytes the member really holds, then its data."""

    def fail(message: str) -> TrajectoryFileError:
        return TrajectoryFileError(f"{path}: array {name!r} {message}")

    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise fail(f"is in .npy format version {version[0]}.{version[1]}, which this build does not read")
    except ValueError as exc:
        raise fail(f"has an unreadable header ({str(exc).splitlines()[0]})") from None
    if dtype.hasobject or dtype.kind not in "biufU":
        raise fail(f"holds {dtype} values, not numbers or text")
    header_bytes = stream.tell()
    data_bytes = math.prod(shape) * dtype.itemsize
    if data_bytes != stored_bytes - header_bytes:
        raise fail(
            f"declares {format_bytes(data_bytes)} of data ({dtype}, shape {shape}) but holds "
            f"{format_bytes(max(stored_bytes - header_bytes, 0))}"
        )
    buffer = bytearray(data_bytes)
    view, filled = memoryview(buffer), 0
    while filled < data_bytes:
        count = stream.readinto(view[filled:])
        if not count:
            raise fail("ends before its data does")
        filled += count
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def _meta_text(arrays: dict[str, np.ndarray]) -> str:
    meta = arrays.get("meta")
    if meta is None:
        raise SchemaError("meta", "missing: not a diffusion-stepper trajectory")
    if meta.shape != () or meta.dtype.kind != "U":
        raise SchemaError("meta", f"expected one JSON text, got {meta.dtype} of shape {meta.shape}")
    return str(meta[()])


def _trajectory_from_arrays(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> Trajectory:
    def fail(message: str) -> TrajectoryFileError:
        return TrajectoryFileError(f"{path}: {message}")

    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise fail("not a diffusion-stepper trajectory (meta has no matching 'format')")
    if meta.get("version") != FORMAT_VERSION:
        raise fail(
            f"trajectory format version {str(meta.get('version'))[:20]} is not supported (this build reads "
            f"{FORMAT_VERSION})"
        )
    missing = [key for key in ("x_t", "x0_hat", "t") if key not in arrays]
    if missing:
        raise fail(f"not a diffusion-stepper trajectory (missing {', '.join(missing)})")

    x_t, t = arrays["x_t"], arrays["t"]
    if x_t.ndim != 5:
        raise fail(f"x_t must be [F, N, C, H, W], got shape {x_t.shape}")
    if 0 in x_t.shape:
        raise fail(f"x_t holds no pictures (shape {x_t.shape}: F frames of N images of C x H x W, none may be 0)")
    num_frames = x_t.shape[0]
    images = [name for name in arrays if name in ("x_t", "x0_hat", *NOISE_FIELDS) or name.startswith(EXTRA_PREFIX)]
    for name in images:
        if arrays[name].dtype.kind != "f":
            raise fail(f"{name} must be a float array, got {arrays[name].dtype}")
        reason = _not_finite_pictures(name, arrays[name])
        if reason:
            raise fail(reason)
    for name in ("x0_hat", *NOISE_FIELDS):
        if name in arrays and arrays[name].shape != x_t.shape:
            raise fail(f"{name} shape {arrays[name].shape} differs from x_t shape {x_t.shape}")
    noise_fields = [name for name in NOISE_FIELDS if name in arrays]
    if len(noise_fields) > 1:
        raise fail("it holds both eps_hat and v_hat")
    if t.shape != (num_frames,) or t.dtype.kind not in "iuf":
        raise fail(f"t must be {num_frames} numbers, one per frame, got {t.dtype} of shape {t.shape}")
    if not np.isfinite(t).all():
        raise fail("t holds NaN or infinite times")
    labels = None
    if "labels" in arrays:
        stored = arrays["labels"]
        if stored.shape != (x_t.shape[1],) or stored.dtype.kind not in "iu":
            raise fail(
                f"labels must be {x_t.shape[1]} integers, one per image, got {stored.dtype} of shape {stored.shape}"
            )
        if stored.size and (stored.min() < 0 or stored.max() > CLASSES[1]):
            raise fail(f"labels must be classes 0 to {CLASSES[1]}, got {stored.min()} to {stored.max()}")
        labels = torch.from_numpy(stored.astype(np.int64))
    data = None
    if "data" in arrays:
        stored = arrays["data"]
        if stored.ndim != 2 or stored.shape[1] != 2 or stored.dtype.kind != "f" or not np.isfinite(stored).all():
            raise fail(f"data must be finite points [M, 2], got {stored.dtype} of shape {stored.shape}")
        data = torch.from_numpy(stored.astype(np.float32))
    extras = {}
    for key, array in arrays.items():
        if key.startswith(EXTRA_PREFIX):
            if array.ndim != 5 or array.shape[0] != num_frames or 0 in array.shape:
                raise fail(f"{key} must be [F, N, C, H, W] with F = {num_frames}, got shape {array.shape}")
            extras[key[len(EXTRA_PREFIX) :]] = array

    meta = meta_reader(num_frames, list(extras))(meta, "meta")
    coeffs = meta.get("coeffs") or [{} for _ in range(num_frames)]
    updates = meta.get("updates") or [None] * num_frames  # files from before steps recorded them have none
    present = {name: set(meta.get("extras", {}).get(name, range(num_frames))) for name in extras}

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array.astype(np.float32, copy=False))

    stacks = {name: tensor(arrays[name]) for name in ("x_t", "x0_hat", *noise_fields) if name in arrays}
    extra_stacks = {name: tensor(array) for name, array in extras.items()}
    frames = []
    for index in range(num_frames):
        frames.append(
            Frame(
                index=index,
                t=float(t[index]),
                **{name: stack[index] for name, stack in stacks.items()},
                coeffs=dict(coeffs[index]),
                extras={name: stack[index] for name, stack in extra_stacks.items() if index in present[name]},
                update=update_from_record(updates[index]) if updates[index] is not None else None,
            )
        )
    _check_update_members(path, frames)
    run_meta = {key: value for key, value in meta.items() if key not in _FILE_KEYS}
    record = RunMeta.of(run_meta)
    _check_points_layout(path, record, x_t.shape, extras)
    _check_each_step_can_be_shown(path, record, frames)
    return Trajectory(meta=run_meta, frames=frames, labels=labels, data=data)


def file_member(name: str) -> str:
    """The file's member that holds a frame's image `name`: x_t, x0_hat, eps_hat, v_hat, or extra_NAME."""
    return name if name in IMAGE_FIELDS else EXTRA_PREFIX + name


def _check_update_members(path: Path, frames: list[Frame]) -> None:
    """Each update's terms name images the frames hold (or z), so evaluating one cannot fail later."""
    for frame in frames:
        if frame.update is None:
            continue
        for term in frame.update.terms:
            here = frame.index
            for name, source in ((term.member, here + term.frame), (term.scale, here), (frame.update.where, here)):
                if not name or name == NOISE:
                    continue
                try:
                    if not 0 <= source < len(frames):
                        raise KeyError(name)
                    frames[source].image(name)
                except KeyError:
                    raise TrajectoryFileError(
                        f"{path}: meta.updates[{frame.index}] names {name!r} of frame {source}, "
                        "which the file does not hold"
                    ) from None


def _not_finite_pictures(name: str, array: np.ndarray) -> str | None:
    """Why `array` [F, ...] cannot be shown (NaN, infinite or beyond ±IMAGE_MAGNITUDE values, from
    which every statistic, histogram and page is NaN), or None; one frame at a time, so the check
    allocates no more than a frame."""
    for index in range(array.shape[0] if array.ndim else 0):
        with np.errstate(invalid="ignore", over="ignore"):
            largest = np.abs(array[index]).max(initial=0.0)
        if not largest <= IMAGE_MAGNITUDE:  # NaN compares False too
            return f"{name} holds NaN, infinite or absurd values (beyond ±{IMAGE_MAGNITUDE:g}) at frame {index}"
    return None


def _check_points_layout(path: Path, meta: RunMeta, shape: tuple[int, ...], extras: dict[str, np.ndarray]) -> None:
    """A 2D run's particles are [F, N, 2, 1, 1] and its grids square (see core.toy2d.runs); an
    image run's pictures are grey or colour (a 2D run without its params.toy2d is neither). The
    file's one question whether a run is a 2D one."""

    if meta.kind != PARTICLES:
        pictures = {"x_t": shape, **{EXTRA_PREFIX + key: extra.shape for key, extra in extras.items()}}
        for name, channels in ((name, found[2]) for name, found in pictures.items()):
            if channels not in PICTURE_CHANNELS:
                raise TrajectoryFileError(
                    f"{path}: {name} has {channels} channels, but an image run's pictures have 1 (grey) or 3 "
                    "(colour); a 2D run also records its params.toy2d"
                )
        return
    if tuple(shape[2:]) != (2, 1, 1):
        raise TrajectoryFileError(f"{path}: a 2D run's x_t must be [F, N, 2, 1, 1] particles, got shape {shape}")
    size = meta.plane.field_grid
    for name in (*GRID_EXTRAS, *EXACT_EXTRAS, DENSITY):
        if name not in extras:
            continue
        expected = (1, 1) if name == DENSITY else (1, 2, size, size)
        found = extras[name].shape[1:]
        if found[: len(expected)] != expected or (name == DENSITY and (len(found) != 4 or found[2] != found[3])):
            raise TrajectoryFileError(
                f"{path}: {EXTRA_PREFIX}{name} has shape {extras[name].shape}, not a 2D run's grid"
            )


def _check_each_step_can_be_shown(path: Path, meta: RunMeta, frames: list[Frame]) -> None:
    """Build every step's caption and update rule once, as the app and `inspect` will: a file
    whose numbers do not fit its algorithm (a coefficient missing, a view unknown) is refused
    here, naming the step, rather than failing mid-lecture."""

    for frame in frames:
        try:
            frame_caption(meta, frame, len(frames))
            step_equation(meta, frame)
        except KeyError as exc:
            raise TrajectoryFileError(
                f"{path}: meta.coeffs[{frame.index}] lacks {exc.args[0]!r}, which this step's update rule needs"
            ) from None
        except (TypeError, ValueError, IndexError, ArithmeticError) as exc:
            raise TrajectoryFileError(
                f"{path}: step {frame.index} cannot be shown from its numbers ({str(exc).splitlines()[0][:80]})"
            ) from None
