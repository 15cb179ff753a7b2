"""The keyboard shortcuts (F1): every shortcut of the window, menu by menu, in as many columns as
it takes to fit the screen's height, in the equation's serif face (whose x̂ and ε̂ keep their hats
on); on a screen too narrow for the columns the list scrolls inside a box that fits."""

from __future__ import annotations

import html
import math

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QMenu, QScrollArea, QVBoxLayout

from diffusion_stepper.visualizer.widgets.equation import EQUATION_FONTS

MOST_SCREEN_SHARE = 0.75  # the list takes at most this share of the screen's height
MOST_WIDTH_SHARE = 0.95  # and the box this share of its width
MOST_BOX_HEIGHT_SHARE = 0.9  # and this share of its height (the list scrolls inside beyond)
LINE_SPACING = 1.35  # a listed line's height in text sizes (the menu headings' extra space included)


def shortcut_lines(window) -> list[tuple[str, list[tuple[str, str]]]]:
    """(menu title, [(shortcut, what it does)]) for every menu with a shortcut, in menu order."""
    menus = []

    def entries(menu: QMenu) -> list[tuple[str, str]]:
        found = []
        for action in menu.actions():
            if action.menu() is not None:
                found += entries(action.menu())
            elif not action.shortcut().isEmpty():
                keys = ", ".join(sequence.toString() for sequence in action.shortcuts())
                found.append((keys, action.text().replace("&", "")))
        return found

    for action in window.menuBar().actions():
        listed = entries(action.menu()) if action.menu() is not None else []
        if listed:
            menus.append((action.text().replace("&", ""), listed))
    return menus


class ShortcutsDialog(QDialog):
    """Made once and shown again (F1); `text()` is the list as plain text."""

    def __init__(self, window):
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.table = QLabel()
        self.table.setObjectName("shortcuts")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(self.accept)
        self.scroller = QScrollArea()
        self.scroller.setWidget(self.table)
        self.scroller.setWidgetResizable(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scroller, 1)
        layout.addWidget(buttons)
        self._plain = ""

    def show_for(self, window) -> None:
        menus = shortcut_lines(window)
        self._plain = "\n".join(f"{keys:>14}   {what}" for _title, listed in menus for keys, what in listed)
        text_px = max(12, self.fontInfo().pixelSize())
        lines = sum(len(listed) + 1 for _title, listed in menus)  # a heading line per menu
        room = window.screen().availableGeometry().height() * MOST_SCREEN_SHARE
        columns = max(1, math.ceil(lines * text_px * LINE_SPACING / room))
        self.table.setText(_as_columns(menus, columns, text_px))
        available = window.screen().availableGeometry()
        wanted = self.table.sizeHint() + self.sizeHint() - self.scroller.sizeHint()
        self.resize(
            min(wanted.width() + 2 * self.scroller.frameWidth() + 4, int(available.width() * MOST_WIDTH_SHARE)),
            min(wanted.height() + 2 * self.scroller.frameWidth() + 4, int(available.height() * MOST_BOX_HEIGHT_SHARE)),
        )
        self.open()

    def text(self) -> str:
        return self._plain


def _as_columns(menus, columns: int, text_px: int) -> str:
    """The menus as rich text: a table of `columns` columns, each a run of whole menus."""
    per_column = math.ceil(sum(len(listed) + 1 for _title, listed in menus) / columns)
    cells, cell, used = [], [], 0
    for title, listed in menus:
        if used and used + len(listed) + 1 > per_column and len(cells) < columns - 1:
            cells.append(cell)
            cell, used = [], 0
        cell.append(f"<tr><td colspan='2'><b>{html.escape(title)}</b></td></tr>")
        cell += [
            f"<tr><td align='right'>{html.escape(keys)}&nbsp;&nbsp;</td><td>{html.escape(what)}</td></tr>"
            for keys, what in listed
        ]
        used += len(listed) + 1
    cells.append(cell)
    families = ", ".join(f"'{family}'" for family in EQUATION_FONTS)
    tables = "".join(
        f"<td valign='top'><table>{''.join(cell)}</table></td><td>&nbsp;&nbsp;&nbsp;</td>" for cell in cells
    )
    return f'<div style="font-family: {families}; font-size: {text_px}px"><table><tr>{tables}</tr></table></div>'
