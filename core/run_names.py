"""What a run is called: its default name in the runs list, and what sets it apart from the runs it
is compared with (the Compare view's and the interactive page's labels)."""

from __future__ import annotations

from diffusion_stepper.core.diffusion.rules.catalogue import (
    DEFAULT_EPS_SAMPLER,
    DEFAULT_FLOW_SAMPLER,
    run_sampler_title,
)
from diffusion_stepper.core.run_meta import algorithm_family

# What tells compared runs apart, in the order the Compare view names it: (key, label, in meta or in params).
_DIFFERENCE_LABELS = (
    ("model", "", "meta"),
    ("algorithm", "", "meta"),
    ("sampler", "", "params"),  # DDIM's title carries its η
    ("guidance", "γ = ", "params"),
    ("steps", "", "params"),
    ("epoch", "epoch ", "params"),
    ("i_start", "i_start = ", "params"),
    ("x0_clip", "x̂₀ clip ", "params"),
    ("prompts", "", "meta"),
    ("seed", "seed ", "meta"),
)


def run_differences(metas: list[dict]) -> list[str]:
    """For each run, what sets it apart from the others it is compared with: "γ = 5", "epoch 3",
    "mnist-class-flow · flow+cfg" (empty strings for a single run or identical settings)."""
    if len(metas) < 2:
        return ["" for _ in metas]
    rows: list[list[str]] = [[] for _ in metas]
    for key, prefix, where in _DIFFERENCE_LABELS:
        values = [(meta if where == "meta" else meta.get("params", {})).get(key) for meta in metas]
        if len({repr(value) for value in values}) < 2:
            continue
        for row, value, meta in zip(rows, values, metas):
            if value is None:
                continue
            text = " / ".join(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else value
            if key == "steps":
                text = f"{value} steps"
            elif key == "sampler":
                text = run_sampler_title(meta)
            elif isinstance(value, float):
                text = f"{value:g}"
            row.append(f"{prefix}{text}")
    return [" · ".join(row) for row in rows]


def default_run_name(meta: dict) -> str:
    """A short name for the runs list, e.g. "mnist-class-ddpm · ddpm+cfg γ=5 · 300 steps · seed 0"."""
    params = meta.get("params", {})
    parts = [str(meta.get("model", "run")), str(meta.get("algorithm", ""))]
    if "guidance" in params:
        parts[-1] += f" γ={params['guidance']:g}"
    default_sampler = DEFAULT_FLOW_SAMPLER if algorithm_family(meta) == "flow" else DEFAULT_EPS_SAMPLER
    if params.get("sampler", default_sampler) != default_sampler:
        parts.append(run_sampler_title(meta))
    if "steps" in params:
        parts.append(f"{params['steps']} steps")
    if "sigmas" in params:
        parts.append(f"σ = {min(params['sigmas']):g}…{max(params['sigmas']):g}")
    if "seed" in meta:
        parts.append(f"seed {meta['seed']}")
    return " · ".join(part for part in parts if part)
