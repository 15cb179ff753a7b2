"""How the app tells the user things: news in the status bar, and errors in a dialog as well."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QMainWindow, QMessageBox

NEWS_MS = 8000  # how long news stays in the status bar
ERROR_MS = 15000


class Messages(QObject):
    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self._window = window
        self.last_error: str | None = None
        self.error_box: QMessageBox | None = None

    def show(self, text: str, timeout_ms: int = NEWS_MS) -> None:
        """News in the status bar; 0 keeps it until the next message."""
        self._window.statusBar().showMessage(text, timeout_ms)

    def error(self, text: str) -> None:
        """The status bar and a dialog say what went wrong; nothing else changes. The dialog does
        not block: the window keeps the keyboard, so the lecturer's next shortcut still works."""
        self.last_error = text
        self.show(text, ERROR_MS)
        if self.error_box is None:  # one box, reused: every error would otherwise leave a dialog behind
            self.error_box = QMessageBox(
                QMessageBox.Icon.Warning, "diffusion-stepper", text, QMessageBox.StandardButton.Ok, self._window
            )
            self.error_box.setWindowModality(Qt.WindowModality.NonModal)
            self.error_box.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
            self.error_box.finished.connect(self._window.activateWindow)  # keys go back to the window's shortcuts
        self.error_box.setText(text)
        self.error_box.show()
