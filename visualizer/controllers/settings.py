"""What the app remembers between launches: window layout, the parts shown, playback, zoom, the
model, and the folder files last went to (QSettings).

The window's geometry, dock layout and zoom are asked of the window; everything else is kept by
its owner (the Step view, the transport bar, the Sample dock), which says what it keeps with
`settings() -> dict`, by the settings file's keys, and puts it back with `restore(dict)`: no one
here touches another object's widgets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QSettings

from diffusion_stepper.visualizer.widgets.panels import FIT, ZOOM_CHOICES

DEFAULT_SIZE = (1400, 900)  # the first launch's window, made smaller where the screen is


def fit_on_screen(window) -> None:
    """Shrink and move the window so that all of it is on its screen (a laptop's 1366x768 after a
    full-HD monitor: the timeline and the status bar must not fall off the bottom)."""
    screen = window.screen().availableGeometry()
    frame = window.frameGeometry().size() - window.size()  # the title bar and borders, where there are any
    width = min(window.width(), screen.width() - frame.width())
    height = min(window.height(), screen.height() - frame.height())
    if (width, height) != (window.width(), window.height()):
        window.resize(width, height)
    left = min(max(window.x(), screen.left()), screen.right() - window.frameGeometry().width() + 1)
    top = min(max(window.y(), screen.top()), screen.bottom() - window.frameGeometry().height() + 1)
    window.move(left, top)


def default_settings() -> QSettings:
    return QSettings("diffusion-stepper", "diffusion-stepper")


def as_bool(value) -> bool:
    """QSettings gives back "true"/"false" strings from INI files."""
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)


def stored_as(default, value):
    """A value read back from the store, as the type of the owner's own (its default)."""
    if isinstance(default, bool):
        return as_bool(value)
    if isinstance(default, (int, float, str)):
        return type(default)(value)
    return value  # a QByteArray comes back as one; None: the owner checks what it gets


class Remembered(Protocol):
    def settings(self) -> dict: ...

    def restore(self, settings: dict) -> None: ...


class SettingsController(QObject):
    def __init__(self, store: QSettings, remembered: Sequence[Remembered] = (), parent: QObject | None = None):
        super().__init__(parent)
        self.store = store
        self.remembered = list(remembered)  # what keeps its own settings, besides the window

    def last_folder(self) -> str:
        return str(self.store.value("last_folder", str(Path.home())))

    def remember_folder(self, path: str | Path) -> None:
        """The folder of a file just opened or written: the next file dialog starts there."""
        self.store.setValue("last_folder", str(Path(path).parent))

    def restore(self, window) -> None:
        """Put the window back as it was when it last closed."""
        store = self.store
        geometry = store.value("geometry")
        if geometry is None or not window.restoreGeometry(geometry):
            window.resize(*DEFAULT_SIZE)
        fit_on_screen(window)
        state = store.value("window_state")
        if state is not None:
            window.restoreState(state)
        for owner in self.remembered:
            defaults = owner.settings()  # what it has now says which keys are its and their types
            owner.restore({key: stored_as(defaults[key], store.value(key)) for key in defaults if store.contains(key)})
        zoom = int(store.value("zoom", FIT))
        if zoom in ZOOM_CHOICES and zoom != FIT:
            window.set_zoom(zoom)

    def save(self, window) -> None:
        store = self.store
        store.setValue("geometry", window.saveGeometry())
        if not window.presentation.active:  # the layout to come back to, not the full-screen one
            store.setValue("window_state", window.saveState())
        for owner in self.remembered:
            for key, value in owner.settings().items():
                if value is not None:  # (no model chosen: the last one stays)
                    store.setValue(key, value)
        store.setValue("zoom", window.zoom)
        store.sync()
