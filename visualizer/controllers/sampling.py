"""Sampling: requests run one after another on the job runner, each becoming a run of the session
whose frames appear as they are produced."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

from PySide6.QtCore import QObject, Signal

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.experiments import Experiments
from diffusion_stepper.core.jobs import DONE as JOB_DONE
from diffusion_stepper.core.session import CANCELLED, DONE, FAILED, Session
from diffusion_stepper.core.timeline import ALIGN_NFE, ALIGN_TIME
from diffusion_stepper.visualizer.controllers.messages import Messages
from diffusion_stepper.visualizer.worker import Job, RunHeader, sampling_items

WHEN_SEVERAL = None  # `start`'s compare: side by side when there is more than one run


class SamplingController(QObject):
    busy_changed = Signal(bool)  # the docks enable Cancel and disable Run while busy
    progress = Signal(int, int)  # frames done, frames in all; (0, 0) while the model loads
    started = Signal(bool)  # a batch of runs began; True when they are compared side by side
    race_started = Signal()  # the batch is a sampler race

    def __init__(self, session: Session, messages: Messages, parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.messages = session, messages
        self.job: Job | None = None
        self.pending: list = []  # requests waiting their turn (a guidance sweep, an SDEdit strip)
        self._compare = False
        self._new_comparison: tuple[tuple[int, ...], bool] | None = None  # (also compared, race), until it starts
        self._run_id: int | None = None  # the run the current job fills
        self._started_at = 0.0

    @property
    def busy(self) -> bool:
        return self.job is not None or bool(self.pending)

    def start(
        self,
        make_requests: Callable[[], list],
        compare: bool | None = False,
        also_compare: Sequence[int] = (),
        race: bool = False,
    ) -> bool:
        """Run the requests `make_requests()` gives, in order. Runs of a comparison (`compare`, or
        WHEN_SEVERAL) replace the compared set, after the runs in `also_compare`; they line up on
        the timeline by normalized time, or by model evaluations for a sampler `race`. A bad
        setting is reported and runs nothing."""
        if self.busy:
            self.messages.show("Already sampling: wait for it, or press Esc to cancel", 5000)
            return False
        try:
            requests = list(make_requests())
        except UserFacingError as exc:
            self.messages.error(str(exc))
            return False
        if not requests:
            self.messages.error("nothing to sample with these settings")
            return False
        if compare is WHEN_SEVERAL:
            compare = len(requests) > 1
        # the compared set is replaced when the first run starts: one that fails at once changes nothing
        self._new_comparison = (tuple(also_compare), race) if compare else None
        self.pending, self._compare = requests, compare
        self.started.emit(compare)
        if race:
            self.race_started.emit()
        self.busy_changed.emit(True)
        self._start_next()
        return True

    def start_experiment(self, experiments: Experiments, key: str, options: Callable[[], object]) -> bool:
        """Run experiment `key` of a family's `experiments` with the `options()` its dock gives,
        its runs side by side when it compares them, lined up by model evaluations when a race."""
        experiment = experiments[key]
        return self.start(
            lambda: experiments.requests(key, options()), compare=experiment.compare, race=experiment.race
        )

    def cancel(self) -> None:
        """Stop at the next step (the frames so far stay) and drop the runs still waiting."""
        self.pending = []
        if self.job is not None:
            self.job.cancel()
            self.messages.show("Cancelling at the next step…", 0)

    def stop(self) -> None:
        """Cancel and wait for the worker: the window is closing."""
        self.pending = []
        if self.job is not None:
            self.job.stop()

    def _start_next(self) -> None:
        request = self.pending.pop(0)
        self._started_at, self._run_id = time.monotonic(), None
        self.job = Job(partial(sampling_items, request))
        self.job.item.connect(self._on_item)
        self.job.finished.connect(self._on_finished)
        self.job.failed.connect(self._on_failed)
        self.progress.emit(0, 0)
        self.messages.show("Loading the model…", 0)
        self.job.start()

    def _begin_comparison(self) -> None:
        """Replace the compared set with this comparison's runs (and `also_compare`'s), once."""
        if self._new_comparison is None:
            return
        also_compare, race = self._new_comparison
        self._new_comparison = None
        for run_id in list(self.session.compared_ids):
            self.session.set_compared(run_id, False)
        for run_id in also_compare:
            self.session.set_compared(run_id, True)
        self.session.set_align(ALIGN_NFE if race else ALIGN_TIME)

    def _on_item(self, item) -> None:
        if isinstance(item, RunHeader):
            self._begin_comparison()
            run = self.session.add_run(item.meta, item.num_frames, item.labels, data=item.data)
            self._run_id = run.id
            if self._compare:
                self.session.set_compared(run.id, True)
            self.progress.emit(0, item.num_frames)
            self.messages.show(f"Sampling {run.name}…", 0)
            return
        self.session.append_frame(self._run_id, item)
        run = self.session.run(self._run_id)
        if run is not None:
            self.progress.emit(item.index + 1, run.expected_frames)

    def _on_finished(self, outcome: str) -> None:
        seconds = time.monotonic() - self._started_at
        run = self.session.run(self._run_id)
        self.job = None
        if run is not None:
            self.session.finish_run(run.id, DONE if outcome == JOB_DONE else CANCELLED)
        if outcome != JOB_DONE:
            self.pending = []
            self.messages.show(f"Cancelled after {run.produced if run else 0} frames")
        elif run is not None:
            self.messages.show(f"Sampled {run.produced} frames in {seconds:.1f} s: scrub with ← →, play with Space")
        self._next_or_idle()

    def _on_failed(self, message: str) -> None:
        self.job, self.pending = None, []
        if self._run_id is not None:
            self.session.finish_run(self._run_id, FAILED, message)
        self.messages.error(f"Sampling failed: {message}")
        self._next_or_idle()

    def _next_or_idle(self) -> None:
        if self.pending:
            self._start_next()
        else:
            self.busy_changed.emit(False)
