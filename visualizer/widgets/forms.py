"""Small helpers the docks and the Train tab build their forms with."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLayout,
    QPushButton,
    QSpinBox,
    QWidget,
)


def spin_box(low: int, high: int, value: int | None = None, tooltip: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    if value is not None:
        spin.setValue(value)
    spin.setToolTip(tooltip)
    return spin


def float_box(low: float, high: float, value: float, step: float, tooltip: str = "") -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setValue(value)
    spin.setToolTip(tooltip)
    return spin


def combo_box(labels: dict[str, str]) -> QComboBox:
    """A choice among `labels`' keys, each shown by its label (`currentData()` is the key)."""
    combo = QComboBox()
    for key, label in labels.items():
        combo.addItem(label, key)
    return combo


def row(*items: QWidget | QLayout, stretch_first: bool = True) -> QHBoxLayout:
    """Widgets side by side, the first taking the spare width."""
    layout = QHBoxLayout()
    for index, item in enumerate(items):
        stretch = 1 if index == 0 and stretch_first else 0
        if isinstance(item, QLayout):
            layout.addLayout(item, stretch)
        else:
            layout.addWidget(item, stretch)
    return layout


def button(text: str, slot: Callable, tooltip: str = "") -> QPushButton:
    widget = QPushButton(text)
    widget.setToolTip(tooltip)
    widget.clicked.connect(slot)
    return widget


def show_rows(form: QFormLayout, visibility: dict[QWidget | QLayout, bool]) -> None:
    """Show or hide form rows by their field: a widget, a row layout, or a widget inside one."""
    for field, visible in visibility.items():
        form.setRowVisible(_row_of(form, field), visible)


def _row_of(form: QFormLayout, field: QWidget | QLayout) -> int:
    for index in range(form.rowCount()):
        item = form.itemAt(index, QFormLayout.ItemRole.FieldRole)
        if item is None:
            continue
        if item.widget() is field or item.layout() is field:
            return index
        layout = item.layout()
        if isinstance(field, QWidget) and layout is not None and _contains(layout, field):
            return index
    raise LookupError(f"{field} is not in the form")


def _contains(layout: QLayout, widget: QWidget) -> bool:
    for index in range(layout.count()):
        item = layout.itemAt(index)
        if item.widget() is widget or (item.layout() is not None and _contains(item.layout(), widget)):
            return True
    return False
