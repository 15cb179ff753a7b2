"""Model files: safetensors weights plus a JSON sidecar that says what they are.

Shared by every kind of checkpoint (MNIST UNets, the 2D lab's MLPs). The weights are written
first and the sidecar last, each atomically, so a checkpoint is complete exactly when its sidecar
exists. Reading never runs code from a file: the sidecar is JSON checked field by field, and the
weights file's header is checked against the architecture before any tensor is allocated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from diffusion_stepper.core import schema
from diffusion_stepper.core.atomic import atomic_path
from diffusion_stepper.core.errors import CheckpointError
from diffusion_stepper.core.files import check_input_file
from diffusion_stepper.core.limits import check_memory
from diffusion_stepper.core.schema import SchemaError

# No sidecar of ours comes near this; a larger "sidecar" is some other file
MAX_SIDECAR_BYTES = 1024 * 1024


def write_weights_and_sidecar(
    state_dict: dict[str, torch.Tensor], sidecar: dict, weights_path: Path, sidecar_path: Path, dtype: torch.dtype
) -> Path:
    """The weights (floating tensors as `dtype`) first, the sidecar last; returns the sidecar path.
    `sidecar` must already hold its "format" and "version"."""
    weights = {
        name: tensor.detach().to("cpu", dtype if tensor.is_floating_point() else tensor.dtype).contiguous()
        for name, tensor in state_dict.items()
    }
    with atomic_path(weights_path) as temporary:
        save_file(weights, str(temporary))
    full_sidecar = {**sidecar, "weights": weights_path.name, "weights_dtype": str(dtype).replace("torch.", "")}
    with atomic_path(sidecar_path) as temporary:
        temporary.write_text(json.dumps(full_sidecar, indent=2))
    return sidecar_path


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
        return reader(sidecar, "sidecar")
    except SchemaError as exc:
        raise CheckpointError(f"{sidecar_path}: malformed checkpoint sidecar ({exc})") from None


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
