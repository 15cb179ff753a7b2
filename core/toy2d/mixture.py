"""Gaussian mixtures in the plane, with their exact noised marginals, scores and velocities.

For data x₁ ~ Σ_k w_k N(μ_k, s_k² I) and noise z ~ N(0, I), every process the app teaches makes
x = a·x₁ + b·z for some signal level a and noise level b:

- DDPM's forward process: a = √ᾱ_t, b = √(1 − ᾱ_t) (and the clean image is x₀ in the course's
  DDPM notation);
- the course's flow matching: a = t, b = 1 − t (noise at t = 0, data at t = 1).

The marginal of x is again a mixture, Σ_k w_k N(a·μ_k, (a²s_k² + b²) I), so everything a model is
trained to estimate has a closed form: the posterior means E[x₁ | x] and E[z | x] (per component,
then weighted by the component's responsibility for x), from which the ideal ε̂ = E[z | x], the
ideal clean estimate x̂₀ = E[x₁ | x], the ideal velocity v̂ = E[x₁ − z | x] and the score
∇log p(x) = −E[z | x]/b all follow. The app shows them as the true field beside the learned one,
and samples with them as a "perfect model", so model error and sampler error come apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

# The [N, K] and [N, K, 2] tables of points against components are built this many entries at a
# time: a drawing has up to 4,000 components and a run 20,000 particles, whose whole table (float64,
# a few copies) would take gigabytes; a piece's tables take a few megabytes. The outputs are
# allocated once, up front: small outputs allocated after each piece would pin the heap above the
# freed tables, and the process grew by 60 MB every few pieces (to 1 GB) that way.
TABLE_ENTRIES = 1 << 18


def _in_pieces(x: torch.Tensor, components: int, compute: Callable[[torch.Tensor], tuple]) -> tuple:
    """`compute(x)`, one block of rows of `x` at a time (each block's tables within TABLE_ENTRIES),
    its outputs (tensors with a row per point) put back together."""
    rows = max(1, TABLE_ENTRIES // max(1, components))
    if x.shape[0] <= rows:
        return compute(x)
    outputs: tuple = ()
    for start in range(0, x.shape[0], rows):
        piece = compute(x[start : start + rows])
        if not outputs:  # allocated once, before the next piece's tables, so no small block pins them
            outputs = tuple(part.new_empty((x.shape[0], *part.shape[1:])) for part in piece)
        for output, part in zip(outputs, piece):
            output[start : start + rows] = part
        del piece
    return outputs


@dataclass(frozen=True)
class GaussianMixture:
    """Isotropic components: `means` [K, 2], `stds` [K], `weights` [K] (summing to 1), and for a
    labelled mixture the class of each component, `labels` [K]."""

    means: torch.Tensor
    stds: torch.Tensor
    weights: torch.Tensor
    labels: torch.Tensor | None = None

    def __post_init__(self):
        count = self.means.shape[0]
        if self.means.shape != (count, 2) or self.stds.shape != (count,) or self.weights.shape != (count,):
            raise ValueError("a mixture needs means [K, 2], stds [K] and weights [K]")
        if not bool((self.stds > 0).all()) or abs(float(self.weights.sum()) - 1.0) > 1e-6:
            raise ValueError("a mixture needs positive stds and weights summing to 1")

    @property
    def num_classes(self) -> int:
        return 0 if self.labels is None else int(self.labels.max()) + 1

    def given_class(self, label: int) -> GaussianMixture:
        """The mixture of one class's components, reweighted: p(x | c)."""
        if self.labels is None:
            raise ValueError("this mixture has no classes")
        chosen = self.labels == label
        if not bool(chosen.any()):
            raise ValueError(f"no component has class {label}")
        weights = self.weights[chosen]
        return GaussianMixture(self.means[chosen], self.stds[chosen], weights / weights.sum(), self.labels[chosen])

    def sample(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`count` points [count, 2] and, for a labelled mixture, the class of each."""
        component = torch.multinomial(self.weights, count, replacement=True, generator=generator)
        noise = torch.randn((count, 2), generator=generator, dtype=self.means.dtype)
        points = self.means[component] + self.stds[component, None] * noise
        return points, None if self.labels is None else self.labels[component]

    # --- the noised marginal x = a·x₁ + b·z ---------------------------------------------------

    def _component_variances(self, a: float, b: float) -> torch.Tensor:
        return a * a * self.stds**2 + b * b

    def responsibilities(self, x: torch.Tensor, a: float = 1.0, b: float = 0.0) -> torch.Tensor:
        """p(k | x) [N, K] under the marginal of x = a·x₁ + b·z."""
        return torch.softmax(self._log_joint(x, a, b), dim=1)

    def _log_joint(self, x: torch.Tensor, a: float, b: float) -> torch.Tensor:
        """log w_k + log N(x; a·μ_k, var_k I), [N, K]."""
        variances = self._component_variances(a, b).to(x.dtype)
        squared = (x[:, None, :] - a * self.means.to(x.dtype)[None]).pow(2).sum(-1)
        return (
            torch.log(self.weights.to(x.dtype))[None] - squared / (2 * variances) - torch.log(2 * math.pi * variances)
        )

    def log_density(self, x: torch.Tensor, a: float = 1.0, b: float = 0.0) -> torch.Tensor:
        """log p(x) [N] of the marginal of x = a·x₁ + b·z (a = 1, b = 0: the data itself)."""
        return _in_pieces(x, len(self.weights), lambda block: (torch.logsumexp(self._log_joint(block, a, b), dim=1),))[
            0
        ]

    def posterior_means(self, x: torch.Tensor, a: float, b: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(E[x₁ | x], E[z | x]), each [N, 2], for x = a·x₁ + b·z.

        Per component k, (x₁, x) are jointly Gaussian: E[x₁ | x, k] = μ_k + (a·s_k²/var_k)(x − a·μ_k)
        and E[z | x, k] = (b/var_k)(x − a·μ_k), var_k = a²s_k² + b². Finite at both ends (a = 0 or
        b = 0), where the score's Tweedie form divides by zero."""
        return _in_pieces(x, len(self.weights), lambda block: self._posterior_means(block, a, b))

    def _posterior_means(self, x: torch.Tensor, a: float, b: float) -> tuple[torch.Tensor, torch.Tensor]:
        weights = self.responsibilities(x, a, b)
        variances = self._component_variances(a, b).to(x.dtype)
        offset = x[:, None, :] - a * self.means.to(x.dtype)[None]  # [N, K, 2]
        clean = self.means.to(x.dtype)[None] + (a * self.stds.to(x.dtype) ** 2 / variances)[None, :, None] * offset
        noise = (b / variances)[None, :, None] * offset
        return (weights[..., None] * clean).sum(1), (weights[..., None] * noise).sum(1)

    def score(self, x: torch.Tensor, a: float = 1.0, b: float = 0.0) -> torch.Tensor:
        """∇ₓ log p(x) [N, 2] of the marginal of x = a·x₁ + b·z."""
        return _in_pieces(x, len(self.weights), lambda block: (self._score(block, a, b),))[0]

    def _score(self, x: torch.Tensor, a: float, b: float) -> torch.Tensor:
        weights = self.responsibilities(x, a, b)
        variances = self._component_variances(a, b).to(x.dtype)
        pull = (a * self.means.to(x.dtype)[None] - x[:, None, :]) / variances[None, :, None]
        return (weights[..., None] * pull).sum(1)

    # --- what the models learn, exactly -------------------------------------------------------

    def ddpm_estimates(self, x_t: torch.Tensor, alpha_bar: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The ideal DDPM model at ᾱ: (ε̂, x̂₀) = (E[ε | x_t], E[x₀ | x_t])."""
        clean, noise = self.posterior_means(x_t, math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar))
        return noise, clean

    def flow_velocity(self, x_t: torch.Tensor, t: float) -> torch.Tensor:
        """The ideal flow-matching velocity at t: E[x₁ − z | x_t] for x_t = (1 − t)·z + t·x₁."""
        clean, noise = self.posterior_means(x_t, t, 1.0 - t)
        return clean - noise
