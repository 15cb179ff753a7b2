"""Model files: safetensors weights plus a JSON sidecar that says what they are.

Shared by every kind of checkpoint (MNIST UNets, the 2D lab's MLPs). A checkpoint is complete
exactly when its sidecar exists. Saving over a checkpoint keeps a whole one in the folder at every
moment, the old or the new (`write_checkpoint`): the new files are written in full under temporary
names; the old sidecar is pointed at hard links of its files (NAME.previous.safetensors); the new
files, then the new sidecar, are renamed into place; the links go. A kill at any moment leaves the
old pair or the new pair, never an old sidecar beside new weights. The sidecar records the SHA-256
and size of each file it names, and reading refuses a file that is not the one recorded (a pair
mixed some other way: copied by hand, or by an older version's interrupted write).

Reading never runs code from a file: the sidecar is JSON checked field by field, and the weights
file's header is checked against the architecture before any tensor is allocated.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from diffusion_stepper.core import schema
from diffusion_stepper.core.atomic import rename_into_place, temporary_beside, write_bytes_atomically
from diffusion_stepper.core.errors import CheckpointError
from diffusion_stepper.core.files import check_input_file
from diffusion_stepper.core.limits import check_memory
from diffusion_stepper.core.schema import SchemaError

# No sidecar of ours comes near this; a larger "sidecar" is some other file
MAX_SIDECAR_BYTES = 1024 * 1024
# The files a sidecar names, each with its SHA-256 and size recorded beside its name
NAMED_FILES = ("weights", "training_state")
DIGEST, SIZE = "_sha256", "_bytes"
PREVIOUS = ".previous"  # an old checkpoint's files while a new one replaces them


def file_digest(path: str | Path) -> tuple[str, int]:
    """(SHA-256 in hex, size in bytes) of the file, read a megabyte at a time."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def recorded_digest(key: str, path: str | Path) -> dict:
    """The sidecar's record of the file `key` names: {"KEY_sha256": ..., "KEY_bytes": ...}."""
    digest, size = file_digest(path)
    return {key + DIGEST: digest, key + SIZE: size}


def check_named_file(sidecar_path: Path, sidecar: dict, key: str) -> Path:
    """The file the sidecar names under `key` ("weights", "training_state"), refused if it is not
    the one recorded: the size first (free), then the SHA-256. Sidecars from before the record
    are taken as they are."""
    path = check_input_file(sidecar_path.parent / sidecar[key], CheckpointError)
    if key + DIGEST not in sidecar:
        return path
    expected_digest, expected_size = sidecar[key + DIGEST], sidecar.get(key + SIZE)
    if not (isinstance(expected_digest, str) and (expected_size is None or isinstance(expected_size, int))):
        raise CheckpointError(f"{sidecar_path}: malformed checkpoint sidecar ({key}{DIGEST}, {key}{SIZE})")
    try:
        same = (expected_size is None or path.stat().st_size == expected_size) and (
            file_digest(path)[0] == expected_digest
        )
    except OSError as exc:
        raise CheckpointError(f"{sidecar_path}: cannot read its {key} file ({exc.strerror})") from None
    if not same:
        raise CheckpointError(
            f"{sidecar_path}: its {key} file {path.name} is not the one it was saved with (it changed since, "
            "or a save was cut short); train or copy the checkpoint again"
        )
    return path


def write_checkpoint(sidecar: dict, sidecar_path: Path, files: dict[str, tuple[Path, dict[str, torch.Tensor]]]) -> Path:
    """Write the named `files` ({"weights": (path, tensors), "training_state": ...}, each beside
    the sidecar) and the sidecar so that the folder always holds a whole checkpoint, the old one
    or this one (see the module's docstring); returns the sidecar path. The sidecar records each
    file's name, SHA-256 and size."""
    sidecar = dict(sidecar)
    with contextlib.ExitStack() as temporaries:
        written = {}  # final path -> (temporary, the mode it was made with)
        for key, (path, tensors) in files.items():
            temporary = temporaries.enter_context(temporary_beside(path))
            written[path] = (temporary, os.stat(temporary).st_mode & 0o777)
            save_file(tensors, str(temporary))
            sidecar.update({key: path.name, **recorded_digest(key, temporary)})
        sidecar_temporary = temporaries.enter_context(temporary_beside(sidecar_path))
        sidecar_mode = os.stat(sidecar_temporary).st_mode & 0o777
        sidecar_temporary.write_text(json.dumps(sidecar, indent=2))
        kept = _keep_old_checkpoint_readable(sidecar_path, set(written))
        for path, (temporary, mode) in written.items():
            rename_into_place(temporary, path, mode)
        rename_into_place(sidecar_temporary, sidecar_path, sidecar_mode)
    # the old checkpoint is replaced: its links go, also those an earlier, interrupted save left
    for link in {*kept, *(_previous(path) for path, _ in files.values())}:
        link.unlink(missing_ok=True)
    return sidecar_path


def _previous(path: Path) -> Path:
    """Where an old checkpoint's file `path` is kept while a new one replaces it."""
    return path.with_name(f"{path.stem}{PREVIOUS}{path.suffix}")


def _keep_old_checkpoint_readable(sidecar_path: Path, replaced: set[Path]) -> list[Path]:
    """Before the files in `replaced` are renamed over, point an old sidecar here at hard links of
    the files of its that will be replaced (NAME.previous.safetensors), so that the old checkpoint
    stays whole until the new sidecar takes its place; returns the old checkpoint's .previous files
    (made now, or by an earlier save that was cut short). A sidecar that is not ours (not JSON) is
    removed, since its files are about to change under it."""
    try:
        old = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        sidecar_path.unlink(missing_ok=True)
        return []
    if not isinstance(old, dict):
        sidecar_path.unlink(missing_ok=True)
        return []
    links, retargeted = [], False
    for key in NAMED_FILES:
        name = old.get(key)
        if not isinstance(name, str) or "/" in name or "\\" in name:
            continue
        original = sidecar_path.parent / name
        if PREVIOUS in name:
            links.append(original)
        if original not in replaced:
            continue
        link = _previous(original)
        link.unlink(missing_ok=True)
        try:
            os.link(original, link)
        except FileNotFoundError:  # its file is gone already: the old checkpoint was not whole
            continue
        except OSError:  # a file system without hard links
            shutil.copy2(original, link)
        old[key] = link.name
        links.append(link)
        retargeted = True
    if retargeted:
        write_bytes_atomically(sidecar_path, json.dumps(old, indent=2).encode())
    return links


def write_weights_and_sidecar(
    state_dict: dict[str, torch.Tensor],
    sidecar: dict,
    weights_path: Path,
    sidecar_path: Path,
    dtype: torch.dtype,
    other_files: dict[str, tuple[Path, dict[str, torch.Tensor]]] | None = None,
) -> Path:
    """A model's weights (floating tensors as `dtype`) with its sidecar, and any `other_files`
    (the training state), written by `write_checkpoint`; returns the sidecar path. `sidecar` must
    already hold its "format" and "version"."""
    weights = {
        name: tensor.detach().to("cpu", dtype if tensor.is_floating_point() else tensor.dtype).contiguous()
        for name, tensor in state_dict.items()
    }
    files = {"weights": (weights_path, weights), **(other_files or {})}
    return write_checkpoint({**sidecar, "weights_dtype": str(dtype).replace("torch.", "")}, sidecar_path, files)


def read_sidecar_json(sidecar_path: Path, format_name: str, version: int, kind: str, reader: schema.Reader) -> dict:
    """The sidecar's JSON, checked to be ours (`format_name`, `version`) and then by `reader`;
    any problem is one `CheckpointError` line naming the file and the field."""
    check_input_file(sidecar_path, CheckpointError, MAX_SIDECAR_BYTES)
    try:
        sidecar = schema.parse_json(sidecar_path.read_text(encoding="utf-8"), "sidecar")
    except (OSError, UnicodeDecodeError, SchemaError) as exc:
        raise CheckpointError(f"{sidecar_path}: unreadable checkpoint sidecar ({exc})") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != format_name:
        raise CheckpointError(f"{sidecar_path}: not a diffusion-stepper {kind} checkpoint sidecar")
    if sidecar.get("version") != version:
        raise CheckpointError(f"{sidecar_path}: checkpoint version {str(sidecar.get('version'))[:20]} is not supported")
    try:
        sidecar = reader(sidecar, "sidecar")
    except SchemaError as exc:
        raise CheckpointError(f"{sidecar_path}: malformed checkpoint sidecar ({exc})") from None
    check_named_file(sidecar_path, sidecar, "weights")  # the training state is checked when resuming
    return sidecar


def file_name(value, where: str) -> str:
    """A file beside the sidecar: a bare name, never a path that leads elsewhere."""
    name = schema.text(max_chars=255)(value, where)
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise SchemaError(where, f"expected the name of a file beside the sidecar, got {name[:40]!r}")
    return name


def fitting_model(
    sidecar_path: Path, weights_name: str, build: Callable[[], torch.nn.Module], description: str, advice: str
) -> torch.nn.Module:
    """`build()`'s model, built only once the weights file is known (from its header) to hold
    exactly its tensors, so a sidecar cannot make the app allocate gigabytes."""
    with torch.device("meta"):  # shapes only, no memory
        shapes = {key: tuple(tensor.shape) for key, tensor in build().state_dict().items()}
    weights_path = check_input_file(sidecar_path.parent / weights_name, CheckpointError)
    try:
        with safe_open(str(weights_path), "pt") as weights:
            stored = {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{sidecar_path}: cannot read its weights file ({str(exc).splitlines()[0]})") from None
    if stored != shapes:
        wrong = sorted(set(stored) ^ set(shapes)) or [key for key in shapes if stored[key] != shapes[key]]
        raise CheckpointError(
            f"{sidecar_path}: its weights file does not hold the {description} it names (first difference: {wrong[0]})"
        )
    check_memory(4 * sum(math.prod(shape) for shape in shapes.values()), f"the {description}", advice)
    return build()


def read_weights(sidecar_path: Path, sidecar: dict) -> dict[str, torch.Tensor]:
    try:
        weights_path = check_input_file(sidecar_path.parent / sidecar["weights"], CheckpointError)
        return load_file(str(weights_path))
    except KeyError:
        raise CheckpointError(f"{sidecar_path}: sidecar names no weights file") from None
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{sidecar_path}: cannot read its weights file ({exc})") from None


def load_fitting_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], sidecar_path: Path) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        first_line = str(exc).splitlines()[0]
        raise CheckpointError(f"{sidecar_path}: weights do not fit the architecture it names ({first_line})") from None
