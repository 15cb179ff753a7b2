"""Python's cycle collector, run on the GUI thread only.

The collector normally runs on whichever thread allocates when a threshold is crossed: often a
worker thread, in the middle of sampling or training. If the cycles it frees hold Qt widgets,
their destructors then run on that worker, which Qt does not allow; in the Train tab's tests the
worker hung inside ~QObject waiting for the GIL. So while the app runs, automatic collection is
off and a timer on the GUI thread collects instead, generation by generation, at Python's own
thresholds. Objects without cycles are freed by reference counting as always.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

CHECK_MS = 500  # how often the GUI thread looks whether a collection is due

_collector: GuiThreadGarbageCollector | None = None


class GuiThreadGarbageCollector(QObject):
    def __init__(self, parent: QObject):
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.setInterval(CHECK_MS)
        self.timer.timeout.connect(self.collect_if_due)
        self.timer.start()

    def collect_if_due(self) -> None:
        """What automatic collection would have done by now: the young generation when enough
        objects have been allocated, the older ones when enough young collections have run."""
        counts = gc.get_count()
        for generation in range(3):
            if counts[generation] <= self.thresholds[generation]:
                return
            gc.collect(generation)


def collect_garbage_on_gui_thread() -> GuiThreadGarbageCollector:
    """Install the collector for the running QApplication (once; later calls return it)."""
    global _collector
    if _collector is None:
        _collector = GuiThreadGarbageCollector(QCoreApplication.instance())
    return _collector
