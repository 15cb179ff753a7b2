"""The image panel: one image field of a batch as a grid, at a nearest-neighbour integer zoom.

Each panel owns one pyqtgraph ImageItem, created once and updated with setImage(autoLevels=False).
The pixels are made by core.io.export, so what the window shows is what an export writes.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout

from diffusion_stepper.core.io.export import BACKGROUND, PANEL_TITLES, display_range, grid_columns, tile, to_uint8

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

FIT = 0  # zoom setting: the largest integer factor that fits the panel
ZOOM_CHOICES = (FIT, 1, 2, 3, 4, 6, 8, 12, 16)


def panel_title(name: str) -> str:
    return {
        "x_t": "x_t",
        "x0_hat": "x̂₀  clean estimate",
        "eps_hat": "ε̂  noise estimate",
        "v_hat": "v̂  velocity estimate",
    }.get(name, PANEL_TITLES.get(name, name))


def render_grid(
    images: torch.Tensor, name: str, value_range: tuple[float, float], labels: torch.Tensor | None
) -> np.ndarray:
    """The uint8 [H, W, 3] grid a panel shows: the same pixels core.io.export writes at scale 1."""
    low, high = display_range(name, value_range)
    return tile(to_uint8(images, low, high), grid_columns(images.shape[0], labels))


class _ResizeAwareView(pg.GraphicsView):
    def __init__(self, on_resize):
        self._on_resize = None  # pyqtgraph resizes once inside its own __init__
        super().__init__(background=pg.mkColor(*BACKGROUND))
        self._on_resize = on_resize

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if self._on_resize is not None:
            self._on_resize()


OVERLAY_RGBA = (255, 60, 60, 80)  # a light red tint: the region being made anew


class ImagePanel(QFrame):
    """One image field of one frame: a title, the grid, and the value range underneath."""

    def __init__(self, name: str, title: str | None = None, parent=None):
        super().__init__(parent)
        self.name = name
        self.zoom = FIT
        self.factor = 1  # the integer zoom in effect
        self.grid: np.ndarray | None = None
        self.pending = False
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title_label = QLabel(title or panel_title(name))
        self.title_label.setObjectName("panelTitle")
        self.range_label = QLabel("")
        self.range_label.setObjectName("panelRange")
        self.view = _ResizeAwareView(self._apply_zoom)
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.view.setMinimumSize(64, 40)
        self.view_box = pg.ViewBox(enableMouse=False, enableMenu=False, invertY=True, defaultPadding=0)
        self.view.setCentralItem(self.view_box)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        self.overlay_item = pg.ImageItem(axisOrder="row-major")  # e.g. the inpainting mask, tinted
        self.overlay_item.setVisible(False)
        self.view_box.addItem(self.overlay_item)
        self.pending_text = pg.TextItem("pending…", color=(200, 200, 200), anchor=(0.5, 0.5))
        self.pending_text.setVisible(False)
        self.view_box.addItem(self.pending_text, ignoreBounds=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(1)
        layout.addWidget(self.title_label)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.range_label)

    def set_title(self, text: str) -> None:
        self.title_label.setText(text)

    def show_images(
        self,
        images: torch.Tensor,
        value_range: tuple[float, float],
        labels: torch.Tensor | None = None,
        name: str | None = None,
    ) -> None:
        """Show a batch [N, C, H, W] as a grid mapped from the field's display range to black..white."""
        name = name or self.name
        grid = render_grid(images, name, value_range, labels)
        shape_changed = self.grid is None or self.grid.shape != grid.shape
        self.grid = grid
        self.pending = False
        self.image_item.setImage(grid, autoLevels=False, levels=(0, 255))
        self.image_item.setOpacity(1.0)
        self.pending_text.setVisible(False)
        low, high = display_range(name, value_range)
        values = images.float()
        self.range_label.setText(
            f"values {values.min().item():+.2f} … {values.max().item():+.2f}   ·   black → white = [{low:g}, {high:g}]"
        )
        if shape_changed:
            self._apply_zoom()

    def set_overlay(self, mask: torch.Tensor | None, labels: torch.Tensor | None = None) -> None:
        """Tint where `mask` ([N, C, H, W], 1 = marked) is set, over the grid; None removes it."""
        if mask is None:
            self.overlay_item.setVisible(False)
            return
        marked = render_grid(mask, "mask", (0.0, 1.0), labels)[..., 0] > 127
        rgba = np.zeros(marked.shape + (4,), dtype=np.uint8)
        rgba[marked] = OVERLAY_RGBA
        self.overlay_item.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.overlay_item.setVisible(True)

    def show_pending(self) -> None:
        """The frame at this position is not produced yet: dim the last picture and say so."""
        self.pending = True
        self.image_item.setOpacity(0.25)
        self.pending_text.setVisible(True)
        if self.grid is not None:
            self.pending_text.setPos(self.grid.shape[1] / 2, self.grid.shape[0] / 2)
        self.range_label.setText("pending: the worker has not produced this frame yet")

    def set_zoom(self, zoom: int) -> None:
        self.zoom = int(zoom)
        self._apply_zoom()

    def _apply_zoom(self) -> None:
        """Show the grid at an integer number of screen pixels per image pixel, centred."""
        if self.grid is None:
            return
        height, width = self.grid.shape[:2]
        view_width, view_height = max(1, self.view.width()), max(1, self.view.height())
        fit = max(1, min(view_width // width, view_height // height))
        self.factor = self.zoom or fit
        half_width, half_height = view_width / self.factor / 2, view_height / self.factor / 2
        self.view_box.setRange(
            xRange=(width / 2 - half_width, width / 2 + half_width),
            yRange=(height / 2 - half_height, height / 2 + half_height),
            padding=0,
        )
