"""The step rules of noise-prediction (ε) models on a discrete schedule ᾱ_t (MNIST's DDPM
models, IF), all on one base, `EpsRule` (the schedule, x̂₀ from ε̂ and its clipping, and the
update's ε written in what the frame shows):

- `DDPMStep`: the DDPM posterior step, the course's (fixed or IF's learned variance);
- `DDIMStep`: DDIM with η (η = 0 deterministic; η = 1 the DDPM posterior's variance β̃);
- `DPMSolverPP2MStep`: DPM-Solver++(2M), second order from the previous step's x̂₀, and
  `SDEDPMSolverPP2MStep`, its stochastic form, which adds fresh noise each step as DDPM does;
- `EulerODEStep` and `HeunODEStep`: Euler and Heun on the probability-flow ODE, written in
  σ-space (σ_t = √((1 − ᾱ_t)/ᾱ_t), x_σ = x_t/√ᾱ_t), where dx_σ/dσ = ε̂.

Images stay in the model's own (variance-preserving) space between steps: x_t, never x_σ, so
every rule's frames show the same kind of picture. x̂₀ clipping (`x0_clip`) reworks x̂₀ before
it enters an update; the update then uses the noise implied by the clipped x̂₀, as diffusers'
DDPM scheduler does (its DDIM scheduler does so only with `use_clipped_model_output=True`; DDIMStep's
`eps_from_clipped_x0=False` keeps the model's own ε̂ beside the clipped x̂₀, as DDIMPipeline does). The
terms each rule records (core.updates) are written in what the frame shows: that ε as a
coefficient of x_t and one of the clipped x̂₀. An IF model's learned-variance channels are used
by DDPM's step only, as diffusers' pipelines drop them for schedulers without learned variance.
"""

from __future__ import annotations

import math

import torch

from diffusion_stepper.core.diffusion.rules.x0 import FixedVariance, LearnedRangeVariance, PosteriorVariance, X0Clip
from diffusion_stepper.core.diffusion.sampling import Evaluate, StepResult
from diffusion_stepper.core.diffusion.schedules import DiscreteSchedule
from diffusion_stepper.core.updates import (
    NOISE,
    NOISE_STD,
    PREVIOUS,
    SECOND_EPS,
    SECOND_EPS_CLIPPED,
    Term,
    Update,
    combined,
)

# A DDPM step's σ below this adds nothing a float32 image can hold (see DDPMStep)
NEGLIGIBLE_SIGMA = 1e-8


class EpsRule:
    """What every ε rule shares: the schedule, x̂₀ handling, and the clean estimate from ε̂."""

    noise_field = "eps_hat"

    def __init__(self, schedule: DiscreteSchedule, x0_clip: X0Clip | None = None):
        self.schedule = schedule
        self.x0_clip = x0_clip

    def levels(self, t: float) -> tuple[float, float]:
        """(√ᾱ_t, √(1 − ᾱ_t)): the signal and noise scales at t."""
        alpha_bar = self.schedule.alpha_bar(int(t))
        return math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)

    def estimates(
        self, x_t: torch.Tensor, t: float, output: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
        """(ε̂ as the model gave it, x̂₀, the ε the update uses, the clip's numbers).

        The update's ε is the one consistent with the (possibly clipped) x̂₀:
        ε = (x_t − √ᾱ_t·x̂₀)/√(1 − ᾱ_t); without clipping it is ε̂ itself.
        """
        eps = output[:, : x_t.shape[1]]  # drop IF's learned-variance channels
        signal, noise = self.levels(t)
        x0_hat = (x_t - noise * eps) / signal
        if self.x0_clip is None:
            return eps, x0_hat, eps, {}
        x0_hat, clip_coeffs = self.x0_clip(x0_hat)
        return eps, x0_hat, (x_t - signal * x0_hat) / noise, clip_coeffs

    def eps_terms(self, coef: float, t: float) -> list[Term]:
        """coef·ε, the ε the update uses, as terms of what the frame shows: ε̂ itself, or (with
        clipping) the ε the clipped x̂₀ implies, (x_t − √ᾱ_t·x̂₀)/√(1 − ᾱ_t)."""
        if self.x0_clip is None:
            return [Term(coef, "eps_hat")]
        signal, noise = self.levels(t)
        return [Term(coef / noise, "x_t"), Term(-coef * signal / noise, "x0_hat")]

    def eps_symbol(self, formula: str) -> str:
        """The rule's formula, saying which ε it uses when x̂₀ is clipped."""
        if self.x0_clip is None:
            return formula
        return formula.replace("ε̂", "ε") + ",   ε = (x_t − √ᾱ_t·x̂₀)/√(1 − ᾱ_t) from the clipped x̂₀"


class DDPMStep(EpsRule):
    """The DDPM posterior step from t to t' < t (part A eq. 3, part B Algorithm 2 line 6):

        x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)
        x_t'   = sqrt(abar_t') beta / (1 - abar_t) * x0_hat + sqrt(alpha) (1 - abar_t') / (1 - abar_t) * x_t + sigma z

    with alpha = abar_t / abar_t' and beta = 1 - alpha, so strided timesteps work unchanged.

    - `variance` gives sigma: part B's fixed sigma^2 = beta, the posterior's beta_tilde, or IF's learned range.
    - `x0_clip` (StaticClip, DynamicThreshold) reworks x0_hat before it enters the update;
      without it, this is the course's plain formula (the update is written in x̂₀ and x_t, so
      a clipped x̂₀ needs no implied ε).
    - No noise is added on the step that lands on `clean_t`, the chain's clean end: t = 0 in
      part B (the course's indexing), t = -1 for IF (diffusers' indexing, where t = 0 is the
      first noised level and its step still adds noise).
    - With `noise_while_t_above` set, noise is added on every step from t > noise_while_t_above
      instead, onto the clean end too: diffusers' DDPMScheduler adds it whenever t > 0, so a chain
      that ends at t = 1 or t = 19 (steps_offset, "trailing" spacing) still adds β's noise with
      fixed_large variance on its last step. A σ below NEGLIGIBLE_SIGMA (β̃'s floor onto the clean
      end, 1e-10) is not drawn: float32 cannot hold what it adds, and it is the chain's last draw.
    """

    def __init__(
        self,
        schedule: DiscreteSchedule,
        variance: FixedVariance | PosteriorVariance | LearnedRangeVariance | None = None,
        x0_clip: X0Clip | None = None,
        clean_t: int = 0,
        noise_while_t_above: int | None = None,
    ):
        super().__init__(schedule, x0_clip)
        self.variance = variance or FixedVariance()
        self.clean_t = clean_t
        self.noise_while_t_above = noise_while_t_above

    def adds_noise(self, t: int, t_next: int) -> bool:
        if self.noise_while_t_above is not None:
            return t > self.noise_while_t_above
        return t_next > self.clean_t

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        estimate: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult:
        t, t_next = int(t), int(t_next)
        eps, model_variance = self.variance.split(estimate, x_t.shape[1])
        eps, x0_hat, _, clip_coeffs = self.estimates(x_t, t, eps)
        alpha_bar_t = self.schedule.alpha_bar(t)
        alpha_bar_next = self.schedule.alpha_bar(t_next)
        alpha = alpha_bar_t / alpha_bar_next
        beta = 1.0 - alpha
        coef_x0 = math.sqrt(alpha_bar_next) * beta / (1.0 - alpha_bar_t)
        coef_xt = math.sqrt(alpha) * (1.0 - alpha_bar_next) / (1.0 - alpha_bar_t)
        x_next = coef_x0 * x0_hat + coef_xt * x_t
        terms = [Term(coef_x0, "x0_hat"), Term(coef_xt, "x_t")]
        formula = "x_t′ = √ᾱ_t′·β_t/(1 − ᾱ_t)·x̂₀ + √α_t·(1 − ᾱ_t′)/(1 − ᾱ_t)·x_t"
        sigma: float | torch.Tensor = 0.0
        extras = {}
        if self.adds_noise(t, t_next):
            sigma = self.variance.std(alpha_bar_t, alpha_bar_next, model_variance)
            if not isinstance(sigma, torch.Tensor) and sigma < NEGLIGIBLE_SIGMA:
                sigma = 0.0  # β̃'s floor onto the clean end: not drawn (see the class's note)
        if isinstance(sigma, torch.Tensor) or sigma > 0:
            z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
            x_next = x_next + sigma * z
            if isinstance(sigma, torch.Tensor):  # learned: one σ per pixel, stored to be seen and checked
                terms.append(Term(1.0, NOISE, scale=NOISE_STD))
                extras[NOISE_STD] = sigma.expand_as(x_t)
                formula += " + σ⊙z   (σ learned, per pixel)"
            else:
                terms.append(Term(sigma, NOISE))
                formula += " + σ·z" + getattr(self.variance, "formula", "")
        coeffs = {
            "t_next": float(t_next),
            "alpha_bar_t": alpha_bar_t,
            "alpha_bar_next": alpha_bar_next,
            "alpha_t": alpha,
            "beta_t": beta,
            "coef_x0": coef_x0,
            "coef_xt": coef_xt,
            **_sigma_coeffs(sigma),
            **clip_coeffs,
        }
        return StepResult(x_next, x0_hat, eps, coeffs, update=Update(tuple(terms), formula), extras=extras)


class DDIMStep(EpsRule):
    """DDIM (Song et al. 2021), eq. 12, from t to t′:

        x_t′ = √ᾱ_t′·x̂₀ + √(1 − ᾱ_t′ − σ²)·ε̂ + σ·z,   σ = η·√((1 − ᾱ_t′)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_t′)

    η = 0 is deterministic; η = 1 gives σ² = β̃, the DDPM posterior's variance. With x̂₀ clipped,
    ε̂ is the one the clipped x̂₀ implies, unless `eps_from_clipped_x0` is False: then the model's
    own ε̂ stands beside the clipped x̂₀, as in diffusers' DDIMPipeline (use_clipped_model_output off).
    """

    def __init__(
        self,
        schedule: DiscreteSchedule,
        eta: float = 0.0,
        x0_clip: X0Clip | None = None,
        eps_from_clipped_x0: bool = True,
    ):
        super().__init__(schedule, x0_clip)
        if not eta >= 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        self.eta = float(eta)
        self.eps_from_clipped_x0 = eps_from_clipped_x0

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        estimate: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult:
        eps, x0_hat, eps_used, clip_coeffs = self.estimates(x_t, t, estimate)
        own_eps = self.x0_clip is not None and not self.eps_from_clipped_x0
        if own_eps:
            eps_used = eps
        alpha_bar_t = self.schedule.alpha_bar(int(t))
        alpha_bar_next = self.schedule.alpha_bar(int(t_next))
        variance = (1.0 - alpha_bar_next) / (1.0 - alpha_bar_t) * (1.0 - alpha_bar_t / alpha_bar_next)
        sigma = self.eta * math.sqrt(max(variance, 0.0))
        coef_x0 = math.sqrt(alpha_bar_next)
        coef_eps = math.sqrt(max(1.0 - alpha_bar_next - sigma**2, 0.0))
        x_next = coef_x0 * x0_hat + coef_eps * eps_used
        terms = [Term(coef_x0, "x0_hat"), *([Term(coef_eps, "eps_hat")] if own_eps else self.eps_terms(coef_eps, t))]
        formula = "x_t′ = √ᾱ_t′·x̂₀ + √(1 − ᾱ_t′ − σ²)·ε̂"
        if sigma > 0:
            z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
            x_next = x_next + sigma * z
            terms.append(Term(sigma, NOISE))
            formula += " + σ·z"
        coeffs = {
            "t_next": float(t_next),
            "alpha_bar_t": alpha_bar_t,
            "alpha_bar_next": alpha_bar_next,
            "eta": self.eta,
            "sigma": sigma,
            "coef_x0": coef_x0,
            "coef_eps": coef_eps,
            **clip_coeffs,
        }
        if own_eps:
            formula += "   (x̂₀ clipped; ε̂ the model's own, as diffusers' DDIMPipeline steps)"
        else:
            formula = self.eps_symbol(formula)
        return StepResult(x_next, x0_hat, eps, coeffs, update=Update(combined(terms), formula))


class DPMSolverPP2MStep(EpsRule):
    """DPM-Solver++(2M) (Lu et al. 2022), the multistep second-order solver in data prediction.

    With λ = log(√ᾱ/√(1 − ᾱ)) and h = λ_t′ − λ_t, one step is

        x_t′ = (√(1 − ᾱ_t′)/√(1 − ᾱ_t))·x_t + √ᾱ_t′·(1 − e^(−h))·D
        D    = x̂₀                                   (first order: the first step, and the step to clean data)
        D    = (1 + 1/(2r))·x̂₀ − 1/(2r)·x̂₀_prev,   r = h_prev/h   (second order)

    The previous step's x̂₀ and h are the rule's history; `reset` forgets them (run_sampler
    calls it before a run).
    """

    formula = "x_t′ = (√(1 − ᾱ_t′)/√(1 − ᾱ_t))·x_t + √ᾱ_t′·(1 − e^(−h))·D,   D = x̂₀ or (1 + 1/(2r))·x̂₀ − 1/(2r)·x̂₀_prev"
    noise_formula = ""
    stochastic = False  # the SDE form adds fresh noise

    def __init__(self, schedule: DiscreteSchedule, x0_clip: X0Clip | None = None):
        super().__init__(schedule, x0_clip)
        self.reset()

    def reset(self) -> None:
        self.previous_x0: torch.Tensor | None = None
        self.previous_h: float | None = None

    def coefficients(self, noise_t: float, noise_next: float, signal_next: float, decay: float):
        """(coefficient of x_t, coefficient of D, scale of fresh noise) for one step, e^(−h) = `decay`."""
        return noise_next / noise_t, signal_next * (1.0 - decay), 0.0

    def log_snr(self, t: float) -> float:
        """λ_t = log(√ᾱ_t/√(1 − ᾱ_t)) (half the log signal-to-noise ratio)."""
        signal, noise = self.levels(t)
        return math.log(signal) - math.log(noise)

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        estimate: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult:
        eps, x0_hat, _, clip_coeffs = self.estimates(x_t, t, estimate)
        signal_t, noise_t = self.levels(t)
        signal_next, noise_next = self.levels(t_next)
        # e^(−h) = (σ_t′/α_t′)/(σ_t/α_t), written as a ratio so the step to clean data (σ_t′ = 0) is finite
        decay = (noise_next / signal_next) / (noise_t / signal_t)
        coef_xt, coef_d, coef_z = self.coefficients(noise_t, noise_next, signal_next, decay)
        coeffs = {
            "t_next": float(t_next),
            "alpha_bar_t": signal_t**2,
            "alpha_bar_next": signal_next**2,
            "coef_xt": coef_xt,
            "coef_d": coef_d,
            "lambda_t": self.log_snr(t),
            **clip_coeffs,
        }
        h = None
        if noise_next > 0:
            h = self.log_snr(t_next) - self.log_snr(t)
            coeffs.update(lambda_next=self.log_snr(t_next), h=h)
        terms = [Term(coef_xt, "x_t")]
        if self.previous_x0 is None or h is None:
            drift = x0_hat
            coeffs["order"] = 1.0
            terms.append(Term(coef_d, "x0_hat"))
        else:
            r = self.previous_h / h
            drift = (1.0 + 0.5 / r) * x0_hat - (0.5 / r) * self.previous_x0
            coeffs.update(order=2.0, r=r, coef_x0=1.0 + 0.5 / r, coef_x0_prev=0.5 / r)
            terms += [Term(coef_d * (1.0 + 0.5 / r), "x0_hat"), Term(-coef_d * 0.5 / r, "x0_hat", frame=PREVIOUS)]
        self.previous_x0, self.previous_h = x0_hat, h
        x_next = coef_xt * x_t + coef_d * drift
        formula = self.formula
        if self.stochastic:
            coeffs["coef_z"] = coef_z  # recorded on the last step too (0 there), so the step says which solver took it
        if coef_z > 0:
            x_next = x_next + coef_z * torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
            terms.append(Term(coef_z, NOISE))
            formula += self.noise_formula
        elif self.stochastic:
            formula += "   (onto clean data: no noise)"
        return StepResult(x_next, x0_hat, eps, coeffs, update=Update(tuple(terms), formula))


class SDEDPMSolverPP2MStep(DPMSolverPP2MStep):
    """DPM-Solver++(2M) SDE (Lu et al. 2022, "sde-dpmsolver++" in diffusers): the same D, a
    smaller pull of x_t and fresh noise in its place:

        x_t′ = (√(1 − ᾱ_t′)/√(1 − ᾱ_t))·e^(−h)·x_t + √ᾱ_t′·(1 − e^(−2h))·D + √(1 − ᾱ_t′)·√(1 − e^(−2h))·z

    At first order this is DDPM's posterior step (DDIM with η = 1). The noise lets the run forget
    where it started: on the course's schedule x_T is not pure noise (√ᾱ_T ≈ 0.22 at T = 300), and
    a deterministic solver started from pure noise never corrects that, while this one does.
    """

    formula = "x_t′ = (√(1 − ᾱ_t′)/√(1 − ᾱ_t))·e^(−h)·x_t + √ᾱ_t′·(1 − e^(−2h))·D"
    noise_formula = " + √(1 − ᾱ_t′)·√(1 − e^(−2h))·z"
    stochastic = True

    def coefficients(self, noise_t: float, noise_next: float, signal_next: float, decay: float):
        spread = 1.0 - decay * decay  # 1 − e^(−2h)
        return noise_next / noise_t * decay, signal_next * spread, noise_next * math.sqrt(spread)


def ode_sigma(alpha_bar: float) -> float:
    """σ = √((1 − ᾱ)/ᾱ): the noise level of the probability-flow ODE in σ-space (0 for clean data)."""
    return math.sqrt((1.0 - alpha_bar) / alpha_bar)


class EulerODEStep(EpsRule):
    """Euler on the probability-flow ODE dx_σ/dσ = ε̂, in σ-space (x_σ = x_t/√ᾱ_t):

        x_σ′ = x_σ + (σ′ − σ)·ε̂,   x_t′ = √ᾱ_t′·x_σ′

    For an ε-model this is exactly DDIM with η = 0, written as an ODE solver (Karras et al. 2022).
    """

    def _slope_step(self, x_t: torch.Tensor, t: float, t_next: float, output: torch.Tensor):
        eps, x0_hat, eps_used, clip_coeffs = self.estimates(x_t, t, output)
        alpha_bar_t = self.schedule.alpha_bar(int(t))
        alpha_bar_next = self.schedule.alpha_bar(int(t_next))
        sigma_t, sigma_next = ode_sigma(alpha_bar_t), ode_sigma(alpha_bar_next)
        x_sigma = x_t / math.sqrt(alpha_bar_t)
        coeffs = {
            "t_next": float(t_next),
            "alpha_bar_t": alpha_bar_t,
            "alpha_bar_next": alpha_bar_next,
            "ode_sigma_t": sigma_t,
            "ode_sigma_next": sigma_next,
            **clip_coeffs,
        }
        return eps, x0_hat, eps_used, x_sigma, coeffs

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        estimate: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult:
        eps, x0_hat, slope, x_sigma, coeffs = self._slope_step(x_t, t, t_next, estimate)
        d_sigma = coeffs["ode_sigma_next"] - coeffs["ode_sigma_t"]
        x_sigma_next = x_sigma + d_sigma * slope
        update = self.ode_update(t, coeffs, d_sigma, "x_t′ = √ᾱ_t′·(x_t/√ᾱ_t + (σ_t′ − σ_t)·ε̂)")
        return StepResult(math.sqrt(coeffs["alpha_bar_next"]) * x_sigma_next, x0_hat, eps, coeffs, update=update)

    def second_eps_name(self) -> str:
        """The extra that holds Heun's second ε: the model's ε̂′, or with clipping the ε′ its clipped x̂₀ implies."""
        return SECOND_EPS if self.x0_clip is None else SECOND_EPS_CLIPPED

    def ode_update(self, t: float, coeffs: dict, slope_weight: float, formula: str, second: float = 0.0) -> Update:
        """√ᾱ_t′·(x_t/√ᾱ_t + slope_weight·ε + second·ε̂′) as terms (ε̂′: the second evaluation's)."""
        signal_next = math.sqrt(coeffs["alpha_bar_next"])
        terms = [Term(signal_next / math.sqrt(coeffs["alpha_bar_t"]), "x_t")]
        terms += self.eps_terms(signal_next * slope_weight, t)
        if second:
            terms.append(Term(signal_next * second, self.second_eps_name()))
        return Update(combined(terms), self.eps_symbol(formula))


class HeunODEStep(EulerODEStep):
    """Heun on the probability-flow ODE (Karras et al. 2022, Algorithm 1 without churn):

        x̃_σ′ = x_σ + (σ′ − σ)·ε̂(x_t, t)                          (Euler's guess)
        x_σ′ = x_σ + (σ′ − σ)·(ε̂(x_t, t) + ε̂(x̃_t′, t′))/2       (the average slope)

    Two evaluations per step; the step to clean data (σ′ = 0, where ε̂ is not defined) is Euler's.
    """

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        estimate: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult:
        eps, x0_hat, slope, x_sigma, coeffs = self._slope_step(x_t, t, t_next, estimate)
        d_sigma = coeffs["ode_sigma_next"] - coeffs["ode_sigma_t"]
        signal_next = math.sqrt(coeffs["alpha_bar_next"])
        euler_guess = x_sigma + d_sigma * slope
        if coeffs["ode_sigma_next"] == 0:
            coeffs["corrector"] = 0.0
            formula = "x_t′ = √ᾱ_t′·(x_t/√ᾱ_t + (σ_t′ − σ_t)·ε̂)   (onto clean data: Euler)"
            update = self.ode_update(t, coeffs, d_sigma, formula)
            return StepResult(signal_next * euler_guess, x0_hat, eps, coeffs, update=update)
        if evaluate is None:
            raise ValueError("Heun evaluates the model twice a step: run it through run_sampler")
        guess_t = signal_next * euler_guess
        _, _, slope_next, _ = self.estimates(guess_t, t_next, evaluate(guess_t, t_next))
        x_sigma_next = x_sigma + d_sigma * 0.5 * (slope + slope_next)
        coeffs["corrector"] = 1.0
        formula = "x_t′ = √ᾱ_t′·(x_t/√ᾱ_t + (σ_t′ − σ_t)·(ε̂ + ε̂′)/2)"
        update = self.ode_update(t, coeffs, 0.5 * d_sigma, formula, second=0.5 * d_sigma)
        extras = {self.second_eps_name(): slope_next}
        return StepResult(signal_next * x_sigma_next, x0_hat, eps, coeffs, evaluations=2, update=update, extras=extras)


def _sigma_coeffs(sigma: float | torch.Tensor) -> dict[str, float]:
    """A fixed sigma as it is; a learned, per-pixel one as its mean and range."""
    if isinstance(sigma, torch.Tensor):
        return {"sigma": float(sigma.mean()), "sigma_min": float(sigma.min()), "sigma_max": float(sigma.max())}
    return {"sigma": float(sigma)}
