"""What a run's record says, read in one place: `RunMeta`, the typed view of a trajectory's `meta`.

Producers (the samplers of each family) write `meta` as a plain JSON-ready dict, and the trajectory
file stores that dict as it is, so files keep their format. Everything that reads a run's settings
reads them here, as fields: `RunMeta.of(meta)`, or `trajectory.run_meta`. A field is None where the
run did not record it (older files lack newer keys).

Below the maths and the families, so the trajectory file, the exports and the GUI can ask these
questions without importing the family that made the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

TOY2D_KEY = "toy2d"  # params[TOY2D_KEY] marks a run as a 2D one and says how to draw it
# A 2D run's extras (core.toy2d.runs says what each holds)
GRID_EXTRAS = ("grid_x0_hat", "grid_noise")
EXACT_EXTRAS = ("exact_x0_hat", "exact_noise")
DENSITY = "density"
# A visual anagram's views (core.deepfloyd_if.anagrams makes each)
VIEW_NAMES = ("identity", "flip", "rot90", "rot180", "rot270", "negate", "jigsaw")
# A run recorded from a loop of the user's own (core.own_model.recorder): its update rule is theirs
RECORDED_SOURCE = "recorded from your own loop"
# What a run's frames hold: batches of images, or a 2D run's particles in the plane ([N, 2, 1, 1])
IMAGES, PARTICLES = "images", "particles"


def family_of(algorithm: str) -> str:
    """ "ddpm" (also IF), "flow" or "single-step" (or "noising", ...), from an algorithm name like
    "ddpm+cfg": the part before "+", where DDPM's and IF's many names share the DDPM update."""
    if algorithm.startswith(("ddpm", "if")):
        return "ddpm"
    if algorithm.startswith("flow"):
        return "flow"
    return algorithm.split("+")[0]


@dataclass(frozen=True)
class PlaneView:
    """How a 2D run's particles are drawn (its params.toy2d, written by core.toy2d.runs)."""

    dataset: str
    title: str | None  # the dataset's title, for the picture's caption (older runs: None)
    extent: float  # the view spans [-extent, extent] on both axes
    field_grid: int  # the field's arrows and the grid extras sit on a field_grid x field_grid grid
    exact: bool | None  # the data is a Gaussian mixture, whose noised densities are known exactly

    @classmethod
    def of(cls, toy: Mapping[str, Any]) -> PlaneView:
        return cls(
            dataset=str(toy["dataset"]),
            title=toy.get("title"),
            extent=float(toy["extent"]),
            field_grid=int(toy["field_grid"]),
            exact=toy.get("exact"),
        )


def _tuple(value) -> tuple | None:
    return None if value is None else tuple(value)


@dataclass(frozen=True)
class RunMeta:
    """A run's record as fields. `kind` and `family` are derived: what the frames hold (images, or a
    2D run's particles) and which update family the algorithm belongs to."""

    algorithm: str
    family: str  # "ddpm" (also IF), "flow", "single-step", "noising", ... (see family_of)
    kind: str  # IMAGES or PARTICLES
    model: str | None = None
    checkpoint: str | None = None
    seed: int | None = None
    value_range: tuple[float, float] | None = None
    prompts: tuple[str, ...] | None = None  # IF: one per view, or low and high for a hybrid
    note: str | None = None  # what an experiment says beside its run
    device: str | None = None
    # what the run was made with (meta.params)
    sampler: str | None = None
    steps: int | None = None
    guidance: float | None = None
    eta: float | None = None
    classes: tuple[int, ...] | None = None
    num_samples: int | None = None
    x0_clip: str | None = None
    epoch: int | None = None
    source: str | None = None  # where it started: "pure noise", "step 3 of run 1", ...
    objective: dict | None = None  # the objective's spec (core.diffusion.objectives.objective_from_dict)
    alpha_bars: tuple[float, ...] | None = None  # runs that carry their own schedule (IF)
    sigma: float | None = None  # the single-step denoiser's σ
    sigmas: tuple[float, ...] | None = None  # the noising sweep's σ
    prediction_type: str | None = None  # a diffusers model's output: "epsilon", "sample" or "v_prediction"
    # IF's
    task: str | None = None
    stage: int | None = None
    timesteps: tuple[int, ...] | None = None  # the denoising chain, t by t
    i_start: int | None = None
    views: tuple[str, ...] | None = None  # a visual anagram's views, in prompt order
    blur_kernel: int | None = None  # a hybrid's low-pass filter
    blur_sigma: float | None = None
    image_notes: tuple[str, ...] | None = None  # how the starting image was converted
    # the 2D lab's
    plane: PlaneView | None = None  # set exactly when kind is PARTICLES
    # Every setting as recorded, read-only: only for code that lists all of them generically (the
    # page's settings table, what tells compared runs apart); everything else reads the fields.
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, meta: Mapping[str, Any]) -> RunMeta:
        """The record of a meta dict as producers write it and the trajectory file reads it back
        (already checked there, core.formats.trajectory_meta); a key it lacks gives None."""
        params = meta.get("params") or {}
        algorithm = str(meta.get("algorithm", ""))
        toy = params.get(TOY2D_KEY)
        value_range = meta.get("value_range")
        return cls(
            algorithm=algorithm,
            family=family_of(algorithm),
            kind=PARTICLES if toy is not None else IMAGES,
            model=meta.get("model"),
            checkpoint=meta.get("checkpoint"),
            seed=meta.get("seed"),
            value_range=None if value_range is None else (float(value_range[0]), float(value_range[1])),
            prompts=_tuple(meta.get("prompts")),
            note=meta.get("note"),
            device=meta.get("device"),
            sampler=params.get("sampler"),
            steps=params.get("steps"),
            guidance=params.get("guidance"),
            eta=params.get("eta"),
            classes=_tuple(params.get("classes")),
            num_samples=params.get("num_samples"),
            x0_clip=params.get("x0_clip"),
            epoch=params.get("epoch"),
            source=params.get("source"),
            objective=params.get("objective"),
            alpha_bars=_tuple(params.get("alpha_bars")),
            sigma=params.get("sigma"),
            sigmas=_tuple(params.get("sigmas")),
            prediction_type=params.get("prediction_type"),
            task=params.get("task"),
            stage=params.get("stage"),
            timesteps=_tuple(params.get("timesteps")),
            i_start=params.get("i_start"),
            views=_tuple(params.get("views")),
            blur_kernel=params.get("blur_kernel"),
            blur_sigma=params.get("blur_sigma"),
            image_notes=_tuple(params.get("image_notes")),
            plane=None if toy is None else PlaneView.of(toy),
            params=MappingProxyType(dict(params)),
        )
