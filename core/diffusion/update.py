"""A step's update as the rule computed it: a sum of terms a student can evaluate from the screen.

Each step rule (core.diffusion.sampling, core.diffusion.solvers) returns, beside the next x_t, an
`Update`: its equation in symbols (`formula`) and the same equation as terms, each a coefficient
times an image the frame shows (x_t, x̂₀, ε̂ or v̂, a second evaluation stored as an extra), the
previous frame's x̂₀ (DPM-Solver++), or the step's fresh noise z. The equation panel, `inspect`,
exports and the page print the terms' numbers, so what is shown is what was computed; `check_step`
evaluates the terms on the stored images and measures how far they land from the next frame's x_t.

Where the rule used a quantity the frame does not show, the terms are written in quantities it
does: the ε a clipped x̂₀ implies, (x_t − √ᾱ_t·x̂₀)/√(1 − ᾱ_t), becomes a coefficient of x_t and
one of x̂₀; a second evaluation (Heun, midpoint) is stored as a named extra of the frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from diffusion_stepper.core.frames import Frame

NOISE = "z"  # the step's fresh N(0, I) noise: not stored, so a term of it is what the residual must be
THIS, PREVIOUS = 0, -1  # a term's frame, relative to the step's own
# Extras the rules store so that their updates can be evaluated from the frame
SECOND_EPS, SECOND_V, MIDPOINT_V, NOISE_STD = "eps_hat_2", "v_hat_2", "v_mid", "noise_std"
SECOND_EPS_CLIPPED = "eps_2"  # Heun with x̂₀ clipping: the ε the clipped x̂₀ at Euler's guess implies
SYMBOLS = {
    "x_t": "x_t",
    "x0_hat": "x̂₀",
    "eps_hat": "ε̂",
    "v_hat": "v̂",
    SECOND_EPS: "ε̂′",
    SECOND_EPS_CLIPPED: "ε′",
    SECOND_V: "v̂′",
    MIDPOINT_V: "v̂_mid",
    NOISE_STD: "σ",
    NOISE: "z",
}
# A deterministic step's terms land within this fraction of the largest |x| of the next x_t
EXACT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Term:
    coef: float
    member: str  # an image of the frame ("x_t", "x0_hat", "eps_hat", "v_hat", an extra's name) or NOISE
    frame: int = THIS  # THIS, or PREVIOUS: the frame before (DPM-Solver++'s previous x̂₀)
    scale: str | None = None  # an image of this frame that multiplies the term pixel by pixel (IF's learned σ)

    def symbol(self) -> str:
        name = SYMBOLS.get(self.member, self.member)
        name = f"{name}_prev" if self.frame == PREVIOUS else name
        return f"{SYMBOLS.get(self.scale, self.scale)}⊙{name}" if self.scale else name


@dataclass(frozen=True)
class Update:
    """x_t′ = Σ terms, and the rule's equation in symbols."""

    terms: tuple[Term, ...]
    formula: str  # "x_t′ = √ᾱ_t′·x̂₀ + √(1 − ᾱ_t′ − σ²)·ε̂ + σ·z"
    where: str | None = None  # an image of the frame: the update holds where it is 1 (inpainting's mask)

    def images(self) -> set[str]:
        """The frame's images the update names (beside z): what must be kept with the frame."""
        names = {term.member for term in self.terms} | {term.scale for term in self.terms} | {self.where}
        return names - {NOISE, None}

    def numbers(self) -> str:
        """The terms with this step's numbers: "= 0.1234·x̂₀ + 0.9876·x_t + 0.0100·z"."""
        parts: list[str] = []
        for term in self.terms:
            if term.coef == 0:
                continue
            size = number_text(abs(term.coef))
            text = term.symbol() if size == "1.0000" else f"{size}·{term.symbol()}"
            sign = "−" if term.coef < 0 else "+"
            parts.append(f"{sign} {text}" if parts else ("−" + text if sign == "−" else text))
        return "= " + " ".join(parts) if parts else "= 0"

    def to_record(self) -> dict:
        """Plain data for the trajectory file (see `update_from_record`)."""
        record: dict = {
            "formula": self.formula,
            "terms": [
                {
                    "coef": term.coef,
                    "member": term.member,
                    **({"frame": term.frame} if term.frame != THIS else {}),
                    **({"scale": term.scale} if term.scale else {}),
                }
                for term in self.terms
            ],
        }
        if self.where:
            record["where"] = self.where
        return record


def combined(terms: Sequence[Term]) -> tuple[Term, ...]:
    """The terms with those of one image summed into one (x_t from x_σ and from a clipped x̂₀'s ε)."""
    sums: dict[tuple, float] = {}
    for term in terms:
        key = (term.member, term.frame, term.scale)
        sums[key] = sums.get(key, 0.0) + term.coef
    return tuple(Term(coef, member, frame, scale) for (member, frame, scale), coef in sums.items())


def update_from_record(record: dict) -> Update:
    """The inverse of `Update.to_record` (the record already checked by the file's schema)."""
    terms = tuple(
        Term(float(term["coef"]), term["member"], int(term.get("frame", THIS)), term.get("scale"))
        for term in record["terms"]
    )
    return Update(terms, record["formula"], record.get("where"))


def number_text(value: float) -> str:
    """A coefficient as the equations print it: four decimals, or two significant digits when tiny."""
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


# --- evaluating an update on the stored frames ----------------------------------------------------


def why_unchecked(frames: Sequence[Frame], index: int) -> str | None:
    """Why frame `index`'s update cannot be checked against the frames stored, or None if it can:
    the next frame must be this step's result, and a term of the previous frame needs that frame."""
    frame = frames[index]
    if frame.update is None:
        return "this frame records no update" if not frame.coeffs.get("final") else "the last frame: no step left"
    if index + 1 >= len(frames):
        return "the next frame is not here yet"
    if "t_next" in frame.coeffs and not math.isclose(frames[index + 1].t, frame.coeffs["t_next"], abs_tol=1e-9):
        return "the frame in between was not kept (keep every K): the next frame stored is a later step's"
    if any(term.frame == PREVIOUS for term in frame.update.terms):
        if index == 0:
            return "the previous frame is not in the run"
        previous = frames[index - 1]
        if not math.isclose(previous.coeffs.get("t_next", math.nan), frame.t, abs_tol=1e-9):
            return "the previous step's frame was not kept (keep every K)"
    return None


def _term_image(frames: Sequence[Frame], index: int, term: Term) -> torch.Tensor:
    frame = frames[index + term.frame]
    image = frame.image(term.member).double()
    if term.scale:
        image = image * frames[index].image(term.scale).double()
    return image


@dataclass(frozen=True)
class StepCheck:
    """How the update's terms, evaluated on the stored images, meet the next frame's x_t."""

    largest_error: float  # max |Σ terms − x_t′| over the pixels where the update holds (deterministic part)
    largest_value: float  # max |x_t′| there, the scale the error is judged against
    noise_mean: float | None = None  # noisy steps: the residual divided by z's coefficient
    noise_std: float | None = None

    @property
    def exact(self) -> bool:
        return self.noise_mean is None

    def holds(self) -> bool:
        """Within EXACT_TOLERANCE for a deterministic step; a residual like N(0, 1) for a noisy one."""
        if self.exact:
            return self.largest_error <= EXACT_TOLERANCE * max(self.largest_value, 1.0)
        return abs(self.noise_mean) < 0.1 and abs(self.noise_std - 1.0) < 0.1

    def line(self) -> str:
        """The panel's proof line: what the check found, and whether that proves the numbers."""
        if self.exact:
            if self.holds():
                return f"check: these numbers give the next x_t to within {self.largest_error:.1e}"
            return f"check: these numbers DO NOT give the next x_t: they miss it by up to {self.largest_error:.2g}"
        found = f"(x_t′ − the terms without z) / z's coefficient: mean {self.noise_mean:+.2f}, std {self.noise_std:.2f}"
        return f"check: {found}" + (", so z ~ N(0, 1)" if self.holds() else ", NOT the N(0, 1) noise z should be")


def check_step(frames: Sequence[Frame], index: int) -> StepCheck | None:
    """The terms of frame `index`'s update evaluated on the stored images, against frame index + 1;
    None where the frames stored cannot show it (see `why_unchecked`)."""
    if why_unchecked(frames, index) is not None:
        return None
    frame, update = frames[index], frames[index].update
    target = frames[index + 1].x_t.double()
    deterministic = torch.zeros_like(target)
    noise_scale = torch.zeros_like(target)
    for term in update.terms:
        if term.member == NOISE:
            scale = frame.image(term.scale).double() if term.scale else torch.ones_like(target)
            noise_scale = noise_scale + term.coef * scale
        else:
            deterministic = deterministic + term.coef * _term_image(frames, index, term)
    where = torch.ones_like(target, dtype=torch.bool)
    if update.where:
        where = frame.image(update.where) > 0.5
    residual = (target - deterministic)[where]
    largest_value = float(target[where].abs().max()) if where.any() else 0.0
    noisy = noise_scale[where].abs() > 0
    if not bool(noisy.any()):
        return StepCheck(float(residual.abs().max()) if residual.numel() else 0.0, largest_value)
    noise = residual[noisy] / noise_scale[where][noisy]
    exact_part = residual[~noisy]
    largest_error = float(exact_part.abs().max()) if exact_part.numel() else 0.0
    return StepCheck(largest_error, largest_value, float(noise.mean()), float(noise.std()))
