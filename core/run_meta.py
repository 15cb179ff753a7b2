"""What a run's record (the trajectory's `meta`) says about the run, read in one place: its
algorithm family, whether it is a 2D run of particles, and the names its fields may take.

Below the maths and the families, so the trajectory file, the exports and the GUI can ask these
questions without importing the family that made the run."""

from __future__ import annotations

TOY2D_KEY = "toy2d"  # params[TOY2D_KEY] marks a run as a 2D one and says how to draw it
# A 2D run's extras (core.toy2d.runs says what each holds)
GRID_EXTRAS = ("grid_x0_hat", "grid_noise")
EXACT_EXTRAS = ("exact_x0_hat", "exact_noise")
DENSITY = "density"
# A visual anagram's views (core.deepfloyd_if.anagrams makes each)
VIEW_NAMES = ("identity", "flip", "rot90", "rot180", "rot270", "negate", "jigsaw")


def algorithm_family(meta: dict) -> str:
    """ "ddpm" (also IF), "flow" or "single-step", from a run's algorithm name like "ddpm+cfg"."""
    name = str(meta.get("algorithm", ""))
    if name.startswith(("ddpm", "if")):
        return "ddpm"
    if name.startswith("flow"):
        return "flow"
    return name.split("+")[0]


def is_toy2d(meta: dict) -> bool:
    """A 2D run: particles in the plane, drawn with their field, not images."""
    return TOY2D_KEY in meta.get("params", {})
