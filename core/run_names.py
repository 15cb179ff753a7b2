"""What a run is called: its default name in the runs list, and what sets it apart from the runs it
is compared with (the Compare view's and the interactive page's labels)."""

from __future__ import annotations

from diffusion_stepper.core.diffusion.labels import sampler_label
from diffusion_stepper.core.diffusion.rules.catalogue import DEFAULT_EPS_SAMPLER, DEFAULT_FLOW_SAMPLER
from diffusion_stepper.core.run_meta import RunMeta

# What tells compared runs apart, in the order the Compare view names it: (the record's field, label).
_DIFFERENCE_LABELS = (
    ("model", ""),
    ("algorithm", ""),
    ("sampler", ""),  # DDIM's title carries its η
    ("guidance", "γ = "),
    ("steps", ""),
    ("epoch", "epoch "),
    ("i_start", "i_start = "),
    ("x0_clip", "x̂₀ clip "),
    ("prompts", ""),
    ("seed", "seed "),
)


def run_differences(metas: list[RunMeta]) -> list[str]:
    """For each run, what sets it apart from the others it is compared with: "γ = 5", "epoch 3",
    "mnist-class-flow · flow+cfg" (empty strings for a single run or identical settings)."""
    if len(metas) < 2:
        return ["" for _ in metas]
    rows: list[list[str]] = [[] for _ in metas]
    for key, prefix in _DIFFERENCE_LABELS:
        values = [getattr(meta, key) for meta in metas]
        if len({repr(value) for value in values}) < 2:
            continue
        for row, value, meta in zip(rows, values, metas):
            if value is None:
                continue
            text = " / ".join(value) if isinstance(value, tuple) and all(isinstance(v, str) for v in value) else value
            if key == "steps":
                text = f"{value} steps"
            elif key == "sampler":
                text = sampler_label(meta)
            elif isinstance(value, float):
                text = f"{value:g}"
            row.append(f"{prefix}{text}")
    return [" · ".join(row) for row in rows]


def default_run_name(meta: RunMeta) -> str:
    """A short name for the runs list, e.g. "mnist-class-ddpm · ddpm+cfg γ=5 · 300 steps · seed 0"."""
    parts = ["run" if meta.model is None else str(meta.model), meta.algorithm]
    if meta.guidance is not None:
        parts[-1] += f" γ={meta.guidance:g}"
    default_sampler = DEFAULT_FLOW_SAMPLER if meta.family == "flow" else DEFAULT_EPS_SAMPLER
    if meta.sampler is not None and meta.sampler != default_sampler:
        parts.append(sampler_label(meta))
    if meta.steps is not None:
        parts.append(f"{meta.steps} steps")
    if meta.sigmas is not None:
        parts.append(f"σ = {min(meta.sigmas):g}…{max(meta.sigmas):g}")
    if meta.seed is not None:
        parts.append(f"seed {meta.seed}")
    return " · ".join(part for part in parts if part)
