"""The equation panel: the current step's update rule with its numbers, large enough to point at."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout

# Textbook-like serif faces that draw the hat of x̂ on the x (DejaVu Sans, the usual default on
# Linux, drops it); the first one installed wins.
EQUATION_FONTS = [
    "DejaVu Serif",
    "Cambria Math",
    "Cambria",
    "STIX Two Text",
    "Times New Roman",
    "Liberation Serif",
    "serif",
]
_SUBSCRIPT = re.compile(r"_([A-Za-z0-9]+′?)")


def equation_html(line: str) -> str:
    """core.diffusion.equations' plain text as rich text, with real subscripts for x_t, ᾱ_t′ and x̂₀."""
    text = html.escape(line).replace("₀", "_0").replace("₁", "_1")
    return _SUBSCRIPT.sub(r"<sub>\1</sub>", text).replace("  ", "&nbsp;&nbsp;")


DESK_PX = 17  # the equation's text at the desk; presentation mode sets a larger size
SMALLEST_SHARE = 0.75  # it shrinks to fit its panel's width down to this share of that size, then wraps


class EquationPanel(QFrame):
    """The current step's update rule with its numbers, large enough to point at.

    The text is as large as asked (`set_text_size`) unless its longest line would not fit the
    panel's width: then it shrinks to fit, down to three quarters of that size, and wraps beyond,
    so the whole update is always in view and never pushes the window wider.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title_label = shrinkable(QLabel("Update rule"))
        self.title_label.setObjectName("panelTitle")
        self.lines: list[str] = []
        self.text_px = DESK_PX
        self.shown_px = 0  # the size the text is drawn at now
        self.body = shrinkable(QLabel(""))
        self.body.setObjectName("equation")
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.body.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 4)
        layout.addWidget(self.title_label)
        layout.addWidget(self.body, 1)
        self._fit()

    def show_lines(self, title: str, lines: Sequence[str]) -> None:
        self.title_label.setText(title)
        self.lines = list(lines)
        self.body.setText("<br>".join(equation_html(line) for line in self.lines))
        self._fit()

    def set_text_size(self, px: int) -> None:
        self.text_px = px
        self._fit()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(520, 180)  # the label's own hint is ignored (it shrinks to fit), so say what suits it

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        font = QFont()
        font.setFamilies(EQUATION_FONTS)
        font.setPixelSize(self.text_px)
        widest = max((QFontMetrics(font).horizontalAdvance(line) for line in self.lines), default=0)
        available = self.body.width() - 4
        smallest = round(self.text_px * SMALLEST_SHARE)
        px = self.text_px if widest <= available else max(smallest, int(self.text_px * available / widest))
        if px != self.shown_px:
            self.shown_px = px
            families = ", ".join(f'"{family}"' for family in EQUATION_FONTS[:-1]) + ", serif"
            # the label's own stylesheet: it outranks presentation mode's size for every label
            self.body.setStyleSheet(f"font-size: {px}px; font-family: {families};")

    @property
    def text(self) -> str:
        """The equation as plain text, as `diffusion-stepper inspect` prints it."""
        return "\n".join(self.lines)


def shrinkable(label: QLabel) -> QLabel:
    """A label that may be narrower than its text (the end is cut), so that a long caption never
    makes its panel, or the window, wider."""
    label.setSizePolicy(QSizePolicy.Policy.Ignored, label.sizePolicy().verticalPolicy())
    label.setMinimumWidth(1)
    return label
