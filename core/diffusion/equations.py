"""A step's update rule with this step's numbers filled in, as plain Unicode lines.

The GUI's equation panel and `diffusion-stepper inspect` print the same text, built from the
numbers the step rule recorded in `frame.coeffs` (see core.diffusion.sampling).
"""

from __future__ import annotations

import math

from diffusion_stepper.core.diffusion.theory import algorithm_family
from diffusion_stepper.core.frames import Frame


def _number(value: float) -> str:
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def time_text(family: str, t: float) -> str:
    """t as the captions and exports show it: an integer for DDPM and IF, three decimals otherwise."""
    if family == "ddpm" and t < 0:
        return "-1 (clean)"  # IF's chain ends past t = 0 (diffusers' indexing); ASCII, which every export font has
    return f"{int(round(t))}" if family == "ddpm" else f"{t:.3f}"


def frame_caption(meta: dict, frame: Frame, num_frames: int) -> str:
    """ "step 12/300 · t = 288 · ᾱ_t = 0.0123" (σ for the single-step denoiser, t alone for flow)."""
    family = algorithm_family(meta)
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
    if "psnr_db" in frame.coeffs:
        parts.append(f"PSNR {frame.coeffs['psnr_db']:.1f} dB")
    return " · ".join(parts)


def _guidance_line(frame: Frame, symbol: str) -> list[str]:
    """CFG: the estimate the step used, from the conditional and unconditional ones."""
    if "guidance" not in frame.coeffs:
        return []
    scale = frame.coeffs["guidance"]
    return [f"{symbol}̂ = {symbol}_u + γ·({symbol}_c − {symbol}_u)   with γ = {scale:g}   (classifier-free guidance)"]


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


def _composition_lines(meta: dict, frame: Frame) -> list[str]:
    """How a visual anagram or a hybrid image builds the noise estimate the step uses."""
    algorithm = str(meta.get("algorithm", ""))
    params = meta.get("params", {})
    if algorithm.endswith("+anagram"):
        views = params.get("views", [])
        terms = " + ".join(f"{name}⁻¹(ε̂({name}(x_t), p{i}))" for i, name in enumerate(views, 1))
        return [f"ε̂ = ({terms}) / {len(views)}   (visual anagram: each view's estimate mapped back, averaged)"]
    if algorithm.endswith("+hybrid"):
        kernel, sigma = params.get("blur_kernel", 33), params.get("blur_sigma", 2.0)
        return [
            f"ε̂ = G∗ε̂(x_t, p1) + (ε̂(x_t, p2) − G∗ε̂(x_t, p2)),   G: Gaussian, kernel {kernel}, σ = "
            f"{sigma:g}   (hybrid image)"
        ]
    return []


def step_equation(meta: dict, frame: Frame) -> list[str]:
    """The update this frame's step applied, with its numbers (and how close x̂₀ is to a known original)."""
    lines = _step_lines(meta, frame)
    if "psnr_db" in frame.coeffs:
        lines.append(f"PSNR(x̂₀, original) = {frame.coeffs['psnr_db']:.2f} dB")
    return lines


def _step_lines(meta: dict, frame: Frame) -> list[str]:
    coeffs = frame.coeffs
    family = algorithm_family(meta)
    if coeffs.get("final"):
        data = "x_1" if family == "flow" else "x_0"  # flow matching: x_1 is the data
        return ["final sample: no step left", f"{data} = the image shown (t = {time_text(family, frame.t)})"]
    if str(meta.get("algorithm", "")) in ("if-forward", "if-blur", "if-one-step"):
        return _denoise_once_lines(str(meta["algorithm"]), frame)
    if family == "ddpm" and "coef_x0" in coeffs:
        alpha_bar_t, alpha_bar_next = coeffs["alpha_bar_t"], coeffs["alpha_bar_next"]
        t, t_next = time_text(family, frame.t), time_text(family, coeffs["t_next"])
        sigma = coeffs["sigma"]
        clip = []
        if "x0_clip_low" in coeffs:
            clip = [
                f"x̂₀ ← clip(x̂₀, {coeffs['x0_clip_low']:g}, {coeffs['x0_clip_high']:g})   (kept inside the data range)"
            ]
        if "x0_threshold_s" in coeffs:
            clip = [
                f"x̂₀ ← clip(x̂₀, −s, s)/s,   s = the {coeffs['x0_threshold_ratio']:g} quantile of |x̂₀| kept within "
                f"[1, {coeffs['x0_threshold_max']:g}] = {coeffs['x0_threshold_s']:.3f}   (dynamic "
                "thresholding; the largest s in the batch)"
            ]
        variance = f"σ² = {_number(sigma**2)}"
        if "sigma_min" in coeffs:  # IF's learned variance: one sigma per pixel
            variance = (
                f"σ learned per pixel between √β̃ and √β: mean {_number(sigma)}, "
                f"from {_number(coeffs['sigma_min'])} to {_number(coeffs['sigma_max'])}"
            )
        return (
            _composition_lines(meta, frame)
            + _guidance_line(frame, "ε")
            + [
                f"x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t = (x_t − {_number(math.sqrt(1 - alpha_bar_t))}·ε̂) / "
                f"{_number(math.sqrt(alpha_bar_t))}",
            ]
            + clip
            + [
                "x_t′ = √ᾱ_t′·β_t/(1 − ᾱ_t)·x̂₀ + √α_t·(1 − ᾱ_t′)/(1 − ᾱ_t)·x_t + σ·z",
                f"     = {_number(coeffs['coef_x0'])}·x̂₀ + {_number(coeffs['coef_xt'])}·x_t + {_number(sigma)}·z",
                f"t = {t} → t′ = {t_next}:   ᾱ_t = {_number(alpha_bar_t)},   ᾱ_t′ = {_number(alpha_bar_next)}",
                f"α_t = ᾱ_t/ᾱ_t′ = {_number(coeffs['alpha_t'])},   β_t = 1 − α_t = {_number(coeffs['beta_t'])},   "
                + variance
                + ("   (no noise on the last step)" if sigma == 0 else ""),
            ]
        )
    if family == "flow" and "dt" in coeffs:
        t, dt = frame.t, coeffs["dt"]
        return _guidance_line(frame, "v") + [
            f"x̂₁ = x_t + (1 − t)·v̂ = x_t + {_number(1 - t)}·v̂      (the clean estimate: where x_t lands at t = 1)",
            f"x_t+Δt = x_t + Δt·v̂ = x_t + {_number(dt)}·v̂      (one Euler step)",
            f"t = {time_text(family, t)} → {time_text(family, coeffs['t_next'])}",
        ]
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
    return [f"{meta.get('algorithm', 'step')}: {shown}"]
