"""The step rules of flow-matching models (dx/dt = v̂ from noise at t = 0 to data at t = 1):
Euler, and the two-evaluation rules Heun and midpoint, one class for both (they differ only in
where the second slope is taken and how it is weighted)."""

from __future__ import annotations

import torch

from diffusion_stepper.core.diffusion.sampling import Evaluate, StepResult
from diffusion_stepper.core.updates import MIDPOINT_V, SECOND_V, Term, Update


def clean_estimate(x_t: torch.Tensor, t: float, v: torch.Tensor) -> torch.Tensor:
    """x̂₁ along the straight path to t = 1: x_t + (1 − t)·v̂."""
    return x_t + (1.0 - float(t)) * v


class EulerFlowStep:
    """One Euler step of the flow ODE: x_{t+dt} = x_t + dt * v; x̂ follows the straight path to t = 1."""

    noise_field = "v_hat"

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        v: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult:
        dt = float(t_next) - float(t)
        update = Update((Term(1.0, "x_t"), Term(dt, "v_hat")), "x_t+Δt = x_t + Δt·v̂")
        return StepResult(
            x_t + dt * v, clean_estimate(x_t, t, v), v, {"t_next": float(t_next), "dt": dt}, update=update
        )


class TwoStageFlowStep:
    """A two-evaluation Runge–Kutta step of the flow ODE: a second slope v̂′ taken at a probe
    Euler's step reaches, x̃ = x_t + probe·Δt·v̂ at t + probe·Δt, then

        x_t+Δt = x_t + Δt·((1 − weight)·v̂ + weight·v̂′)

    Heun (probe 1, weight ½) averages the slopes at both ends; midpoint (probe ½, weight 1) takes
    the slope half a step ahead. The second slope is stored as the extra `second`."""

    noise_field = "v_hat"

    def __init__(self, name: str, probe: float, weight: float, second: str, formula: str):
        self.name, self.probe, self.weight, self.second, self.formula = name, probe, weight, second, formula

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        v: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult:
        if evaluate is None:
            raise ValueError(f"{self.name} evaluates the model twice a step: run it through run_sampler")
        dt = float(t_next) - float(t)
        t_probe = float(t_next) if self.probe == 1.0 else float(t) + self.probe * dt
        v_second = evaluate(x_t + self.probe * dt * v, t_probe)
        slope = v_second if self.weight == 1.0 else (1.0 - self.weight) * v + self.weight * v_second
        coeffs = {"t_next": float(t_next), "dt": dt}
        if self.probe != 1.0:
            coeffs["t_mid"] = t_probe
        terms = [Term(1.0, "x_t"), Term((1.0 - self.weight) * dt, "v_hat"), Term(self.weight * dt, self.second)]
        update = Update(tuple(term for term in terms if term.coef != 0), self.formula)
        return StepResult(
            x_t + dt * slope,
            clean_estimate(x_t, t, v),
            v,
            coeffs,
            evaluations=2,
            update=update,
            extras={self.second: v_second},
        )


def heun_flow_step() -> TwoStageFlowStep:
    return TwoStageFlowStep("Heun", probe=1.0, weight=0.5, second=SECOND_V, formula="x_t+Δt = x_t + Δt·(v̂ + v̂′)/2")


def midpoint_flow_step() -> TwoStageFlowStep:
    return TwoStageFlowStep("the midpoint rule", 0.5, 1.0, MIDPOINT_V, "x_t+Δt = x_t + Δt·v̂_mid")
