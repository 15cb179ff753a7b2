"""Jobs in a child process: training, whose Python would otherwise share the interpreter lock
with the GUI thread (issue 31: the Quick preset took 1.7x as long in the app as from the command
line, and the window stalled while it trained).

`ChildJob` has `Job`'s interface (worker.py): `start`, `pause`, `resume`, `cancel`, `stop`, and
the callbacks `item`, `held`, `finished`, `failed` on the GUI thread. The child is started with
"spawn" (a fork of a process running Qt's threads is unsafe), runs `core.jobs.serve_in_child`,
and sends each item pickled through a pipe; a thread here reads the pipe and queues what it
reads to the GUI thread in batches. A child that dies without its last message (killed, out of
memory, a crash in native code) is one `failed` message saying how it ended.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import signal
import threading
from collections.abc import Callable, Iterator

from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot

from diffusion_stepper.core import paths
from diffusion_stepper.core.allocator import release_free_memory
from diffusion_stepper.core.jobs import (
    CANCEL,
    CANCELLED,
    ENDED,
    FAILED,
    HELD,
    ITEM,
    PAUSE,
    RESUME,
    error_message,
    serve_in_child,
)
from diffusion_stepper.visualizer.worker import Callbacks

SPAWN = multiprocessing.get_context("spawn")
STOP_GRACE_SECONDS = 30.0  # how long `stop` waits for the child to finish its batch before killing it


def ended_unexpectedly(exit_code: int | None) -> str:
    """One line for a child that died without saying it ended."""
    if exit_code is not None and exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        why = ", most often the system running out of memory" if -exit_code == signal.SIGKILL else ""
        return f"its process was killed ({name}{why}); what it saved before stays as it was"
    return f"its process ended unexpectedly (exit code {exit_code}); what it saved before stays as it was"


class _Mailbox(QObject):
    """One object on the GUI thread for every child job (the app makes no Qt object per job, see
    widgets/pool.py): the reading threads' signals are queued to it."""

    arrived = Signal(object, list)  # (job, the messages read at once)

    def __init__(self):
        super().__init__(QCoreApplication.instance())
        self.arrived.connect(self._deliver)

    @Slot(object, list)
    def _deliver(self, job: ChildJob, messages: list) -> None:
        job.deliver(messages)


_mailbox: _Mailbox | None = None
_running: set[ChildJob] = set()


def stop_children() -> None:
    """At exit: stop every child still running (each keeps what it has saved)."""
    for job in list(_running):
        job.stop()


class ChildJob:
    """A generator run in a child process. `make_items` must be picklable (a module-level
    function, or a `functools.partial` of one with picklable arguments), and so must its items."""

    def __init__(self, make_items: Callable[[], Iterator], name: str = "diffusion-stepper job"):
        self.make_items, self.name = make_items, name
        self.item, self.held, self.finished, self.failed = Callbacks(), Callbacks(), Callbacks(), Callbacks()
        self.connection = None  # our end of the pipe: items come up it, orders go down
        self._paused = False
        self.process: multiprocessing.process.BaseProcess | None = None
        self._exited = threading.Event()  # the reading thread has seen the child exit (it alone joins it)
        self._outcome: tuple[str, str] | None = None

    def start(self) -> None:
        """Start the child; a failure to (no memory, no file handles, an item that cannot be
        pickled) is reported as `failed`, as any other."""
        global _mailbox
        if _mailbox is None:
            _mailbox = _Mailbox()
        childs_end = None
        try:
            job = pickle.dumps(self.make_items)
            self.connection, childs_end = SPAWN.Pipe(duplex=True)
            self.process = SPAWN.Process(
                target=serve_in_child, args=(job, childs_end, str(paths.WORK_FOLDER)), name=self.name, daemon=True
            )
            self.process.start()
        except Exception as exc:  # noqa: BLE001 - one line in the window, as for a failure in the child
            for end in (self.connection, childs_end):
                if end is not None:
                    end.close()
            self.connection, self.process = None, None
            self._outcome = (FAILED, error_message(exc))
            self._end()
            return
        childs_end.close()  # the child holds the only other end: the pipe reads as closed when it exits
        _running.add(self)
        threading.Thread(target=self._read, args=(self.connection,), name=f"{self.name} reader", daemon=True).start()

    def _order(self, order: bytes) -> None:
        if self.connection is None:
            return  # not started: nothing to order
        with contextlib.suppress(OSError):  # already gone: nothing to order
            self.connection.send_bytes(order)

    def _read(self, receiving) -> None:
        """On the reading thread: everything the child sends, in batches, then its end."""
        said_it_ended, pipe_open, broken = False, True, None
        while pipe_open and not said_it_ended:
            messages = []
            try:
                messages.append(pickle.loads(receiving.recv_bytes()))
                while receiving.poll(0):  # what has piled up goes over together (poll is also true at the end)
                    messages.append(pickle.loads(receiving.recv_bytes()))
            except (EOFError, OSError):
                pipe_open = False
            except Exception as exc:  # noqa: BLE001 - a message that cannot be read ends the job in one line
                pipe_open, broken = False, exc
                self.process.kill()
            if messages:
                _mailbox.arrived.emit(self, messages)
                said_it_ended = messages[-1][0] == ENDED
        self.process.join()
        self._exited.set()
        if broken is not None:
            _mailbox.arrived.emit(self, [(ENDED, FAILED, f"its message could not be read: {error_message(broken)}")])
        elif not said_it_ended:
            _mailbox.arrived.emit(self, [(ENDED, FAILED, ended_unexpectedly(self.process.exitcode))])

    def deliver(self, messages: list) -> None:
        """On the GUI thread: hand each message to the callbacks."""
        for kind, *values in messages:
            if self._outcome is not None:
                return  # one end only
            if kind == ITEM:
                self.item.emit(values[0])
            elif kind == HELD:
                self.held.emit()
            elif kind == ENDED:
                self._outcome = (values[0], values[1])
                self._end()

    def _end(self) -> None:
        _running.discard(self)
        if self.connection is not None:
            self.connection.close()  # here on the GUI thread, which alone writes to it
        release_free_memory()
        outcome, message = self._outcome
        if outcome == FAILED:
            self.failed.emit(message)
        else:
            self.finished.emit(outcome)

    def cancel(self) -> None:
        self._paused = False
        self._order(CANCEL)  # a paused child wakes up to it

    def pause(self) -> None:
        """Hold the child after the item it is producing; nothing is lost."""
        self._paused = True
        self._order(PAUSE)

    def resume(self) -> None:
        self._paused = False
        self._order(RESUME)

    @property
    def paused(self) -> bool:
        return self._paused

    def stop(self, timeout_ms: int = int(STOP_GRACE_SECONDS * 1000)) -> bool:
        """Cancel and wait for the child to finish its step and exit (a child that does not is
        killed); the end is reported at once. True if the child ended by itself."""
        self.cancel()
        if self.process is None:
            return True
        by_itself = self._exited.wait(timeout_ms / 1000)
        if not by_itself:
            self.process.kill()
            self._exited.wait()
        if self._outcome is None:  # the window may be closing: report now rather than after the loop ends
            self._outcome = (CANCELLED, "")
            self._end()
        return by_itself
