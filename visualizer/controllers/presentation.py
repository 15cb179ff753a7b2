"""Presentation mode (F5): full screen, large high-contrast text, and the controls hidden until
the mouse moves, so the pictures get the screen. Every control stays on the keyboard."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QByteArray, QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QWidget

from diffusion_stepper.visualizer.style import NORMAL, PRESENTATION, presentation_text_px, style_sheet

HIDE_CONTROLS_MS = 2500  # the controls hide this long after the mouse stops


class PresentationController(QObject):
    toggled = Signal(bool)

    def __init__(
        self,
        window: QMainWindow,
        docks: Sequence[QDockWidget],
        controls: Sequence[QWidget],
        hidden: Sequence[QWidget] = (),
    ):
        super().__init__(window)
        self._window = window
        self._docks = list(docks)
        self._controls = list(controls)  # shown while the mouse moves (the transport bar)
        self._hidden = list(hidden)  # hidden throughout (the tab bar: Ctrl+1, 2, 3 switch views)
        for control in self._controls:  # showing them must not shrink the pictures: keep their room
            policy = control.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            control.setSizePolicy(policy)
        self._layout_before = QByteArray()
        self.active = False
        self.text_px = 0  # presentation mode's text size, from the screen; 0 outside it
        self.hide_timer = QTimer(self)
        self.hide_timer.setSingleShot(True)
        self.hide_timer.setInterval(HIDE_CONTROLS_MS)
        self.hide_timer.timeout.connect(lambda: self.show_controls(False))

    def set_active(self, on: bool) -> None:
        if on == self.active:
            return
        self.active = on
        window, app = self._window, QApplication.instance()
        if on:
            self._layout_before = window.saveState()
            self.text_px = presentation_text_px(window.screen().geometry().height())
            window.setStyleSheet(style_sheet(PRESENTATION, self.text_px))
            for widget in self._docks + self._hidden:
                widget.hide()
            window.menuBar().hide()
            window.statusBar().hide()
            # the controls show until the mouse rests: drawn once in this style, the room kept for them
            # while hidden is their real size, so they never resize the pictures
            self.show_controls(True)
            app.installEventFilter(self)
            window.showFullScreen()
        else:
            app.removeEventFilter(self)
            self.hide_timer.stop()
            self.text_px = 0
            window.setStyleSheet(style_sheet(NORMAL))
            window.menuBar().show()
            window.statusBar().show()
            for widget in self._controls + self._hidden:
                widget.show()
            window.restoreState(self._layout_before)
            window.showNormal()
        self.toggled.emit(on)

    def show_controls(self, visible: bool) -> None:
        if not self.active:
            return
        for control in self._controls:
            control.setVisible(visible)
        if visible:
            self.hide_timer.start()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if self.active and event.type() == QEvent.Type.MouseMove:
            self.show_controls(True)
        return super().eventFilter(watched, event)
