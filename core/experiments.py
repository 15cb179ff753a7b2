"""One experiment type for every family: a course figure as the list of requests it runs, made
from the options that family's dock or command gives (MNIST's `ExperimentOptions`, IF's settings,
the 2D lab's options), with how the app shows its runs.

Each family keeps its own `Experiments` (core.mnist.experiments, core.deepfloyd_if.experiments,
core.toy2d.experiments); the app's Experiments menu and `diffusion-stepper experiment FAMILY NAME`
read those same registries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from diffusion_stepper.core.errors import UserFacingError

Options = TypeVar("Options")


@dataclass(frozen=True)
class Experiment(Generic[Options]):
    key: str  # the command's NAME
    title: str  # the menu entry
    requests: Callable[[Options], list] = field(repr=False)  # the runs, from the family's options
    compare: bool = False  # several runs, shown side by side on one timeline
    race: bool = False  # a sampler race: its runs line up by model evaluations, and its x̂₀ curves are plotted
    summary: str = ""  # what it shows, in a few words (the 2D lab's status line and `--help`)


class Experiments(Mapping[str, Experiment]):
    """One family's experiments by key, in the menu's order."""

    def __init__(
        self, what: str, experiments: Iterable[Experiment], check: Callable[[Any], None] | None = None
    ) -> None:
        self.what = what  # how an unknown key is refused: "unknown {what} 'NAME'"
        self._experiments = {experiment.key: experiment for experiment in experiments}
        self._check = check  # refuses options no experiment of the family can run with

    def __getitem__(self, key: str) -> Experiment:
        return self._experiments[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._experiments)

    def __len__(self) -> int:
        return len(self._experiments)

    def requests(self, key: str, options) -> list:
        """The runs of experiment `key`, made from `options`; one line for an unknown key or a bad option."""
        if key not in self._experiments:
            raise UserFacingError(f"unknown {self.what} {key!r}; use one of {', '.join(self._experiments)}")
        if self._check is not None:
            self._check(options)
        return self._experiments[key].requests(options)
