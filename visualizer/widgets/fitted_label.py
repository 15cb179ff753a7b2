"""A one-line caption that shows as much as its width holds, cutting the least important part first."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy


class FittedLabel(QLabel):
    """A label given several forms of its text, longest first: it shows the first form that fits
    its width, and when none does the last one cut at its end with "…". `keep` follows the form
    and is never cut while it fits alone (the frame's step and ᾱ_t after a long run name). Like
    `shrinkable`, it never makes its panel or the window wider; the whole text is its tooltip."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, self.sizePolicy().verticalPolicy())
        self.setMinimumWidth(1)
        self.forms: tuple[str, ...] = ()
        self.keep = ""
        self.set_forms([text])

    def set_forms(self, forms: Sequence[str], keep: str = "") -> None:
        self.forms, self.keep = tuple(forms) or ("",), keep
        self.setToolTip(self.forms[0] + keep)
        self._fit()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        metrics, room = self.fontMetrics(), self.contentsRect().width()
        for form in self.forms:
            if metrics.horizontalAdvance(form + self.keep) <= room:
                super().setText(form + self.keep)
                return
        if metrics.horizontalAdvance(self.keep) <= room:  # the form gives way, `keep` stays whole
            left = room - metrics.horizontalAdvance(self.keep)
            super().setText(metrics.elidedText(self.forms[-1], Qt.TextElideMode.ElideRight, left) + self.keep)
        else:
            super().setText(metrics.elidedText(self.forms[-1] + self.keep, Qt.TextElideMode.ElideRight, room))

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name: one form, cut at its end if need be
        self.set_forms([text])

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt's name: a new font (presentation mode) fits again
        super().changeEvent(event)
        if event.type() in (event.Type.FontChange, event.Type.StyleChange) and getattr(self, "forms", None):
            self._fit()
