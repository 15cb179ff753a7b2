"""What the views over the session share: a refresh coalesced to one per event-loop turn, and a
run's caption and fields.

Each view subscribes to the session and redraws itself on the next turn of the event loop, so a
burst of frames from the worker costs one redraw, not one per frame.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from diffusion_stepper.core.diffusion.equations import frame_caption
from diffusion_stepper.core.session import CANCELLED, FAILED, RUNNING, Run, Session

NOISE = "noise"  # the panel key for eps_hat or v_hat, whichever the run has
PANEL_KEYS = ("x_t", "x0_hat", NOISE)


class CoalescedRefresh(QObject):
    """Calls `refresh` once on the next event-loop turn after any session event."""

    def __init__(self, session: Session, refresh: Callable[[], None], parent: QObject):
        super().__init__(parent)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(0)
        self.timer.timeout.connect(refresh)
        session.subscribe(self._on_event)

    def _on_event(self, event: str) -> None:
        if not self.timer.isActive():
            self.timer.start()


def run_caption(session: Session, run: Run) -> str:
    view = session.view(run)
    if view.pending:
        return f"step {view.index}/{run.length - 1} · pending"
    caption = frame_caption(run.trajectory.run_meta, view.frame, run.length)
    if run.state == RUNNING:
        caption += f"   ·   sampling {run.produced}/{run.length}"
    elif run.state in (CANCELLED, FAILED):
        caption += f"   ·   {run.state} after {run.produced} frames"
    return caption


def field_for(run: Run, key: str) -> str | None:
    """The frame field a panel key shows for this run (the noise key means eps_hat or v_hat)."""
    return run.trajectory.noise_field if key == NOISE else key
