"""The equation panel: the current step's update rule with its numbers, large enough to point at."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout

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


class EquationPanel(QFrame):
    """The current step's update rule with its numbers, large enough to point at."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title_label = QLabel("Update rule")
        self.title_label.setObjectName("panelTitle")
        self.lines: list[str] = []
        self.body = QLabel("")
        self.body.setObjectName("equation")
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        font = QFont()
        font.setFamilies(EQUATION_FONTS)
        font.setPointSizeF(font.pointSizeF() * 1.35)
        self.body.setFont(font)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 4)
        layout.addWidget(self.title_label)
        layout.addWidget(self.body, 1)

    def show_lines(self, title: str, lines: Sequence[str]) -> None:
        self.title_label.setText(title)
        self.lines = list(lines)
        self.body.setText("<br>".join(equation_html(line) for line in self.lines))

    @property
    def text(self) -> str:
        """The equation as plain text, as `diffusion-stepper inspect` prints it."""
        return "\n".join(self.lines)
