"""A step's update rule with this step's numbers filled in, as plain Unicode lines.

The GUI's equation panel and `diffusion-stepper inspect` print the same text, built from the
numbers the step rule recorded in `frame.coeffs` (see core.diffusion.sampling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from diffusion_stepper.core.diffusion.step_check import check_step, why_unchecked
from diffusion_stepper.core.frames import Frame
from diffusion_stepper.core.run_meta import RECORDED_SOURCE, RunMeta
from diffusion_stepper.core.updates import number_text as _number


def time_text(family: str, t: float) -> str:
    """t as the captions and exports show it: an integer for DDPM and IF, three decimals otherwise."""
    if family == "ddpm" and t < 0:
        return "-1 (clean)"  # IF's chain ends past t = 0 (diffusers' indexing); ASCII, which every export font has
    return f"{int(round(t))}" if family == "ddpm" else f"{t:.3f}"


def frame_caption(meta: RunMeta, frame: Frame, num_frames: int) -> str:
    """ "step 12/300 · t = 288 · ᾱ_t = 0.0123" (σ for the single-step denoiser, t alone for flow)."""
    family = meta.family
    parts = [f"step {frame.index}/{num_frames - 1}"]
    if family in ("single-step", "noising"):
        if "sigma" in frame.coeffs:
            parts.append(f"σ = {frame.coeffs['sigma']:.3f}")
    else:
        parts.append(f"t = {time_text(family, frame.t)}")
    if family == "ddpm":
        alpha_bar = frame.coeffs.get("alpha_bar_t", 1.0 if frame.t <= 0 else None)
        if alpha_bar is not None:
            parts.append(f"ᾱ_t = {_number(alpha_bar)}")
    if "nfe" in frame.coeffs and frame.coeffs["nfe"] != frame.index:  # samplers that evaluate twice a step
        parts.append(f"NFE {int(frame.coeffs['nfe'])}")
    if "psnr_db" in frame.coeffs:
        parts.append(f"PSNR {frame.coeffs['psnr_db']:.1f} dB")
    return " · ".join(parts)


def _guidance_line(frame: Frame, symbol: str) -> list[str]:
    """CFG: the estimate the step used, from the conditional and unconditional ones."""
    if "guidance" not in frame.coeffs:
        return []
    scale = frame.coeffs["guidance"]
    line = f"{symbol}̂ = {symbol}_u + γ·({symbol}_c − {symbol}_u)   with γ = {scale:g}   (classifier-free guidance)"
    if "guidance_gap" in frame.coeffs:
        line += f";   mean |{symbol}_c − {symbol}_u| = {_number(frame.coeffs['guidance_gap'])}"
    return [line]


def _denoise_once_lines(algorithm: str, frame: Frame) -> list[str]:
    """Part A 1.1-1.3: noise a known image to t, then (maybe) denoise it in one go."""
    alpha_bar = frame.coeffs["alpha_bar_t"]
    a, b = math.sqrt(alpha_bar), math.sqrt(1 - alpha_bar)
    lines = [f"x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε = {_number(a)}·x₀ + {_number(b)}·ε,   ε ~ N(0, I),   t = {int(frame.t)}"]
    if algorithm == "if-blur":
        lines.append(
            f"x̂₀ = G∗x_t,   G: Gaussian, kernel {int(frame.coeffs['blur_kernel'])}, σ = "
            f"{frame.coeffs['blur_sigma']:g}   (classical denoising)"
        )
    elif algorithm == "if-one-step":
        lines += _guidance_line(frame, "ε")
        lines.append(f"x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t = (x_t − {_number(b)}·ε̂) / {_number(a)}   (one-step denoising)")
    return lines


def _composition_lines(meta: RunMeta, frame: Frame) -> list[str]:
    """How a visual anagram or a hybrid image builds the noise estimate the step uses."""
    algorithm = meta.algorithm
    if algorithm.endswith("+anagram"):
        views = meta.views or ()
        terms = " + ".join(f"{name}⁻¹(ε̂({name}(x_t), p{i}))" for i, name in enumerate(views, 1))
        return [f"ε̂ = ({terms}) / {len(views)}   (visual anagram: each view's estimate mapped back, averaged)"]
    if algorithm.endswith("+hybrid"):
        kernel = 33 if meta.blur_kernel is None else meta.blur_kernel  # the defaults of runs that did not say
        sigma = 2.0 if meta.blur_sigma is None else meta.blur_sigma
        return [
            f"ε̂ = G∗ε̂(x_t, p1) + (ε̂(x_t, p2) − G∗ε̂(x_t, p2)),   G: Gaussian, kernel {kernel}, σ = "
            f"{sigma:g}   (hybrid image)"
        ]
    return []


def step_equation(meta: RunMeta, frame: Frame, frames: Sequence[Frame] | None = None) -> list[str]:
    """The update this frame's step applied, with its numbers (and how close x̂₀ is to a known
    original). Given the run's `frames`, a last line checks the numbers against the next x_t."""
    lines = _step_lines(meta, frame)
    if frames is not None and frame.update is not None:
        check = check_step(frames, frame.index)
        reason = why_unchecked(frames, frame.index) if check is None else None
        numbers = f"     {frame.update.numbers()}"
        # right under the numbers it checks (the lines after them explain the coefficients)
        at = lines.index(numbers) + 1 if numbers in lines else len(lines)
        lines.insert(at, "     " + (check.line() if check is not None else f"check: not possible here ({reason})"))
    if "psnr_db" in frame.coeffs:
        lines.append(f"PSNR(x̂₀, original) = {frame.coeffs['psnr_db']:.2f} dB")
    if "field_error" in frame.coeffs:
        symbol = "v" if meta.family == "flow" else "ε"
        lines.append(
            f"model against the exact field: mean |{symbol}̂ − {symbol}*| = {_number(frame.coeffs['field_error'])} "
            "at the particles"
        )
    return lines


def _step_lines(meta: RunMeta, frame: Frame) -> list[str]:
    coeffs = frame.coeffs
    family = meta.family
    if coeffs.get("final"):
        data = "x_1" if family == "flow" else "x_0"  # flow matching: x_1 is the data
        return ["final sample: no step left", f"{data} = the image shown (t = {time_text(family, frame.t)})"]
    algorithm = meta.algorithm
    if algorithm in ("if-forward", "if-blur", "if-one-step", "ddpm-forward"):
        return _denoise_once_lines(algorithm, frame)
    if algorithm in ("flow-forward", "flow-conditional"):
        t = frame.t
        return [
            f"x_t = (1 − t)·z + t·x₁ = {_number(1 - t)}·z + {_number(t)}·x₁   (a straight line from its noise z "
            "to its data point x₁)",
            "v = x₁ − z: the same velocity all the way (what flow matching's network is trained to predict here)",
        ]
    if meta.source == RECORDED_SOURCE:
        return _recorded_lines(meta, frame)
    if family == "ddpm" and "alpha_bar_next" in coeffs and "t_next" in coeffs:
        return (
            _composition_lines(meta, frame)
            + _guidance_line(frame, "ε")
            + _prediction_lines(meta)
            + _clean_estimate_lines(frame)
            + _update_lines(frame)
            + _eps_rule_lines(frame)
            + [
                f"t = {time_text(family, frame.t)} → t′ = {_landing(family, coeffs)}:   "
                f"ᾱ_t = {_number(coeffs['alpha_bar_t'])},   ᾱ_t′ = {_number(coeffs['alpha_bar_next'])}"
            ]
        )
    if family == "flow" and "dt" in coeffs:
        t = frame.t
        return (
            _guidance_line(frame, "v")
            + [f"x̂₁ = x_t + (1 − t)·v̂ = x_t + {_number(1 - t)}·v̂      (the clean estimate: where x_t lands at t = 1)"]
            + _update_lines(frame)
            + _flow_rule_lines(meta, frame)
            + [f"t = {time_text(family, t)} → {time_text(family, coeffs['t_next'])}"]
        )
    if family == "single-step":
        sigma = coeffs.get("sigma", 0.0)
        return [
            "x̂₀ = D_θ(z): the network predicts the clean digit in one jump",
            f"z = x + σ·ε  with σ = {_number(sigma)};  implied noise ε̂ = (z − x̂₀)/σ",
        ]
    if family == "noising":
        sigma = coeffs.get("sigma", 0.0)
        return [
            f"z = x + σ·ε   with σ = {_number(sigma)}   (the noise panel shows ε ~ N(0, I))",
            f"std(z − x) = σ = {_number(sigma)}:   the same ε at every σ, so only its scale changes",
        ]
    shown = ",  ".join(f"{name} = {_number(value)}" for name, value in coeffs.items())
    return [f"{meta.algorithm or 'step'}: {shown}"]


def _landing(family: str, coeffs: dict[str, float]) -> str:
    """The next frame's t, and where the update took its ᾱ_t′ when that is elsewhere (diffusers'
    DDIM steps to t − T//N, which need not be the next timestep of its list)."""
    landing = time_text(family, coeffs["t_next"])
    if "t_target" in coeffs:
        landing += f" (ᾱ_t′ is ᾱ at t = {time_text(family, coeffs['t_target'])})"
    return landing


# How a recorded loop's numbers are named on screen
_RECORDED_SYMBOLS = {"alpha_bar_t": "ᾱ_t", "alpha_t": "α_t", "beta_t": "β_t", "sigma": "σ", "sigma_t": "σ_t"}


def _recorded_lines(meta: RunMeta, frame: Frame) -> list[str]:
    """A step of the user's own loop: its rule is their code, so only what they recorded is shown."""
    recorded = [
        f"{_RECORDED_SYMBOLS.get(name, name)} = {_number(value)}"
        for name, value in frame.coeffs.items()
        if name not in ("t", "final")
    ]
    return [
        "a step of your own loop: its update rule is your code, so no rule is shown here",
        f"t = {time_text(meta.family, frame.t)}" + (f";   recorded: {',   '.join(recorded)}" if recorded else ""),
    ]


# What a diffusers model that predicts something else than ε gives, and the ε̂ the steps take from it
_PREDICTIONS = {
    "sample": "ε̂ = (x_t − √ᾱ_t·x̂₀) / √(1 − ᾱ_t)   (the model predicts x̂₀; the step takes the ε̂ it implies)",
    "v_prediction": "ε̂ = √ᾱ_t·v̂ + √(1 − ᾱ_t)·x_t   (the model predicts v; the step takes the ε̂ it implies)",
}


def _prediction_lines(meta: RunMeta) -> list[str]:
    prediction = meta.prediction_type
    return [_PREDICTIONS[prediction]] if prediction in _PREDICTIONS else []


def _clean_estimate_lines(frame: Frame) -> list[str]:
    """x̂₀ from ε̂ at this step's ᾱ_t, and how it was clipped (if it was)."""
    coeffs = frame.coeffs
    alpha_bar_t = coeffs["alpha_bar_t"]
    lines = [
        f"x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t = (x_t − {_number(math.sqrt(1 - alpha_bar_t))}·ε̂) / "
        f"{_number(math.sqrt(alpha_bar_t))}"
    ]
    if "x0_clip_low" in coeffs:
        lines.append(
            f"x̂₀ ← clip(x̂₀, {coeffs['x0_clip_low']:g}, {coeffs['x0_clip_high']:g})   (kept inside the data range)"
        )
    if "x0_threshold_s" in coeffs:
        lines.append(
            f"x̂₀ ← clip(x̂₀, −s, s)/s,   s = the {coeffs['x0_threshold_ratio']:g} quantile of |x̂₀| kept within "
            f"[1, {coeffs['x0_threshold_max']:g}] = {coeffs['x0_threshold_s']:.3f}   (dynamic "
            "thresholding; the largest s in the batch)"
        )
    return lines


def _update_lines(frame: Frame) -> list[str]:
    """The update the step's rule recorded: its formula, then the same with this step's numbers."""
    if frame.update is None:  # a file saved before steps recorded their updates
        return ["(the file records this step's numbers below, not its update as terms)"]
    lines = [frame.update.formula, f"     {frame.update.numbers()}"]
    if frame.update.where:
        lines.append(f"     where {frame.update.where} = 1; elsewhere the known image, noised to t′, is put back")
    return lines


def _eps_rule_lines(frame: Frame) -> list[str]:
    """What the ε rule's coefficients are made of (see core.diffusion.rules.eps)."""
    coeffs = frame.coeffs
    if "coef_eps" in coeffs:  # DDIM
        return [
            f"σ = η·√((1 − ᾱ_t′)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_t′) = {_number(coeffs['sigma'])} with η = {coeffs['eta']:g}   "
            "(DDIM" + (", deterministic)" if coeffs["sigma"] == 0 else ")")
        ]
    if "coef_d" in coeffs:  # DPM-Solver++(2M), ODE or SDE
        lines = []
        if "h" in coeffs:
            lines.append(
                f"λ = log(√ᾱ/√(1 − ᾱ)):   λ_t = {_number(coeffs['lambda_t'])},   λ_t′ = "
                f"{_number(coeffs['lambda_next'])},   h = λ_t′ − λ_t = {_number(coeffs['h'])}"
            )
        solver = "DPM-Solver++(2M) SDE" if "coef_z" in coeffs else "DPM-Solver++(2M)"
        if coeffs.get("order") == 2:
            lines.append(
                f"D = {_number(coeffs['coef_x0'])}·x̂₀ − {_number(coeffs['coef_x0_prev'])}·x̂₀_prev,   "
                f"r = h_prev/h = {_number(coeffs['r'])}   (second order, {solver})"
            )
        else:
            reason = "onto clean data" if "h" not in coeffs else "no previous x̂₀ yet"
            lines.append(f"D = x̂₀   (first order: {reason}; {solver})")
        return lines
    if "ode_sigma_t" in coeffs:  # Euler or Heun on the probability-flow ODE
        sigma_t, sigma_next = coeffs["ode_sigma_t"], coeffs["ode_sigma_next"]
        lines = [f"σ = √((1 − ᾱ)/ᾱ):   σ_t = {_number(sigma_t)},   σ_t′ = {_number(sigma_next)}"]
        if coeffs.get("corrector"):
            clipped = "x0_clip_low" in coeffs or "x0_threshold_s" in coeffs
            second = "ε′ = the ε the clipped x̂₀ implies" if clipped else "ε̂′ = ε̂"
            lines.append(f"{second} at Euler's guess x_t/√ᾱ_t + (σ_t′ − σ_t)·ε̂, at t′   (Heun: two evaluations)")
        else:
            note = "Euler on the probability-flow ODE" if "corrector" not in coeffs else "onto clean data: Euler"
            lines.append(f"({note})")
        return lines
    # DDPM's posterior step
    sigma = coeffs["sigma"]
    variance = f"σ² = {_number(sigma**2)}"
    if "sigma_min" in coeffs:  # IF's learned variance: one sigma per pixel
        variance = (
            f"σ learned per pixel between √β̃ and √β: mean {_number(sigma)}, "
            f"from {_number(coeffs['sigma_min'])} to {_number(coeffs['sigma_max'])}"
        )
    return [
        f"α_t = ᾱ_t/ᾱ_t′ = {_number(coeffs['alpha_t'])},   β_t = 1 − α_t = {_number(coeffs['beta_t'])},   "
        + variance
        + ("   (no noise on the last step)" if sigma == 0 else "")
    ]


def _flow_rule_lines(meta: RunMeta, frame: Frame) -> list[str]:
    """What the flow rule evaluated beside v̂ (Heun's and the midpoint rule's second evaluation)."""
    coeffs = frame.coeffs
    if "t_mid" in coeffs:
        return [f"v̂_mid = v̂(x_t + (Δt/2)·v̂, t + Δt/2) at t = {coeffs['t_mid']:.3f}   (the midpoint rule)"]
    if meta.sampler == "heun":
        return ["v̂′ = v̂(x_t + Δt·v̂, t + Δt), at Euler's guess   (Heun: two evaluations)"]
    return [f"Δt = {_number(coeffs['dt'])}   (one Euler step)"]
