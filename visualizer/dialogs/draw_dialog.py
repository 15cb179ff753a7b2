"""Draw a 2D distribution with the mouse: each drag leaves a trail of points, each the centre of a
small Gaussian (core.toy2d.drawn). Saved as a small JSON file the lab and the CLI both read."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from diffusion_stepper.core.limits import DRAWN_POINTS
from diffusion_stepper.core.toy2d.datasets import VIEW_EXTENT

MIN_SPACING = 0.06  # plane units between the points a drag leaves


class DrawCanvas(pg.PlotWidget):
    """The plane [-3.5, 3.5]², where pressing and dragging the left button draws strokes."""

    def __init__(self, on_change):
        super().__init__()
        self.setAspectLocked(True)
        self.setRange(xRange=(-VIEW_EXTENT, VIEW_EXTENT), yRange=(-VIEW_EXTENT, VIEW_EXTENT), padding=0)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.showGrid(x=True, y=True, alpha=0.2)
        self.scatter = pg.ScatterPlotItem(size=7, brush=pg.mkBrush(90, 200, 255), pen=None)
        self.addItem(self.scatter)
        self.strokes: list[list[tuple[float, float]]] = []
        self._drawing = False
        self._on_change = on_change

    @property
    def points(self) -> list[tuple[float, float]]:
        return [point for stroke in self.strokes for point in stroke]

    def add_point(self, x: float, y: float, new_stroke: bool = False) -> None:
        """Extend the current stroke (or start one) with a point inside the plane, spaced from the last."""
        if not (abs(x) <= VIEW_EXTENT and abs(y) <= VIEW_EXTENT) or len(self.points) >= DRAWN_POINTS[1]:
            return
        if new_stroke or not self.strokes:
            self.strokes.append([])
        stroke = self.strokes[-1]
        if stroke and np.hypot(x - stroke[-1][0], y - stroke[-1][1]) < MIN_SPACING:
            return
        stroke.append((float(x), float(y)))
        self._redraw()

    def undo_stroke(self) -> None:
        if self.strokes:
            self.strokes.pop()
            self._redraw()

    def clear(self) -> None:  # noqa: D102 - pyqtgraph's clear would remove the scatter item too
        self.strokes = []
        self._redraw()

    def _redraw(self) -> None:
        points = self.points
        self.scatter.setData([p[0] for p in points], [p[1] for p in points])
        self._on_change()

    def _plane(self, position) -> QPointF:
        return self.getPlotItem().vb.mapSceneToView(self.mapToScene(position.toPoint()))

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.LeftButton:
            self._drawing = True
            point = self._plane(event.position())
            self.add_point(point.x(), point.y(), new_stroke=True)
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._drawing:
            point = self._plane(event.position())
            self.add_point(point.x(), point.y())
        event.accept()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._drawing = False
        event.accept()


class DrawDialog(QDialog):
    """Draw, then Save…: the drawing becomes the 2D lab's data."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Draw a distribution")
        self.resize(640, 700)
        self.count = QLabel("")
        self.canvas = DrawCanvas(self._update)
        undo = QPushButton("Undo stroke")
        undo.clicked.connect(self.canvas.undo_stroke)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.canvas.clear)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        tools = QHBoxLayout()
        for widget in (QLabel("Press and drag to draw; each stroke is a band of data."), undo, clear):
            tools.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.addLayout(tools)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.count)
        layout.addWidget(self.buttons)
        self._update()

    def points(self) -> torch.Tensor:
        return torch.tensor(self.canvas.points, dtype=torch.float32).reshape(-1, 2)

    def _update(self) -> None:
        count = len(self.canvas.points)
        enough = count >= DRAWN_POINTS[0]
        self.count.setText(f"{count:,} points" + ("" if enough else f" (draw at least {DRAWN_POINTS[0]})"))
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(enough)
