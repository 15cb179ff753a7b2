"""What the app remembers between launches: window layout, the parts shown, playback, zoom, the
model, and the folder files last went to (QSettings)."""

from __future__ import annotations

from pathlib import Path

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


class SettingsController(QObject):
    def __init__(self, store: QSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.store = store

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
        window.step_view.restore_layout(store.value("step_layout"))
        for key in window.step_view.parts:
            window.set_part_visible(key, as_bool(store.value(f"panels/{key}", True)))
        window.session.set_fps(float(store.value("fps", window.session.fps)))
        window.session.set_loop(as_bool(store.value("loop", window.session.loop)))
        zoom = int(store.value("zoom", FIT))
        if zoom in ZOOM_CHOICES and zoom != FIT:
            window.set_zoom(zoom)
        model = store.value("model")
        if model:
            window.sample_dock.select_model(str(model))

    def save(self, window) -> None:
        store = self.store
        store.setValue("geometry", window.saveGeometry())
        if not window.presentation.active:  # the layout to come back to, not the full-screen one
            store.setValue("window_state", window.saveState())
        store.setValue("step_layout", window.step_view.save_layout())
        for key, visible in window.step_view.parts.items():
            store.setValue(f"panels/{key}", visible)
        store.setValue("fps", window.session.fps)
        store.setValue("loop", window.session.loop)
        store.setValue("zoom", window.zoom)
        if window.sample_dock.model_key:
            store.setValue("model", window.sample_dock.model_key)
        store.sync()
