"""2D lab checkpoints: the MLP's safetensors weights plus a JSON sidecar, as MNIST's (core.formats.weights).

`train toy2d --out DIR` writes DIR/toy2d.safetensors and DIR/toy2d.json. The sidecar holds the
architecture, the objective, the dataset (a drawn one's points too, so the model samples and
shows its data without the drawing's file) and the training settings and figures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from diffusion_stepper.core import schema
from diffusion_stepper.core.diffusion.objectives import (
    DDPMObjective,
    FlowObjective,
    objective_from_dict,
    objective_spec,
)
from diffusion_stepper.core.errors import CheckpointError
from diffusion_stepper.core.files import check_input_file, check_path_usable
from diffusion_stepper.core.formats.weights import (
    file_name,
    fitting_model,
    load_fitting_weights,
    read_sidecar_json,
    read_weights,
    write_weights_and_sidecar,
)
from diffusion_stepper.core.limits import DRAWN_POINTS, DRAWN_SPREAD, NAME_CHARS, TOY_CLASSES, TOY_DEPTH, TOY_HIDDEN
from diffusion_stepper.core.schema import SchemaError
from diffusion_stepper.core.toy2d.datasets import DATASETS, VIEW_EXTENT, Toy2DDataset
from diffusion_stepper.core.toy2d.drawn import DRAWN_STD, drawn_dataset
from diffusion_stepper.core.toy2d.model import PointMLP
from diffusion_stepper.core.toy2d.training import TOY_OBJECTIVES, Toy2DConfig, Toy2DLoss, Toy2DTrained, train_toy2d

TOY2D_FORMAT = "diffusion-stepper-toy2d-checkpoint"
TOY2D_VERSION = 1
CHECKPOINT_STEM = "toy2d"


@dataclass
class LoadedToy2D:
    model: PointMLP
    objective: DDPMObjective | FlowObjective
    dataset: Toy2DDataset
    sidecar: dict
    sidecar_path: Path

    @property
    def name(self) -> str:
        return f"{self.dataset.name} · {self.objective.name} MLP" + (" (classes)" if self.model.num_classes else "")


def dataset_spec(dataset: Toy2DDataset) -> dict:
    """How a sidecar names its data: a built-in name, or a drawing's own points."""
    if dataset.name in DATASETS and DATASETS[dataset.name] is dataset:
        return {"name": dataset.name}
    mixture = dataset.mixture
    assert mixture is not None, "a dataset outside DATASETS is a drawn one"
    return {"name": dataset.name, "std": float(mixture.stds[0]), "points": mixture.means.float().tolist()}


def dataset_from_spec(spec: dict) -> Toy2DDataset:
    if "points" in spec:
        return drawn_dataset(
            torch.tensor(spec["points"], dtype=torch.float32), spec["name"], spec.get("std", DRAWN_STD)
        )
    return DATASETS[spec["name"]]


def save_toy2d_checkpoint(out_dir: str | os.PathLike, trained: Toy2DTrained) -> Path:
    """Write DIR/toy2d.safetensors then DIR/toy2d.json; returns the sidecar's path."""
    config = trained.config
    sidecar = {
        "format": TOY2D_FORMAT,
        "version": TOY2D_VERSION,
        "architecture": trained.model.architecture(),
        "objective": trained.objective.to_dict(),
        "dataset": dataset_spec(trained.dataset),
        "training": {
            "iterations": config.iterations,
            "batch_size": config.batch_size,
            "lr": config.lr,
            "p_uncond": config.p_uncond,
            "seed": config.seed,
            "seconds": round(trained.seconds, 2),
            "final_loss": trained.final_loss,
        },
    }
    out_dir = Path(out_dir)
    return write_weights_and_sidecar(
        trained.model.state_dict(),
        sidecar,
        out_dir / f"{CHECKPOINT_STEM}.safetensors",
        out_dir / f"{CHECKPOINT_STEM}.json",
        torch.float32,
    )


@dataclass
class Toy2DSaved:
    """The end of `train_and_save_toy2d`: where the model is, and what to say about it."""

    sidecar: Path
    config: Toy2DConfig
    title: str  # the data's title, e.g. "two moons"
    seconds: float
    final_loss: float


def train_and_save_toy2d(config: Toy2DConfig, out_dir: str | os.PathLike) -> Iterator[Toy2DLoss | Toy2DSaved]:
    """Train (loss events as `train_toy2d`), then save to `out_dir`: the CLI's `train toy2d` and
    the 2D lab's child process, so what is trained is saved where it was trained."""
    for event in train_toy2d(config):
        if isinstance(event, Toy2DTrained):
            sidecar = save_toy2d_checkpoint(out_dir, event)
            yield Toy2DSaved(sidecar, config, event.dataset.title, event.seconds, event.final_loss)
        else:
            yield event


def _sidecar_reader() -> schema.Reader:
    point = schema.list_of(schema.number(-VIEW_EXTENT, VIEW_EXTENT), max_length=2, length=2)
    architecture = schema.record(
        {
            "name": schema.text(("point-mlp",)),
            "hidden": schema.number(*TOY_HIDDEN, integer=True),
            "depth": schema.number(*TOY_DEPTH, integer=True),
            "num_classes": schema.number(0, TOY_CLASSES, integer=True),
        },
        required=("name", "hidden", "depth", "num_classes"),
    )
    dataset = schema.record(
        {
            "name": schema.text(max_chars=NAME_CHARS),
            "std": schema.number(*DRAWN_SPREAD),
            "points": schema.list_of(point, max_length=DRAWN_POINTS[1], min_length=DRAWN_POINTS[0]),
        },
        required=("name",),
    )
    read = schema.record(
        {
            "architecture": architecture,
            "objective": objective_spec,
            "dataset": dataset,
            "weights": file_name,
            "training": schema.record({}),
        },
        required=("architecture", "objective", "dataset", "weights"),
    )

    def read_fields(value, where: str) -> dict:
        sidecar = read(value, where)
        if sidecar["objective"]["name"] not in TOY_OBJECTIVES:
            raise SchemaError(f"{where}.objective.name", f"expected one of {', '.join(TOY_OBJECTIVES)}")
        spec = sidecar["dataset"]
        if "points" not in spec and spec["name"] not in DATASETS:
            raise SchemaError(f"{where}.dataset.name", f"expected one of {', '.join(DATASETS)} or drawn points")
        return sidecar

    return read_fields


def resolve_toy2d_checkpoint(path: str | os.PathLike) -> Path:
    """The sidecar of a checkpoint named by its folder, its .json or its .safetensors."""
    path = Path(path).expanduser()
    check_path_usable(path, CheckpointError)
    if os.path.isdir(path):  # os.path's checks say False, where Path's raise (a name too long)
        path = path / f"{CHECKPOINT_STEM}.json"
    elif path.suffix == ".safetensors":
        path = path.with_suffix(".json")
    if not os.path.lexists(path):
        raise CheckpointError(f"{path}: no such 2D checkpoint (train one with `diffusion-stepper train toy2d`)")
    return check_input_file(path, CheckpointError)  # a name too long, a folder, a pipe: one line each


def load_toy2d_checkpoint(path: str | os.PathLike) -> LoadedToy2D:
    sidecar_path = resolve_toy2d_checkpoint(path)
    sidecar = read_sidecar_json(sidecar_path, TOY2D_FORMAT, TOY2D_VERSION, "2D lab", _sidecar_reader())
    architecture = sidecar["architecture"]
    model = fitting_model(
        sidecar_path,
        sidecar["weights"],
        lambda: PointMLP(architecture["hidden"], architecture["depth"], architecture["num_classes"]),
        f"point MLP ({architecture['hidden']} wide, {architecture['depth']} deep)",
        "use a smaller model",
    )
    load_fitting_weights(model, read_weights(sidecar_path, sidecar), sidecar_path)
    model.eval()
    objective = objective_from_dict(sidecar["objective"])
    return LoadedToy2D(model, objective, dataset_from_spec(sidecar["dataset"]), sidecar, sidecar_path)
