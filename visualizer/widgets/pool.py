"""Widgets made once and reused: the views whose number of panels follows the runs never delete one.

The Compare view's rows follow the compared runs and the Step view's extras strip follows the
active run's extras. They used to delete their panels and build new ones each time the set
changed, and the app died with a segmentation fault in shiboken (creating a pyqtgraph view, or
`BindingManager::releaseWrapper` deleting one) one to two minutes into a lecture's sweep-and-race
loop, with PySide6 6.9 and 6.11 alike (bench/RESULTS.md). A pool keeps every panel it made, shows
the ones in use and hides the rest, so no panel is destroyed while the window lives and the widgets
stay bounded by the most ever shown at once. The app holds to that everywhere: no Qt object is
created or deleted per run or per job.
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
