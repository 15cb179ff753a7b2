"""A step's update as the rule computed it: a sum of terms a student can evaluate from the screen.

Each step rule (core.diffusion.rules) returns, beside the next x_t, an
`Update`: its equation in symbols (`formula`) and the same equation as terms, each a coefficient
times an image the frame shows (x_t, x̂₀, ε̂ or v̂, a second evaluation stored as an extra), the
previous frame's x̂₀ (DPM-Solver++), or the step's fresh noise z. The equation panel, `inspect`,
exports and the page print the terms' numbers, so what is shown is what was computed; `core.diffusion.step_check`
evaluates the terms on the stored images and measures how far they land from the next frame's x_t.
(This record sits beside `core.frames`, which holds it, below the maths that makes it.)

Where the rule used a quantity the frame does not show, the terms are written in quantities it
does: the ε a clipped x̂₀ implies, (x_t − √ᾱ_t·x̂₀)/√(1 − ᾱ_t), becomes a coefficient of x_t and
one of x̂₀; a second evaluation (Heun, midpoint) is stored as a named extra of the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
