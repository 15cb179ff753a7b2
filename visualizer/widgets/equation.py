"""The equation panel: the current step's update rule with its numbers, large enough to point at."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QTextDocument
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QVBoxLayout

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
    panel's width: then it shrinks to fit, down to three quarters of that size, and wraps beyond;
    it never pushes the window wider, and where the panel is shorter than the rule it scrolls.

    `plan(...)` fixes the size for a whole run: the text size that fits its widest step, and the
    height its longest step needs (`needed_height`), so that stepping through the run neither
    resizes the text nor moves the pictures above (the Step view gives the panel that height).
    """

    needed_height_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title_label = shrinkable(QLabel("Update rule"))
        self.title_label.setObjectName("panelTitle")
        self.lines: list[str] = []
        self.text_px = DESK_PX
        self.shown_px = 0  # the size the text is drawn at now
        self.planned_lines: list[list[str]] = [[]]  # every step's lines of the run shown (plan)
        self.needed_height = 0  # the panel's height that shows the longest planned step whole
        self._plan_version = 0
        self._measures: dict[tuple, int] = {}  # the plan's widest line and height, per size
        self._document = QTextDocument(self)  # measures a step's height as the label lays it out
        self._document.setDocumentMargin(0)
        self.body = shrinkable(QLabel(""))
        self.body.setObjectName("equation")
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.body.setWordWrap(True)
        # where the panel is shorter than the rule (the desk, a lecturer's split), it scrolls: every
        # line stays reachable; presentation mode sizes the panel to show it whole (StepView)
        self.scroller = QScrollArea()
        self.scroller.setWidget(self.body)
        self.scroller.setWidgetResizable(True)
        self.scroller.setFrameShape(QFrame.Shape.NoFrame)
        self.scroller.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 4)
        layout.addWidget(self.title_label)
        layout.addWidget(self.scroller, 1)
        self._fit()

    def show_lines(self, title: str, lines: Sequence[str]) -> None:
        self.title_label.setText(title)
        self.lines = list(lines)
        self.body.setText("<br>".join(equation_html(line) for line in self.lines))
        self._fit()

    def plan(self, steps: Iterable[Sequence[str]]) -> None:
        """Size the text and the height for these steps' lines (a run's, all of them), not per step."""
        self.planned_lines = [list(lines) for lines in steps] or [[]]
        self._plan_version += 1
        self._measures.clear()
        self._fit()

    def set_text_size(self, px: int) -> None:
        self.text_px = px
        self._fit()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(520, 180)  # the label's own hint is ignored (it shrinks to fit), so say what suits it

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def _font(self, px: int) -> QFont:
        font = QFont()
        font.setFamilies(EQUATION_FONTS)
        font.setPixelSize(px)
        return font

    def _fit(self) -> None:
        """The text size that fits the widest line of the plan (and of the step shown, which
        the plan may not hold yet), then the height the longest step needs at that size."""
        available = self.body.width() - 4
        widest = max(self._widest(self.text_px), self._widest_of(self.lines, self.text_px))
        smallest = round(self.text_px * SMALLEST_SHARE)
        px = self.text_px if widest <= available else max(smallest, int(self.text_px * available / widest))
        if px != self.shown_px:
            self.shown_px = px
            families = ", ".join(f'"{family}"' for family in EQUATION_FONTS[:-1]) + ", serif"
            # the label's own stylesheet: it outranks presentation mode's size for every label
            self.body.setStyleSheet(f"font-size: {px}px; font-family: {families};")
        needed = max(self._plan_height(available), self._panel_height([self.lines], available))
        if needed != self.needed_height:
            self.needed_height = needed
            self.needed_height_changed.emit()

    def unwrapped_width(self, shrunk: bool = False) -> int:
        """The panel's width that shows every planned line unwrapped at the size asked (or, with
        `shrunk`, at the smallest it shrinks to)."""
        px = round(self.text_px * SMALLEST_SHARE) if shrunk else self.text_px
        widest = max(self._widest(px), self._widest_of(self.lines, px))
        margins = self.layout().contentsMargins()
        return widest + margins.left() + margins.right() + 2 * self.frameWidth() + 8

    # The plan's measures are cached per plan and size: the step shown changes each frame, the
    # plan only when the run does (or grows while it samples).

    def _widest(self, px: int) -> int:
        key = ("widest", self._plan_version, px)
        if key not in self._measures:
            self._measures[key] = self._widest_of([line for lines in self.planned_lines for line in lines], px)
        return self._measures[key]

    def _plan_height(self, width: int) -> int:
        key = ("height", self._plan_version, self.shown_px, width)
        if key not in self._measures:
            self._measures[key] = self._panel_height(_distinct_shapes(self.planned_lines), width)
        return self._measures[key]

    def _widest_of(self, lines: list[str], px: int) -> int:
        metrics = QFontMetrics(self._font(px))
        return max((metrics.horizontalAdvance(line) for line in lines), default=0)

    def _panel_height(self, steps: list[list[str]], width: int) -> int:
        """The panel's height that shows each of these steps whole at `width`."""
        self._document.setDefaultFont(self._font(self.shown_px))
        self._document.setTextWidth(max(1, width))
        body = 0
        for lines in steps:
            self._document.setHtml("<br>".join(equation_html(line) for line in lines))
            body = max(body, math.ceil(self._document.size().height()))
        margins = self.layout().contentsMargins()
        title = self.title_label.sizeHint().height() + self.layout().spacing()
        frame = 2 * self.frameWidth()
        return title + body + margins.top() + margins.bottom() + frame + 4  # 4: the label's own slack

    @property
    def text(self) -> str:
        """The equation as plain text, as `diffusion-stepper inspect` prints it."""
        return "\n".join(self.lines)


def _distinct_shapes(steps: list[list[str]]) -> list[list[str]]:
    """One step per shape (its lines' lengths): a run's steps differ in their numbers, whose digits
    are all as wide, so measuring one step of each shape finds the tallest."""
    shapes = {}
    for lines in steps:
        shapes.setdefault(tuple(len(line) for line in lines), lines)
    return list(shapes.values())


def shrinkable(label: QLabel) -> QLabel:
    """A label that may be narrower than its text (the end is cut), so that a long caption never
    makes its panel, or the window, wider."""
    label.setSizePolicy(QSizePolicy.Policy.Ignored, label.sizePolicy().verticalPolicy())
    label.setMinimumWidth(1)
    return label
