"""diffusion-stepper: step through diffusion sampling frame by frame.

    import diffusion_stepper as ds
    run = ds.sample(model, objective="ddpm", shape=(1, 28, 28), num=16, sampler="ddim", steps=50)
    run.save("mine.npz")   # opens in the app (`diffusion-stepper mine.npz`), `inspect` and `export`
    run                    # in Jupyter or Colab: the interactive page, inline

`ds.Recorder` records a sampling loop of your own. The API's home is diffusion_stepper.core.api;
its names load on first use, so that importing the package stays light: the `diffusion-stepper`
command imports it before it can catch a Ctrl+C, and torch takes seconds to import. Never Qt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = [
    "ModelCallError",
    "ModelOutputError",
    "Recorder",
    "RecorderError",
    "Run",
    "UserFacingError",
    "linear_schedule",
    "load",
    "sample",
]

if TYPE_CHECKING:  # what editors and type checkers see
    from diffusion_stepper.core.api import (
        ModelCallError,
        ModelOutputError,
        Recorder,
        RecorderError,
        Run,
        UserFacingError,
        linear_schedule,
        load,
        sample,
    )


def __getattr__(name: str):
    """`ds.sample` and the rest, imported on first use (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module 'diffusion_stepper' has no attribute {name!r}")
    # Deferred on purpose: torch and the API load when the API is first used, not when the package is.
    from diffusion_stepper.core import api

    value = getattr(api, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
