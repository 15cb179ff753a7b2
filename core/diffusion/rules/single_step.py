"""The single-step denoiser's one jump: the network's output is the clean image itself."""

from __future__ import annotations

import torch

from diffusion_stepper.core.diffusion.sampling import Evaluate, StepResult
from diffusion_stepper.core.updates import Term, Update


class SingleStepDenoise:
    """The single-step denoiser: the model predicts the clean image directly, in one jump.

    Its implied noise estimate is eps = (z - x0_hat) / sigma, with sigma the input's noise level.
    """

    noise_field = "eps_hat"

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        x0_pred: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult:
        sigma = float(t)
        noise_hat = (x_t - x0_pred) / sigma if sigma > 0 else torch.zeros_like(x_t)
        update = Update((Term(1.0, "x0_hat"),), "x̂₀ = D_θ(z): the result is the network's prediction")
        return StepResult(x0_pred, x0_pred, noise_hat, {"sigma": sigma}, update=update)
