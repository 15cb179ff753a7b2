"""The schema of a trajectory file's meta: what every field the app reads back must be, checked
before any of it is used (core.schema). `RunMeta` (core.run_meta) is the same record as typed
fields; this says which values a file may hold in them.

The file's own keys (format, version, coeffs, extras, updates) sit beside the run's: see
core.formats.trajectory_file, which writes and reads them.
"""

from __future__ import annotations

from diffusion_stepper.core import schema
from diffusion_stepper.core.diffusion.objectives import objective_spec
from diffusion_stepper.core.diffusion.rules.catalogue import ALL_SAMPLERS
from diffusion_stepper.core.limits import (
    CHAIN_LENGTH,
    CLASSES,
    ETA,
    GUIDANCE,
    NAME_CHARS,
    SAMPLES,
    SEED,
    TITLE_CHARS,
)
from diffusion_stepper.core.run_meta import VIEW_NAMES
from diffusion_stepper.core.schema import SchemaError
from diffusion_stepper.core.updates import PREVIOUS, THIS

REQUIRED_META = ("algorithm", "model", "checkpoint", "seed", "params", "value_range")

# What a coefficient may be: any finite number, in these ranges for the ones with a meaning to check
_COEFFICIENT_RANGES = {
    "alpha_bar_t": (0.0, 1.0),
    "alpha_bar_next": (0.0, 1.0),
    "alpha_t": (0.0, 1.0),
    "beta_t": (0.0, 1.0),
    "sigma": (0.0, None),
    "sigma_min": (0.0, None),
    "sigma_max": (0.0, None),
    "blur_kernel": (1.0, None),
    "blur_sigma": (0.0, None),
    "nfe": (0.0, None),
    "guidance_gap": (0.0, None),
    "eta": ETA,
    "guidance": GUIDANCE,
    "ode_sigma_t": (0.0, None),
    "ode_sigma_next": (0.0, None),
    "order": (1.0, 2.0),
    "coef_z": (0.0, None),
}


def meta_reader(num_frames: int, extra_names: list[str]) -> schema.Reader:
    """The trajectory meta's schema: what each field the app reads back must be."""

    integer, count = schema.number(integer=True), schema.number(0, integer=True)
    frame_index = schema.number(0, num_frames - 1, integer=True)
    timestep = schema.number(-1, CHAIN_LENGTH[1], integer=True)
    texts = schema.list_of(schema.text(), max_length=1_000)
    coefficients = schema.record(
        {
            **{key: schema.number(*bounds) for key, bounds in _COEFFICIENT_RANGES.items()},
            "psnr_db": schema.number(allow_infinite=True),  # infinite where x̂₀ equals the original
        },
        others=schema.number(),
    )
    params = schema.record(
        {
            "objective": objective_spec,
            "alpha_bars": schema.list_of(schema.number(0, 1), max_length=CHAIN_LENGTH[1] + 1, min_length=2),
            "timesteps": schema.list_of(timestep, max_length=CHAIN_LENGTH[1] + 1),
            "t": schema.list_of(timestep, max_length=CHAIN_LENGTH[1] + 1),
            "views": schema.list_of(schema.text(VIEW_NAMES), max_length=len(VIEW_NAMES)),
            "stage": schema.number(1, 2, integer=True),
            "guidance": schema.number(*GUIDANCE),
            "steps": count,
            "num_samples": count,
            "per_class": count,
            "classes": schema.list_of(schema.number(0, CLASSES[1], integer=True), max_length=SAMPLES[1]),
            "i_start": count,
            "noise_level": count,
            "blur_kernel": schema.number(1, integer=True),
            "blur_sigma": schema.number(0),
            "sigma": schema.number(0),
            "sigmas": schema.list_of(schema.number(0), max_length=SAMPLES[1]),
            "source": schema.text(),
            "image": schema.text(),
            "mask": schema.text(),
            "task": schema.text(),
            "x0_clip": schema.text(),
            "sampler": schema.text(ALL_SAMPLERS),
            "eta": schema.number(*ETA),
            "image_notes": texts,
            "epoch": schema.optional(count),
            "toy2d": schema.record(
                {
                    "dataset": schema.text(max_chars=NAME_CHARS),
                    "title": schema.text(max_chars=TITLE_CHARS),
                    "extent": schema.number(0.1, 1_000),
                    "field_grid": schema.number(2, 200, integer=True),
                    "exact": schema.boolean,
                },
                required=("dataset", "extent", "field_grid"),
            ),
            "branched_from": schema.record({"run": schema.text(), "step": count, "t": integer}),
        }
    )
    return schema.record(
        {
            "algorithm": schema.text(max_chars=200),
            "model": schema.text(max_chars=1_000),
            "checkpoint": schema.optional(schema.text()),
            "seed": schema.optional(schema.number(*SEED, integer=True)),
            "params": params,
            "value_range": _value_range,
            "prompts": texts,
            "note": schema.text(),
            "device": schema.text(),
            "coeffs": schema.list_of(coefficients, max_length=num_frames, length=num_frames),
            "updates": schema.list_of(schema.optional(_update_record), max_length=num_frames, length=num_frames),
            "extras": schema.record(
                {name: schema.list_of(frame_index, max_length=num_frames) for name in extra_names}, others=None
            ),
        },
        required=REQUIRED_META,
    )


_update_record = schema.record(
    {
        "formula": schema.text(max_chars=1_000),
        "where": schema.text(max_chars=NAME_CHARS),
        "terms": schema.list_of(
            schema.record(
                {
                    "coef": schema.number(),
                    "member": schema.text(max_chars=NAME_CHARS),
                    "frame": schema.number(PREVIOUS, THIS, integer=True),
                    "scale": schema.text(max_chars=NAME_CHARS),
                },
                required=("coef", "member"),
                others=None,
            ),
            max_length=16,
            min_length=1,
        ),
    },
    required=("formula", "terms"),
    others=None,
)


def _value_range(value, where: str) -> list[float]:
    low, high = schema.list_of(schema.number(), max_length=2, length=2)(value, where)
    if not low < high:
        raise SchemaError(where, f"expected [low, high] with low below high, got [{low:g}, {high:g}]")
    return [low, high]
