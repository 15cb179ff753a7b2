"""One sampling loop, composed from small pieces (see DESIGN.md, "A sampler is a composition").

- a *predictor* maps (x, t, cond) to the model's raw output: an adapter around a network;
- a *noise estimate* turns a predictor into the estimate a step uses: plain, or CFG;
- a *step rule* turns (x_t, estimate) into x_{t'} and the clean estimate x0_hat; a second-order
  rule may evaluate the noise estimate again (Heun, midpoint), and a multistep rule keeps its
  history in the rule object (DPM-Solver++); the rules live in core.diffusion.rules;
- the *start* is any tensor: pure noise, or a noised image (SDEdit).

Part A adds a per-step projection (inpainting) and more noise estimates (anagrams, hybrids).

`run_sampler` composes them and yields one `Frame` per step. It never writes tensors in place,
so frames can share memory with the loop's tensors on the CPU. Each frame records in its
coefficients `nfe`, the model evaluations spent to reach its x_t (CFG's two passes are one
batched evaluation, so they count once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch

from diffusion_stepper.core.frames import Frame, to_cpu
from diffusion_stepper.core.limits import check_guidance
from diffusion_stepper.core.updates import Update

Predictor = Callable[[torch.Tensor, float, torch.Tensor | None], torch.Tensor]

# (x, t) -> the value a step rule consumes: the noise estimate evaluated again, for rules that
# look at more than one point per step
Evaluate = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass
class NoiseEstimate:
    value: torch.Tensor  # what the step rule consumes: eps, v or x, depending on the model
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    coeffs: dict[str, float] = field(default_factory=dict)


@dataclass
class StepResult:
    x_next: torch.Tensor
    x0_hat: torch.Tensor
    noise_hat: torch.Tensor  # stored in the frame as `eps_hat` or `v_hat`
    coeffs: dict[str, float]
    evaluations: int = 1  # model evaluations the step spent, the first estimate included
    update: Update | None = None  # x_next as terms of what the frame shows (core.updates)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # what the update needs beyond x_t, x̂₀, ε̂/v̂


class StepRule(Protocol):
    noise_field: str  # "eps_hat" or "v_hat"

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        estimate: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult: ...


def pure_noise(shape: Sequence[int], generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator, device=device)


class NetworkPredictor:
    """Adapter from the sampler's (x, t, cond) to a trained network's (x, t in [0, 1] as [N, 1],
    one-hot c), the convention of every model trained here (the MNIST UNets, the 2D MLPs): the
    objective says how its timestep becomes the network's time."""

    def __init__(self, model: torch.nn.Module, objective):
        self.model = model
        self.objective = objective

    def __call__(self, x: torch.Tensor, t: float, cond: torch.Tensor | None) -> torch.Tensor:
        network_time = self.objective.network_time(t)
        t_in = None if network_time is None else torch.full((x.shape[0], 1), network_time, device=x.device)
        with torch.no_grad():
            return self.model(x, t_in, cond)


class PlainEstimate:
    """The predictor's output as it is, optionally under one fixed condition."""

    def __init__(self, predict: Predictor, cond: torch.Tensor | None = None):
        self.predict = predict
        self.cond = cond

    def __call__(self, x: torch.Tensor, t: float) -> NoiseEstimate:
        return NoiseEstimate(self.predict(x, t, self.cond))


class ClassifierFreeGuidance:
    """uncond + scale * (cond - uncond), with both passes in one batched forward call.

    `name` prefixes the extras: "eps" gives eps_cond / eps_uncond, "v" gives v_cond / v_uncond,
    and eps_gap / v_gap = |cond − uncond|: where the condition changes the estimate (its mean is
    the coefficient `guidance_gap`, which shows when in the chain guidance acts).
    With `guided_channels`, only the output's first channels are guided and the rest are the
    conditional pass's own: IF's learned-variance channels are not extrapolated (as in diffusers).
    """

    def __init__(
        self,
        predict: Predictor,
        cond: torch.Tensor,
        uncond: torch.Tensor,
        scale: float,
        name: str = "eps",
        guided_channels: int | None = None,
    ):
        check_guidance(scale)
        self.predict = predict
        self.both_conds = torch.cat([cond, uncond])
        self.scale = scale
        self.name = name
        self.guided_channels = guided_channels

    def __call__(self, x: torch.Tensor, t: float) -> NoiseEstimate:
        both = self.predict(torch.cat([x, x]), t, self.both_conds)
        cond_out, uncond_out = both.chunk(2)
        k = self.guided_channels or cond_out.shape[1]
        cond_part, uncond_part = cond_out[:, :k], uncond_out[:, :k]
        difference = cond_part - uncond_part
        guided = torch.cat([uncond_part + self.scale * difference, cond_out[:, k:]], dim=1)
        gap = difference.abs()
        return NoiseEstimate(
            guided,
            extras={f"{self.name}_cond": cond_part, f"{self.name}_uncond": uncond_part, f"{self.name}_gap": gap},
            coeffs={"guidance": self.scale, "guidance_gap": float(gap.float().mean())},
        )


def run_sampler(
    x_start: torch.Tensor,
    timesteps: Sequence[float],
    estimate: Callable[[torch.Tensor, float], NoiseEstimate],
    step: StepRule,
    generator: torch.Generator,
    project: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor] | None = None,
) -> Iterator[Frame]:
    """Walk `timesteps` from `x_start`, yielding len(timesteps) frames (the last is the result).

    `project(x_next, t_next, generator)`, when given, reworks each step's result before the next
    step sees it (inpainting keeps the known region).
    """
    reset = getattr(step, "reset", None)
    if reset is not None:
        reset()  # a multistep rule starts each run without history

    def evaluate(x: torch.Tensor, t: float) -> torch.Tensor:
        return estimate(x, t).value

    # after a projection the update holds only where the projection keeps the step's result
    holds_where = getattr(project, "update_holds_where", None)
    x = x_start
    evaluations = 0
    for index in range(len(timesteps) - 1):
        t, t_next = timesteps[index], timesteps[index + 1]
        noise_estimate = estimate(x, t)
        result = step(x, t, t_next, noise_estimate.value, generator, evaluate=evaluate)
        update = result.update
        if update is not None and project is not None:
            update = replace(update, where=holds_where) if holds_where else None
        yield Frame(
            index=index,
            t=t,
            x_t=to_cpu(x),
            x0_hat=to_cpu(result.x0_hat),
            **{step.noise_field: to_cpu(result.noise_hat)},
            coeffs={"t": float(t), "nfe": float(evaluations), **noise_estimate.coeffs, **result.coeffs},
            extras={name: to_cpu(image) for name, image in {**noise_estimate.extras, **result.extras}.items()},
            update=update,
        )
        evaluations += result.evaluations
        x = result.x_next if project is None else project(result.x_next, t_next, generator)
    final = to_cpu(x)
    yield Frame(
        index=len(timesteps) - 1,
        t=timesteps[-1],
        x_t=final,
        x0_hat=final,
        **{step.noise_field: torch.zeros_like(final)},
        coeffs={"t": float(timesteps[-1]), "nfe": float(evaluations), "final": 1.0},
    )
