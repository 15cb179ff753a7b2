"""The one job runner: a core generator on a worker thread, one `next()` at a time
(`core.jobs.drive`). Sampling, exporting, judging and measuring run through it; training runs in
a child process instead (child_worker.py), with the same interface.

Items reach the GUI thread as a queued signal; cancel takes effect before the next item is
handed over; errors arrive as one-line messages, never swallowed.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Iterator

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from diffusion_stepper.core.allocator import release_free_memory
from diffusion_stepper.core.jobs import FAILED, drive


class Callbacks:
    """A signal for plain Python objects: `connect(function)`, then `emit(*args)` calls each."""

    def __init__(self):
        self._functions: list[Callable] = []

    def connect(self, function: Callable) -> None:
        self._functions.append(function)

    def emit(self, *args) -> None:
        for function in list(self._functions):
            function(*args)


class _ThreadSide(QObject):
    """Lives on a runner's thread and drives one job's generator there at a time."""

    item = Signal(object, object)  # (job, value)
    held = Signal(object)  # the job stopped between two items because it is paused
    ended = Signal(object, str, str)  # (job, DONE | CANCELLED | FAILED, the one-line message)

    @Slot(object)
    def run(self, job: Job) -> None:
        outcome, message = drive(
            job.make_items,
            lambda value: self.item.emit(job, value),
            lambda: self.held.emit(job),
            job.cancel_event.is_set,
            lambda: job.paused,
            job.run_gate.wait,
        )
        job.ended_event.set()  # the generator and its frames are gone before the next job starts
        self.ended.emit(job, outcome, message)


class _Runner(QObject):
    """One worker thread, started once and kept for the life of the app, running a job at a time.

    Threads, their QObjects and the signals' connections used to be made for every job and deleted
    after it; the app now creates no Qt object per job (see widgets/pool.py for why)."""

    submit = Signal(object)

    def __init__(self):
        super().__init__(QCoreApplication.instance())
        self.job: Job | None = None
        self.thread = QThread(self)
        self.thread.setObjectName("diffusion-stepper job runner")
        self.thread_side = _ThreadSide()
        self.thread_side.moveToThread(self.thread)
        self.submit.connect(self.thread_side.run)  # queued: it runs on the runner's thread
        self.thread_side.item.connect(self._on_item)  # queued back to the GUI thread
        self.thread_side.held.connect(self._on_held)
        self.thread_side.ended.connect(self._on_ended)
        self.thread.start()

    # Methods of this object, which lives on the GUI thread, so that Qt queues the worker's signals
    # to them (a plain function or lambda would be called on the worker thread).
    @Slot(object, object)
    def _on_item(self, job: Job, value) -> None:
        job.item.emit(value)

    @Slot(object)
    def _on_held(self, job: Job) -> None:
        job.held.emit()

    @Slot(object, str, str)
    def _on_ended(self, job: Job, outcome: str, message: str) -> None:
        self.job = None
        release_free_memory()  # the job's temporaries left holes in the heap: give their pages back
        if outcome == FAILED:
            job.failed.emit(message)
        else:
            job.finished.emit(outcome)

    def shut_down(self) -> None:
        self.thread.quit()
        self.thread.wait()


_runners: list[_Runner] = []


def _free_runner() -> _Runner:
    """A runner with no job: an idle one, or a new one when all are busy (at most one per job
    that can run at once: sampling, an export, training, the 2D lab, judging, a measurement)."""
    runner = next((runner for runner in _runners if runner.job is None), None)
    if runner is None:
        if not _runners:
            atexit.register(shut_down_runners)  # threads must end before Qt and Python tear down
        runner = _Runner()
        _runners.append(runner)
    return runner


def shut_down_runners() -> None:
    """End the runners' threads (at exit, after every job has been stopped)."""
    for runner in _runners:
        runner.shut_down()
    _runners.clear()


class Job:
    """A generator run on a worker thread: `start()`, `cancel()`, `pause()`, `resume()`, `stop()`.

    On the GUI thread it calls back `item` for each value, `held` when a paused job has stopped
    between two items, then exactly one of `finished(DONE | CANCELLED)` or `failed(message)`, after
    the generator has ended, so a handler may start the next job at once. Connect with
    `job.item.connect(function)`. The job is a plain object: the thread it runs on belongs to a
    runner that outlives it.
    """

    def __init__(self, make_items: Callable[[], Iterator]):
        self.make_items = make_items
        self.item, self.held, self.finished, self.failed = Callbacks(), Callbacks(), Callbacks(), Callbacks()
        self.cancel_event = threading.Event()
        self.run_gate = threading.Event()
        self.run_gate.set()
        self.ended_event = threading.Event()  # set on the worker thread when the generator has ended

    def start(self) -> None:
        runner = _free_runner()
        runner.job = self
        runner.submit.emit(self)

    def cancel(self) -> None:
        self.cancel_event.set()
        self.run_gate.set()  # a paused job wakes up to see the cancel

    def pause(self) -> None:
        """Hold the worker after the item it is producing; nothing is lost. (After a cancel it
        changes nothing: the job is ending.)"""
        if not self.cancel_event.is_set():
            self.run_gate.clear()

    def resume(self) -> None:
        self.run_gate.set()

    @property
    def paused(self) -> bool:
        return not self.run_gate.is_set()

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Cancel and wait for the current step to end; True if the generator has ended."""
        self.cancel()
        return self.ended_event.wait(timeout_ms / 1000)


# --- sampling jobs -----------------------------------------------------------------------------


class RunHeader:
    """The first item of a sampling job: what the GUI needs to make the run before frames arrive."""

    def __init__(self, meta: dict, labels, num_frames: int, data=None):
        self.meta, self.labels, self.num_frames = meta, labels, num_frames
        self.data = data  # a 2D run's sample of its training data


def sampling_items(request) -> Iterator:
    """Load and compose on the worker thread, announce the run, then yield its frames.

    `request` is anything with a `start()` that returns a `SamplingRun`: an MNIST `SampleRequest`,
    an `IFRequest`, or one of the requests the experiments make.
    """
    run = request.start()
    yield RunHeader(run.meta, run.labels, run.num_frames, run.data)
    yield from run.frames
