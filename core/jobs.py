"""Driving a job: a generator of items, advanced one `next()` at a time by a worker thread or a
child process (see DESIGN.md, "Workers").

`drive` is the one loop both use: it hands each item over, holds between two items while the run
gate is closed (a pause), stops before the next item once cancelled, and ends with one outcome.
`serve_in_child` is that loop in a child process, which sends what it yields back through a pipe:
training runs there, so that its Python does not share the GUI's interpreter lock (issue 31).
Qt-free: the GUI side of both lives in `visualizer/worker.py` and `visualizer/child_worker.py`.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import torch

from diffusion_stepper.core import paths
from diffusion_stepper.core.allocator import keep_freed_memory_for_reuse
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.logs import log_unexpected

# How a job ends (`Job.finished` reports DONE or CANCELLED; FAILED comes with a one-line message).
DONE, CANCELLED, FAILED = "done", "cancelled", "failed"

OUT_OF_MEMORY = "out of memory: use fewer samples or fewer steps, or pick the CPU device"

# While paused, how often the loop looks up from the gate to see whether its parent is still there.
HOLD_CHECK_SECONDS = 1.0

# What a child sends (pickled, one message per `send_bytes`): ("item", value), ("held",), then
# ("ended", outcome, message) as its last.
ITEM, HELD, ENDED = "item", "held", "ended"


class Flag(Protocol):
    """A `threading.Event` or a `multiprocessing` one."""

    def is_set(self) -> bool: ...
    def set(self) -> None: ...
    def wait(self, timeout: float | None = None) -> bool: ...


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
    cancel: Flag,
    run_gate: Flag,
    hand_over: Callable[[object], None],
    held: Callable[[], None],
    still_wanted: Callable[[], bool] = lambda: True,
) -> tuple[str, str]:
    """Run a job's generator to its end, a cancel or a failure; returns (outcome, message).

    `make_items()` is called here, so loading a model happens on the worker, not the caller. A
    paused job holds with no work in flight (after `held()`); a cancel takes effect before the
    next item, so a stopped training run saves nothing new. `still_wanted()` is asked while
    holding: a child whose app has gone stops instead of waiting for ever.
    """
    items = None
    outcome, message = CANCELLED, ""
    try:
        items = make_items()
        for value in items:
            if cancel.is_set():
                break
            hand_over(value)
            if not run_gate.is_set():
                held()
            while not run_gate.wait(HOLD_CHECK_SECONDS):
                if not still_wanted():
                    cancel.set()
                    break
            if cancel.is_set():
                break
        else:
            outcome = DONE  # ran to the end: a cancel that came too late changes nothing
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message in the window
        outcome, message = FAILED, error_message(exc)
    finally:
        if items is not None and hasattr(items, "close"):
            items.close()  # a cancelled export stops before writing: no file is left behind
    return outcome, message


def serve_in_child(job: bytes, connection, cancel: Flag, run_gate: Flag, work_folder: str) -> None:
    """A child process's whole life: unpickle the job (a picklable callable that makes the
    generator: the parent pickled it, nothing is read from a file), drive it, and send each item
    back. It ends after its last message; if the app has gone, its pipe breaks and it stops."""
    keep_freed_memory_for_reuse()  # as the app and the CLI do, before torch allocates
    paths.WORK_FOLDER = Path(work_folder)  # the parent's (tests point it elsewhere): logs go there

    def send(*message) -> None:
        connection.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def parent_alive() -> bool:
        parent = multiprocessing.parent_process()
        return parent is None or parent.is_alive()

    outcome, message = drive(
        lambda: pickle.loads(job)(), cancel, run_gate, lambda value: send(ITEM, value), lambda: send(HELD), parent_alive
    )
    try:
        send(ENDED, outcome, message)
    except OSError:
        pass  # the app has gone: no one to tell
    finally:
        connection.close()
