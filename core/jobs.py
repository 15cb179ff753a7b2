"""Driving a job: a generator of items, advanced one `next()` at a time by a worker thread or a
child process.

`drive` is the one loop both use: it hands each item over, holds between two items while paused,
stops before the next item once cancelled, and ends with one outcome. `serve_in_child` is that
loop in a child process, which sends what it yields back through a pipe and takes its orders
(pause, resume, cancel) from it: training runs there, so that its Python does not share the GUI's
interpreter lock (issue 31).
Qt-free: the GUI side of both lives in `visualizer/worker.py` and `visualizer/child_worker.py`.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from diffusion_stepper.core import paths
from diffusion_stepper.core.allocator import keep_freed_memory_for_reuse
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.logs import log_unexpected

# How a job ends (`Job.finished` reports DONE or CANCELLED; FAILED comes with a one-line message).
DONE, CANCELLED, FAILED = "done", "cancelled", "failed"

OUT_OF_MEMORY = "out of memory: use fewer samples or fewer steps, or pick the CPU device"

# What a child sends (pickled, one message per `send_bytes`): ("item", value), ("held",), then
# ("ended", outcome, message) as its last. What its parent sends: one of the orders, as bytes.
ITEM, HELD, ENDED = "item", "held", "ended"
PAUSE, RESUME, CANCEL = b"pause", b"resume", b"cancel"


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


def drive(
    make_items: Callable[[], Iterator],
    hand_over: Callable[[object], None],
    held: Callable[[], None],
    cancelled: Callable[[], bool],
    paused: Callable[[], bool],
    hold: Callable[[], object],
) -> tuple[str, str]:
    """Run a job's generator to its end, a cancel or a failure; returns (outcome, message).

    `make_items()` is called here, so loading a model happens on the worker, not the caller. While
    `paused()`, the job says `held()` and `hold()` returns only once the pause is lifted (or the job
    cancelled), so no work is in flight; a cancel takes effect before the next item, so a stopped
    training run saves nothing new.
    """
    items = None
    outcome, message = CANCELLED, ""
    try:
        items = make_items()
        for value in items:
            if cancelled():
                break
            hand_over(value)
            if paused():
                held()
                hold()
            if cancelled():
                break
        else:
            outcome = DONE  # ran to the end: a cancel that came too late changes nothing
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message in the window
        outcome, message = FAILED, error_message(exc)
    finally:
        if items is not None and hasattr(items, "close"):
            items.close()  # a cancelled export stops before writing: no file is left behind
    return outcome, message


class _Orders:
    """A child's side of pause, resume and cancel: the orders its parent sends down the pipe, read
    whenever the loop asks. The parent gone, the pipe reads as closed: that is a cancel."""

    def __init__(self, connection):
        self.connection = connection
        self._paused = self._cancelled = False

    def _read(self, timeout: float | None = 0.0) -> None:
        """Take in the orders waiting, or the first to come within `timeout` (None: until one does)."""
        while not self._cancelled and self.connection.poll(timeout):
            try:
                order = self.connection.recv_bytes()
            except (EOFError, OSError):
                order = CANCEL
            if order == CANCEL:
                self.cancel()  # final: a pause sent after it changes nothing
                return
            self._paused = order == PAUSE
            timeout = 0.0  # then only what is already there

    def cancel(self) -> None:
        self._cancelled, self._paused = True, False

    def cancelled(self) -> bool:
        self._read()
        return self._cancelled

    def paused(self) -> bool:
        self._read()
        return self._paused

    def hold(self) -> None:
        while self._paused and not self._cancelled:
            self._read(None)


def serve_in_child(job: bytes, connection, work_folder: str) -> None:
    """A child process's whole life: unpickle the job (a picklable callable that makes the
    generator: the parent pickled it, nothing is read from a file), drive it, send each item back
    and obey the parent's orders between items. It ends after its last message; if the app has
    gone, its pipe reads as closed and it stops."""
    keep_freed_memory_for_reuse()  # as the app and the CLI do, before torch allocates
    paths.WORK_FOLDER = Path(work_folder)  # the parent's (tests point it elsewhere): logs go there
    orders = _Orders(connection)

    def send(*message) -> None:
        try:
            connection.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            orders.cancel()  # the app has gone (its end of the pipe closed): stop, nothing to log

    outcome, message = drive(
        lambda: pickle.loads(job)(),
        lambda value: send(ITEM, value),
        lambda: send(HELD),
        orders.cancelled,
        orders.paused,
        orders.hold,
    )
    send(ENDED, outcome, message)
    connection.close()
