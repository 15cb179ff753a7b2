"""The one job runner: a core generator on a worker thread, one `next()` at a time (see DESIGN.md,
"Workers"). Sampling, exporting and training all run through it.

Items reach the GUI thread as a queued signal; cancel takes effect before the next item is
handed over; errors arrive as one-line messages, never swallowed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import torch
from PySide6.QtCore import QObject, QThread, Signal, Slot

from diffusion_stepper.core.allocator import release_free_memory
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.logs import log_unexpected

# How `Job.finished` reports the end of a job.
DONE, CANCELLED = "done", "cancelled"

OUT_OF_MEMORY = "out of memory: use fewer samples or fewer steps, or pick the CPU device"


def error_message(exc: BaseException) -> str:
    """One line a lecturer can act on. An unexpected exception (a bug) is also logged with its
    traceback, and the line says where, so that it can be sent with a report."""
    if isinstance(exc, UserFacingError):
        return str(exc)
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return OUT_OF_MEMORY
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    log = log_unexpected(exc, f"a job failed: {line}")
    return line if log is None else f"{line} (the details are in {log})"


class _GeneratorWorker(QObject):
    """Lives on the job's thread and drives the generator there."""

    item = Signal(object)
    finished = Signal(str)  # DONE or CANCELLED
    failed = Signal(str)
    held = Signal()  # stopped between two items because the job is paused

    def __init__(self, make_items: Callable[[], Iterator], cancel_event: threading.Event, run_gate: threading.Event):
        super().__init__()
        self._make_items = make_items
        self._cancel = cancel_event
        self._run_gate = run_gate  # cleared while paused: the next item is not asked for

    @Slot()
    def run(self) -> None:
        items = None
        completed = False
        try:
            items = self._make_items()  # loading a model happens here, off the GUI thread
            for value in items:
                if self._cancel.is_set():
                    break
                self.item.emit(value)
                if not self._run_gate.is_set():
                    self.held.emit()  # paused, and no work in flight
                self._run_gate.wait()  # pausing holds the generator between items
                if self._cancel.is_set():
                    break  # do no more work: a stopped training run saves nothing new
            else:
                completed = True  # ran to the end: a cancel that came too late changes nothing
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message in the window
            self.failed.emit(error_message(exc))
            return
        finally:
            if items is not None and hasattr(items, "close"):
                items.close()  # a cancelled export stops before writing: no file is left behind
        self.finished.emit(DONE if completed else CANCELLED)


class Job(QObject):
    """A generator run on its own thread: `start()`, `cancel()`, `pause()`, `resume()`, `stop()`.

    On the GUI thread it signals `item` for each value, `held` when a paused job has stopped
    between two items, then exactly one of `finished(DONE | CANCELLED)` or `failed(message)`.
    Those two come after the thread has ended, so a handler may start the next job at once; the
    job deletes itself afterwards.
    """

    item = Signal(object)
    held = Signal()
    finished = Signal(str)
    failed = Signal(str)

    def __init__(self, make_items: Callable[[], Iterator], parent: QObject | None = None):
        super().__init__(parent)
        # The job owns the flags: the worker object is deleted when its thread ends.
        self.cancel_event = threading.Event()
        self.run_gate = threading.Event()
        self.run_gate.set()
        self._worker = worker = _GeneratorWorker(
            make_items, self.cancel_event, self.run_gate
        )  # kept alive by this reference
        self.thread = QThread()
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)
        worker.item.connect(self.item)  # queued: this job lives on the GUI thread
        worker.held.connect(self.held)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        self.thread.finished.connect(worker.deleteLater)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.cancel_event.set()
        self.run_gate.set()  # a paused job wakes up to see the cancel

    def pause(self) -> None:
        """Hold the worker after the item it is producing; nothing is lost."""
        self.run_gate.clear()

    def resume(self) -> None:
        self.run_gate.set()

    @property
    def paused(self) -> bool:
        return not self.run_gate.is_set()

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Cancel and wait for the current step to end; True if the thread has stopped."""
        self.cancel()
        self.thread.quit()
        return self.thread.wait(timeout_ms)

    def _end_thread(self) -> None:
        self.thread.quit()
        self.thread.wait()
        self.deleteLater()
        release_free_memory()  # the job's temporaries left holes in the heap: give their pages back

    def _on_finished(self, outcome: str) -> None:
        self._end_thread()
        self.finished.emit(outcome)

    def _on_failed(self, message: str) -> None:
        self._end_thread()
        self.failed.emit(message)


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
