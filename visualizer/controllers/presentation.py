"""Presentation mode (F5): full screen, large high-contrast text, and the controls hidden until
the mouse moves, so the pictures get the screen. Every control stays on the keyboard.

The controls (the transport bar) float over the bottom of the screen while they show, rather
than keeping a band of their own: the pictures are as large as the screen allows and showing
the controls never resizes them. Leaving restores the window as it was (maximised or not)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QByteArray, QEvent, QObject, QRect, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QBoxLayout, QDockWidget, QMainWindow, QWidget

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
        self._floating: list[tuple[QWidget, QBoxLayout, int]] = []  # (control, its layout, its place there)
        self._layout_before = QByteArray()
        self._window_state_before = Qt.WindowState.WindowNoState
        self._geometry_before = QRect()
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
            self._window_state_before = window.windowState()
            self._geometry_before = window.normalGeometry()
            self.text_px = presentation_text_px(window.screen().geometry().height())
            window.setStyleSheet(style_sheet(PRESENTATION, self.text_px))
            for widget in self._docks + self._hidden:
                widget.hide()
            window.menuBar().hide()
            window.statusBar().hide()
            self._float_controls()
            self.show_controls(True)  # they show until the mouse rests
            app.installEventFilter(self)
            window.showFullScreen()
        else:
            app.removeEventFilter(self)
            self.hide_timer.stop()
            self.text_px = 0
            window.setStyleSheet(style_sheet(NORMAL))
            window.menuBar().show()
            window.statusBar().show()
            self._dock_controls()
            for widget in self._controls + self._hidden:
                widget.show()
            # the window's size first: the docks' widths are restored into it
            if self._window_state_before & Qt.WindowState.WindowMaximized:
                window.showMaximized()
            else:
                window.showNormal()
                if self._geometry_before.isValid():
                    window.setGeometry(self._geometry_before)
            window.restoreState(self._layout_before)
        self.toggled.emit(on)

    def _float_controls(self) -> None:
        """Take the controls out of their layouts, to float over the bottom of their holder."""
        for control in self._controls:
            holder = control.parentWidget()
            layout = holder.layout()
            self._floating.append((control, layout, layout.indexOf(control)))
            layout.removeWidget(control)
            holder.installEventFilter(self)
            self._place(control)

    def _dock_controls(self) -> None:
        """Put the controls back in their layouts, where they were."""
        for control, layout, index in self._floating:
            control.parentWidget().removeEventFilter(self)
            layout.insertWidget(index, control)
        self._floating = []

    @staticmethod
    def _place(control: QWidget) -> None:
        holder = control.parentWidget()
        height = control.sizeHint().height()
        control.setGeometry(0, holder.height() - height, holder.width(), height)
        control.raise_()

    def show_controls(self, visible: bool) -> None:
        if not self.active:
            return
        for control in self._controls:
            control.setVisible(visible)
            if visible:
                self._place(control)  # its size in this style, at the bottom as it is now
        if visible:
            self.hide_timer.start()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if self.active and event.type() == QEvent.Type.MouseMove:
            self.show_controls(True)
        elif event.type() == QEvent.Type.Resize and any(watched is c.parentWidget() for c, _, _ in self._floating):
            for control, _, _ in self._floating:
                self._place(control)
        return super().eventFilter(watched, event)
