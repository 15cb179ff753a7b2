"""diffusion-stepper: step through diffusion sampling frame by frame.

    import diffusion_stepper as ds
    run = ds.sample(model, objective="ddpm", shape=(1, 28, 28), num=16, sampler="ddim", steps=50)
    run.save("mine.npz")   # opens in the app (`diffusion-stepper mine.npz`), `inspect` and `export`
    run                    # in Jupyter or Colab: the interactive page, inline

`ds.Recorder` records a sampling loop of your own. Importing this package loads torch, never Qt:
the app itself is the `diffusion-stepper` command. The API's home is diffusion_stepper.core.api.
"""

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
