"""What the image fields of a run's frames are called, by what the run is: on screen (Unicode) and
in exports (ASCII, which every export font draws).

One notation throughout: in DDPM and IF, x₀ is the clean image and t counts down to it; in the
course's flow matching, x₀ is noise and x₁ the data, so the clean estimate is x̂₁. The frame field
is `x0_hat` either way (the code's "clean estimate"). Runs that show known images rather than
estimates (the noising process, IF's forward process and blur) say so.
"""

from __future__ import annotations

from diffusion_stepper.core.diffusion.rules.catalogue import sampler_title
from diffusion_stepper.core.run_meta import RunMeta

# field -> (on screen, in exports)
_ESTIMATES = {
    "x_t": ("x_t", "x_t"),
    "x0_hat": ("x̂₀  clean estimate", "x0 estimate"),
    "eps_hat": ("ε̂  noise estimate", "noise estimate"),
    "v_hat": ("v̂  velocity estimate", "velocity estimate"),
}
_FLOW = {"x0_hat": ("x̂₁  clean estimate (data, t = 1)", "x1 estimate (data)")}
_NOISE_ADDED = ("ε  the noise added", "noise added")
_KNOWN = {  # algorithm -> the fields that hold known images, not estimates
    "noising": {"x0_hat": ("x  the clean digits", "clean digits"), "eps_hat": _NOISE_ADDED},
    "if-forward": {"x0_hat": ("x₀  the original", "x0 original"), "eps_hat": _NOISE_ADDED},
    "if-blur": {"x0_hat": ("x̂₀  Gaussian blur of x_t", "x0 estimate: blur"), "eps_hat": _NOISE_ADDED},
}


def field_title(meta: RunMeta, name: str, ascii: bool = False) -> str | None:
    """The title of frame field `name` for this run, or None for a name that is not one of the
    four image fields (an extra: see EXTRA_TITLES below)."""
    titles = _ESTIMATES | (_FLOW if meta.family == "flow" else {}) | _KNOWN.get(meta.algorithm, {})
    if name not in titles:
        return None
    return titles[name][1 if ascii else 0]


def clean_symbol(meta: RunMeta) -> str:
    """x₀, or x₁ for flow matching, where the data sits."""
    return "x₁" if meta.family == "flow" else "x₀"


def sampler_label(meta: RunMeta) -> str:
    """A run's sampler as the app labels it ("DDIM η=0", "Heun"); "" for runs without a choice."""
    return "" if meta.sampler is None else sampler_title(meta.sampler, meta.family == "flow", meta.eta)


def guidance_gap_label(meta: RunMeta) -> str:
    """What CFG's gap between the conditional and unconditional estimates is, for this run:
    |ε_c − ε_u| for a noise-prediction model, |v_c − v_u| for a flow model (its estimate is v)."""
    symbol = "v" if meta.family == "flow" else "ε"
    return f"|{symbol}_c − {symbol}_u|"


def guidance_gap_curve(frames) -> tuple[list[float], list[float], float] | None:
    """(t, mean gap ÷ its peak, the peak) over the steps of a CFG run that has recorded its gap;
    None for a run without CFG."""
    guided = [frame for frame in frames if "guidance_gap" in frame.coeffs]
    peak = max((frame.coeffs["guidance_gap"] for frame in guided), default=0.0)
    if peak <= 0:
        return None
    return [float(frame.t) for frame in guided], [frame.coeffs["guidance_gap"] / peak for frame in guided], peak


# The extra images algorithms attach to frames (core.diffusion.sampling, core.deepfloyd_if.sampling), by name.
EXTRA_TITLES = {
    "eps_cond": "ε_c conditional",
    "eps_uncond": "ε_u unconditional",
    "v_cond": "v_c conditional",
    "v_uncond": "v_u unconditional",
    "eps_gap": "|ε_c − ε_u|: where the class acts",
    "v_gap": "|v_c − v_u|: where the class acts",
    "eps_low": "lowpass part (prompt 1)",
    "eps_high": "highpass part (prompt 2)",
    "x0": "original",
    "mask": "mask (white: new)",
    "low_res": "stage I input, upscaled",
    "blurred": "Gaussian blur",
    "noise": "the noise added",
    "eps_view1": "view 1 ε̂",
    "eps_view2": "view 2 ε̂",
    "eps_view3": "view 3 ε̂",
    "eps_view4": "view 4 ε̂",
    "x0_view1": "view 1 x̂₀",
    "x0_view2": "view 2 x̂₀",
    "x0_view3": "view 3 x̂₀",
    "x0_view4": "view 4 x̂₀",
    "x0_afar": "x̂₀ from afar (shrunk 4×)",
    "eps_hat_2": "ε̂′ at Euler's guess (Heun's second evaluation)",
    "eps_2": "ε′ from the clipped x̂₀ at Euler's guess (Heun)",
    "v_hat_2": "v̂′ at Euler's guess (Heun's second evaluation)",
    "v_mid": "v̂_mid at the midpoint (second evaluation)",
    "noise_std": "σ per pixel (learned variance)",
}


def field_caption(meta: RunMeta, name: str, ascii: bool = True) -> str:
    """A panel's title in an export: the field's name for this run, or the extra's. ASCII for
    pictures (the export font lacks x̂'s combining hat); a web page can have the real symbols."""
    return field_title(meta, name, ascii=ascii) or EXTRA_TITLES.get(name, name)
