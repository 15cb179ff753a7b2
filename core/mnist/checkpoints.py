"""MNIST checkpoints: safetensors weights plus a JSON sidecar, written atomically.

For epoch E of a run in DIR:
  DIR/epoch-EEE.safetensors        the model weights (float32, or float16 for bundled models)
  DIR/epoch-EEE.state.safetensors  optimizer moments and the RNG state, for resuming
  DIR/epoch-EEE.json               the sidecar: architecture, objective, hyperparameters, epoch, data

The sidecar is written last, so a checkpoint is complete exactly when its sidecar exists.
A checkpoint is named by its .safetensors or .json path, by its run directory (the latest
epoch), or by a bundled model's name (see `core.mnist.bundled`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from diffusion_stepper.core import schema
from diffusion_stepper.core.diffusion.objectives import Objective, objective_from_dict, objective_spec
from diffusion_stepper.core.diffusion.rules.catalogue import ALL_SAMPLERS, DEFAULT_EPS_SAMPLER, DEFAULT_FLOW_SAMPLER
from diffusion_stepper.core.errors import CheckpointError
from diffusion_stepper.core.files import check_input_file, check_path_usable
from diffusion_stepper.core.formats.weights import (
    check_named_file,
    file_name,
    fitting_model,
    load_fitting_weights,
    read_sidecar_json,
    read_weights,
    write_weights_and_sidecar,
)
from diffusion_stepper.core.limits import CLASSES, HIDDEN, STEPS
from diffusion_stepper.core.mnist import bundled
from diffusion_stepper.core.mnist.unet import ARCHITECTURES, UNet, build_unet
from diffusion_stepper.core.schema import SchemaError

CHECKPOINT_FORMAT = "diffusion-stepper-mnist-checkpoint"
CHECKPOINT_VERSION = 1
X0_CLIP_CHOICES = ("none", "static")  # static: clip x0_hat to the data range [0, 1] in each DDPM step
_EPOCH_SIDECAR = re.compile(r"epoch-(\d+)\.json$")


@dataclass
class LoadedCheckpoint:
    model: UNet
    objective: Objective
    sidecar: dict
    sidecar_path: Path
    name: str  # the bundled name, or the path the user gave

    @property
    def architecture(self) -> str:
        return self.sidecar["architecture"]["name"]

    @property
    def is_class_conditioned(self) -> bool:
        return self.architecture == "class"

    @property
    def num_classes(self) -> int:
        return int(self.sidecar["architecture"].get("num_classes", 0))

    @property
    def default_steps(self) -> int:
        """The sampling steps a run takes unless told: the checkpoint's own choice (bundled models
        pick fewer, strided steps to stay quick on a CPU), else the objective's full chain."""
        return int(self.sidecar.get("sampling", {}).get("steps") or self.objective.default_steps)

    @property
    def default_sampler(self) -> str | None:
        return sampler_of(self.sidecar)

    @property
    def default_x0_clip(self) -> str:
        """ "static" where the checkpoint asks for x0_hat clipped to the data range, else "none"."""
        return str(self.sidecar.get("sampling", {}).get("x0_clip", "none"))


def sampler_of(sidecar: dict) -> str | None:
    """The step rule a checkpoint samples with unless told: its own choice (bundled models pick a
    cheap one that samples as well), else its objective's (ddpm, or euler for flow); None for the
    single-step denoiser, which has no step rule to choose."""

    objective = sidecar["objective"]["name"]
    if objective == "single-step":
        return None
    own = sidecar.get("sampling", {}).get("sampler")
    return own or (DEFAULT_FLOW_SAMPLER if objective == "flow" else DEFAULT_EPS_SAMPLER)


def display_name(path_or_name: str | os.PathLike, sidecar_path: Path) -> str:
    """A bundled model's name, or "run-folder/epoch-005" for a checkpoint file."""
    text = str(path_or_name)
    if text in bundled.bundled_models():
        return text
    return f"{sidecar_path.parent.name}/{sidecar_path.stem}"


def samples_path(out_dir: str | os.PathLike, epoch: int) -> Path:
    """The epoch's sample grid, a PNG beside its checkpoint."""
    return Path(out_dir) / f"epoch-{epoch:03d}-samples.png"


def checkpoint_paths(out_dir: Path, epoch: int) -> tuple[Path, Path, Path]:
    stem = out_dir / f"epoch-{epoch:03d}"
    return stem.with_suffix(".safetensors"), Path(f"{stem}.state.safetensors"), stem.with_suffix(".json")


def save_checkpoint(
    out_dir: str | os.PathLike,
    epoch: int,
    model: UNet,
    sidecar: dict,
    training_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write epoch `epoch`'s weights, training state and sidecar, all together (an older epoch here
    stays whole until they are); returns the sidecar path."""
    weights_path, state_path, sidecar_path = checkpoint_paths(Path(out_dir), epoch)
    sidecar = {**sidecar, "epoch": epoch}
    other_files = {}
    if training_state is not None:
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in training_state.items()}
        other_files["training_state"] = (state_path, state)
    return _write_weights_and_sidecar(model, sidecar, weights_path, sidecar_path, torch.float32, other_files)


def write_bundled_copy(
    path_or_name: str | os.PathLike,
    name: str,
    dest_dir: str | os.PathLike,
    dtype: torch.dtype = torch.float16,
    sampling_steps: int | None = None,
    x0_clip: str | None = None,
    sampler: str | None = None,
) -> Path:
    """Copy a checkpoint as DEST/NAME.safetensors + NAME.json: smaller weights, no training state,
    and optionally its own sampling defaults (steps, x0_hat clipping, step rule)."""
    loaded = load_checkpoint(path_or_name)
    sidecar = {
        key: value
        for key, value in loaded.sidecar.items()
        if not key.startswith("training_state") and key != "optimizer_param_groups"
    }
    sidecar["bundled_from"] = str(loaded.sidecar_path)
    if sampling_steps is not None:
        if loaded.objective.name == "single-step" or sampling_steps > loaded.objective.default_steps:
            raise CheckpointError(
                f"--steps {sampling_steps} does not fit {loaded.objective.name} (at most "
                f"{loaded.objective.default_steps})"
            )
        sidecar.setdefault("sampling", {})["steps"] = sampling_steps
    if x0_clip is not None:
        if loaded.objective.name != "ddpm":
            raise CheckpointError(f"--x0-clip is for DDPM models; this one is {loaded.objective.name}")
        sidecar.setdefault("sampling", {})["x0_clip"] = x0_clip
    if sampler is not None:
        if sampler not in loaded.objective.samplers:
            suitable = ", ".join(loaded.objective.samplers) or "none: it jumps once"
            raise CheckpointError(f"--sampler {sampler} does not suit {loaded.objective.name} (suitable: {suitable})")
        sidecar.setdefault("sampling", {})["sampler"] = sampler
    dest_dir = Path(dest_dir)
    return _write_weights_and_sidecar(
        loaded.model, sidecar, dest_dir / f"{name}.safetensors", dest_dir / f"{name}.json", dtype
    )


def _write_weights_and_sidecar(
    model: UNet,
    sidecar: dict,
    weights_path: Path,
    sidecar_path: Path,
    dtype: torch.dtype,
    other_files: dict[str, tuple[Path, dict[str, torch.Tensor]]] | None = None,
) -> Path:
    sidecar = {**sidecar, "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION}
    return write_weights_and_sidecar(model.state_dict(), sidecar, weights_path, sidecar_path, dtype, other_files)


def saved_epochs(run_dir: str | os.PathLike) -> dict[int, Path]:
    """A training run's finished epochs: epoch number -> its sidecar, in epoch order."""
    found = (
        (int(match.group(1)), sidecar)
        for sidecar in Path(run_dir).glob("epoch-*.json")
        if (match := _EPOCH_SIDECAR.fullmatch(sidecar.name))
    )
    return dict(sorted(found))


def training_runs(parent: str | os.PathLike, first: Path | None = None) -> dict[Path, dict[int, Path]]:
    """The runs with a finished epoch, each with its `saved_epochs`: the folders right under
    `parent`, the most recently saved first, after `first` (a run that may live elsewhere)."""
    try:
        folders = [folder for folder in Path(parent).iterdir() if folder.is_dir()]
    except OSError:  # no such folder yet, or unreadable: no runs there
        folders = []
    runs = {folder: epochs for folder in folders if (epochs := saved_epochs(folder))}
    newest_first = sorted(runs, key=lambda folder: max(p.stat().st_mtime for p in runs[folder].values()), reverse=True)
    ordered = {folder: runs[folder] for folder in newest_first}
    if first is not None and (epochs := saved_epochs(first)):
        ordered = {first: epochs, **{folder: saved for folder, saved in ordered.items() if folder != first}}
    return ordered


def resolve_checkpoint(path_or_name: str | os.PathLike) -> Path:
    """The sidecar path for a bundled name, a run directory, a .json or a .safetensors path."""
    text = str(path_or_name)
    known = bundled.bundled_models()
    if text in known:
        return known[text]
    path = Path(text).expanduser()
    if not os.path.exists(path):  # os.path's checks say False, where Path's raise (a name too long)
        check_path_usable(path, CheckpointError)
        if os.path.lexists(path):  # a dangling link or a loop
            check_input_file(path, CheckpointError)
        if os.sep not in text and "/" not in text and not path.suffix:
            raise CheckpointError(
                f"unknown model {text!r}; bundled models are {', '.join(sorted(known)) or 'none'}, "
                "or give the path of a .safetensors checkpoint"
            )
        raise CheckpointError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        sidecars = saved_epochs(path)
        if not sidecars:
            raise CheckpointError(f"{path}: directory holds no epoch-NNN.json checkpoint")
        return sidecars[max(sidecars)]
    if path.suffix == ".json":
        return path
    if path.suffix == ".safetensors":
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():
            raise CheckpointError(
                f"{path}: has no JSON sidecar {sidecar.name} beside it, so its architecture is unknown"
            )
        return sidecar
    raise CheckpointError(
        f"{path}: not a diffusion-stepper checkpoint (expected a .safetensors file with a .json sidecar)"
    )


def read_sidecar(sidecar_path: Path) -> dict:
    """The sidecar's JSON, checked field by field against `sidecar_reader`."""
    return read_sidecar_json(sidecar_path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "MNIST", sidecar_reader())


def sidecar_reader() -> schema.Reader:
    """The sidecar's schema: what each field the app reads must be, and how large it may be."""

    count = schema.number(0, integer=True)
    architecture = schema.record(
        {
            "name": schema.text(ARCHITECTURES),
            "hidden": schema.number(*HIDDEN, integer=True),
            "num_classes": schema.number(*CLASSES, integer=True),
            "in_channels": schema.number(1, 1, integer=True),
            "image_size": schema.number(28, 28, integer=True),
        },
        required=("name", "hidden"),
    )
    sampling = schema.record(
        {
            "steps": schema.optional(schema.number(*STEPS, integer=True)),
            "x0_clip": schema.text(X0_CLIP_CHOICES),
            "sampler": schema.text(ALL_SAMPLERS),
        },
        others=None,
    )
    read = schema.record(
        {
            "architecture": architecture,
            "objective": objective_spec,
            "weights": file_name,
            "training_state": file_name,
            "sampling": sampling,
            "epoch": count,
            "iteration": count,
            "hyperparameters": schema.record({}),
            "optimizer_param_groups": schema.list_of(schema.record({}), max_length=64),
        },
        required=("architecture", "objective", "weights"),
    )

    def read_sidecar_fields(value, where: str) -> dict:
        sidecar = read(value, where)
        sampling = sidecar.get("sampling", {})
        objective = objective_from_dict(sidecar["objective"])
        steps = sampling.get("steps")
        if steps is not None:
            most = objective.default_steps
            if sidecar["objective"]["name"] != "flow" and steps > most:
                raise SchemaError(f"{where}.sampling.steps", f"expected at most {most} for this objective, got {steps}")
        if sampling.get("x0_clip", "none") != "none" and objective.name != "ddpm":
            raise SchemaError(
                f"{where}.sampling.x0_clip",
                f"clipping x̂0 is a DDPM step's option; this model is {objective.name}, got {sampling['x0_clip']!r}",
            )
        if "sampler" in sampling and sampling["sampler"] not in objective.samplers:
            raise SchemaError(
                f"{where}.sampling.sampler",
                f"expected one of {', '.join(objective.samplers) or 'none'} for this objective, "
                f"got {sampling['sampler']!r}",
            )
        return sidecar

    return read_sidecar_fields


def load_checkpoint(path_or_name: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedCheckpoint:
    """Build the model a checkpoint describes and load its weights, in eval mode on `device`."""
    sidecar_path = resolve_checkpoint(path_or_name)
    sidecar = read_sidecar(sidecar_path)
    architecture = sidecar["architecture"]
    objective = objective_from_dict(sidecar["objective"])  # read_sidecar has checked it
    hidden, num_classes = architecture["hidden"], architecture.get("num_classes", 10)
    model = fitting_model(
        sidecar_path,
        sidecar["weights"],
        lambda: build_unet(architecture["name"], hidden, num_classes),
        f"{architecture['name']} UNet with hidden size {hidden}",
        "use a checkpoint with a smaller hidden size",
    )
    load_fitting_weights(model, read_weights(sidecar_path, sidecar), sidecar_path)
    model.to(device).eval()
    return LoadedCheckpoint(model, objective, sidecar, sidecar_path, display_name(path_or_name, sidecar_path))


# What resuming needs beyond the weights
RESUME_KEYS = ("training_state", "hyperparameters", "optimizer_param_groups", "epoch", "iteration")


def load_training_state(sidecar_path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The sidecar and the optimizer/RNG tensors saved for resuming training."""
    sidecar = read_sidecar(sidecar_path)
    if "training_state" not in sidecar:
        raise CheckpointError(
            f"{sidecar_path}: has no training state to resume from (bundled models cannot be resumed)"
        )
    missing = [key for key in RESUME_KEYS if key not in sidecar]
    if missing:
        raise CheckpointError(f"{sidecar_path}: cannot resume from it (its sidecar lacks {', '.join(missing)})")
    state_path = check_named_file(sidecar_path, sidecar, "training_state")
    try:
        state = load_file(str(state_path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{sidecar_path}: cannot read its training state ({exc})") from None
    generator_state = state.get("generator")
    if generator_state is None or generator_state.dtype != torch.uint8 or generator_state.ndim != 1:
        raise CheckpointError(f"{sidecar_path}: cannot resume from it (its training state lacks the generator's state)")
    return sidecar, state
