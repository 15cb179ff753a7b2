"""Widgets made once and reused: the views whose number of panels follows the runs never delete one.

The Compare view's rows follow the compared runs and the Step view's extras strip follows the
active run's extras. They used to delete their panels and build new ones each time the set
changed; with PySide6 6.10/6.11 that crashed the app (a segmentation fault in shiboken's
`BindingManager::releaseWrapper`, one to two minutes into a lecture's sweep-and-race loop): a
deleted pyqtgraph panel leaves Python wrappers in reference cycles, and when they are freed later
shiboken meets a stale wrapper. A pool keeps every panel it made, shows the ones in use and hides
the rest, so no panel is ever destroyed while the window lives and the widgets stay bounded by the
most ever shown at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from PySide6.QtWidgets import QWidget

W = TypeVar("W", bound=QWidget)


class WidgetPool(Generic[W]):
    """`take(n)`: the first n widgets shown (made and placed by `make`/`place` when there are fewer),
    the others hidden."""

    def __init__(self, make: Callable[[], W], place: Callable[[W], None]):
        self._make, self._place = make, place
        self.widgets: list[W] = []

    def take(self, count: int) -> list[W]:
        while len(self.widgets) < count:
            widget = self._make()
            self._place(widget)
            self.widgets.append(widget)
        for number, widget in enumerate(self.widgets):
            widget.setVisible(number < count)
        return self.widgets[:count]
