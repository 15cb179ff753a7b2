"""How the Step view shares its height and width between the pictures and the update rule.

The update rule is planned per run: its text size and height fit the run's longest step, so that
stepping through a run never moves the pictures. In presentation mode the rule gets exactly that
height (up to half the view) and the width its lines ask, the pictures the rest. At the desk the
lecturer's split stays, except that a newly shown (or still sampling) run's rule is given the room
to show whole; a rule taller than its panel scrolls there.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QSplitter, QWidget

from diffusion_stepper.core.diffusion.equations import step_equation
from diffusion_stepper.core.session import RUNNING, Run
from diffusion_stepper.visualizer.widgets.equation import EquationPanel

MOST_DETAILS_SHARE = 0.5  # the update rule may take up to half the height to show its longest step whole
PLOTS_HEIGHT_PX = 150  # in presentation mode the band under the pictures (rule and plots) is at least this tall
PLANS_KEPT = 8  # the update rule's lines are kept for this many runs (going back to one is free)
# presentation mode: the update rule as wide as its lines (within these shares of the width), so
# that they wrap less and the pictures get the height; the plots share the rest
EQUATION_WIDTH_SHARES = (0.45, 0.7)


class RuleSizing:
    """Sizes `splitter` (pictures above, `details` below) and `details` (the rule, then the plots)."""

    def __init__(
        self,
        view: QWidget,
        splitter: QSplitter,
        details: QSplitter,
        equation: EquationPanel,
        plots: list[QWidget],
        rule_shown: Callable[[], bool],
    ):
        self.view, self.splitter, self.details = view, splitter, details
        self.equation, self.plots, self.rule_shown = equation, plots, rule_shown
        self.presenting = False
        self._fitting = False  # fit() is under way (it resizes the rule, which asks again)
        self._planned: tuple[int, int] | None = None  # (run id, frames) the rule is sized for
        self._planned_lines: dict[int, list[list[str]]] = {}  # by run id: each frame's lines
        equation.needed_height_changed.connect(self.fit)

    def plan(self, run: Run | None) -> None:
        """Size the rule for every frame of the run produced so far (None: no run)."""
        if run is None:
            self._planned = None
            self.equation.plan([])
            return
        produced = min(run.produced, len(run.trajectory.frames))
        if self._planned == (run.id, produced):
            return
        planned = self._planned_lines.pop(run.id, [])
        # a frame's lines may use the next frame's numbers: the last one planned is planned again
        del planned[max(0, len(planned) - 1) :]
        frames, meta = run.trajectory.frames, run.trajectory.run_meta
        for frame in frames[len(planned) : produced]:
            planned.append(step_equation(meta, frame, frames))
        self._planned_lines[run.id] = planned  # the most recent last
        while len(self._planned_lines) > PLANS_KEPT:
            del self._planned_lines[next(iter(self._planned_lines))]
        # at the desk the rule's panel grows (never shrinks) for a run newly shown or still sampling
        grow_at_desk = self._planned is None or self._planned[0] != run.id or run.state == RUNNING
        self._planned = (run.id, produced)
        self.equation.plan(planned)
        self.fit(desk_too=grow_at_desk)

    def fit(self, desk_too: bool = False) -> None:
        """Presentation mode: the rule's height for its longest step (up to half the view), the
        pictures the rest. At the desk only with `desk_too`, and only more."""
        images, details = self.splitter.sizes()
        total = images + details
        at_desk = not self.presenting
        if (at_desk and not desk_too) or total <= 0 or not self.details.isVisibleTo(self.view) or self._fitting:
            return
        # resizing the rule changes what it needs (its wrapping), which calls back here: once is enough
        self._fitting = True
        try:
            if not at_desk:
                self._share_width()
            needed = self.equation.needed_height if self.rule_shown() else 0
            target = max(details, needed) if at_desk else max(needed, PLOTS_HEIGHT_PX)
            target = min(target, int(total * MOST_DETAILS_SHARE))
            if target != details:
                self.splitter.setSizes([total - target, target])
        finally:
            self._fitting = False

    def _share_width(self) -> None:
        """The rule as wide as its longest line asks (within EQUATION_WIDTH_SHARES of the width),
        the plots beside it sharing the rest."""
        width = sum(self.details.sizes())
        shown = [plot for plot in self.plots if plot.isVisibleTo(self.view)]
        if width <= 0 or not self.equation.isVisibleTo(self.view) or not shown:
            return
        narrowest, widest = (int(width * share) for share in EQUATION_WIDTH_SHARES)
        equation = self.equation.unwrapped_width()
        if equation > widest:  # it shrinks its text to fit: as wide as the shrunk text needs
            equation = min(self.equation.unwrapped_width(shrunk=True), widest)
        equation = max(equation, narrowest)
        plot_width = (width - equation) // len(shown)
        sizes = [equation] + [plot_width if plot in shown else 0 for plot in self.plots]
        if sizes != self.details.sizes():
            self.details.setSizes(sizes)
