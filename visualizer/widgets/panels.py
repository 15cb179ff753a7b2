"""The image panel: one image field of a batch as a grid, at a nearest-neighbour integer zoom.

Each panel owns one pyqtgraph ImageItem, created once and updated with setImage(autoLevels=False).
The pixels are made by core.formats.pictures, so what the window shows is what an export writes.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QVBoxLayout

from diffusion_stepper.core.diffusion.labels import EXTRA_TITLES, field_title
from diffusion_stepper.core.formats.layout import GRID_PADDING, GridFit, best_grid, class_columns, screen_scale
from diffusion_stepper.core.formats.pictures import BACKGROUND, display_range, grid_columns, tile, to_uint8
from diffusion_stepper.core.run_meta import RunMeta
from diffusion_stepper.visualizer.widgets.equation import shrinkable
from diffusion_stepper.visualizer.widgets.fitted_label import FittedLabel

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

FIT = 0  # zoom setting: as large as fits the panel
ZOOM_CHOICES = (FIT, 1, 2, 3, 4, 6, 8, 12, 16)


def panel_title(name: str, meta: RunMeta | None = None) -> str:
    """A panel's title on screen: the field's name for this run (x̂₁ for flow, "the noise added"
    where a run shows the true ε, ...), or the extra's; without a run, the estimates' names."""
    return field_title(meta or RunMeta.of({}), name) or EXTRA_TITLES.get(name, name)


def render_grid(
    images: torch.Tensor,
    name: str,
    value_range: tuple[float, float],
    labels: torch.Tensor | None,
    columns: int | None = None,
) -> np.ndarray:
    """The uint8 [H, W, 3] grid a panel shows in `columns` columns (default: the exports' choice):
    the same pixels core.formats.pictures writes at scale 1."""
    low, high = display_range(name, value_range)
    return tile(to_uint8(images, low, high), columns or grid_columns(images.shape[0], labels))


class _PanelTitle(QLabel):
    """A panel's title. Wrapped beside the picture, it takes the height the panel has and is cut
    there: it never asks for more (a wrapped label otherwise makes its panel, and the strip of
    panels it sits in, as tall as all its lines)."""

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt's name
        return False


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
LABEL_PADDING_PX = 12  # pyqtgraph's text items draw a few pixels of margin around their text
TITLE_BESIDE_EMS = 6  # a title beside its picture gets a column six times its text size wide


class ImagePanel(QFrame):
    """One image field of one frame: a title, the batch as a grid, and the value range underneath.

    The grid takes the column count that shows each image largest in the panel's current shape
    (core.formats.layout), and is laid out again when the panel is resized; at Fit zoom it fills the
    panel (see `screen_scale`), at a chosen zoom it shows that many screen pixels per pixel. The
    title goes above the picture, or beside it where that shows the picture larger (a wide, short
    panel: a row of ten digits).
    """

    def __init__(self, name: str, title: str | None = None, parent=None):
        super().__init__(parent)
        self.name = name
        self.zoom = FIT
        self.factor = 1.0  # screen pixels per image pixel, as shown now
        self.columns = 1  # the grid's columns, as shown now
        self.grid: np.ndarray | None = None
        self.tiles: np.ndarray | None = None  # the batch as [N, H, W, 3] uint8, before tiling
        self.labels: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None  # the overlay's mask, re-tiled with the grid
        self.column_labels: list[pg.TextItem] = []  # the class of each column, when columns are classes
        self.pending = False
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title_label = shrinkable(_PanelTitle(title or panel_title(name)))
        self.title_label.setObjectName("panelTitle")
        self.range_label = FittedLabel("")
        self.range_label.setObjectName("panelRange")
        self.view = _ResizeAwareView(self._lay_out)
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
        # The title sits above the picture, or beside it (`set_title_beside`) where a wide, short
        # panel (a row of ten digits) shows its pictures larger without a line of text above them.
        self.title_beside = 0  # the title column's width when beside; 0: above
        self.title_shown = True  # False: the title is shown elsewhere (the Compare view's rows)
        self.title_may_go_beside = True  # False: always above (a long title that must read whole)
        self.range_shown = True
        self.head = QGridLayout()
        self.head.setSpacing(1)
        self.head.addWidget(self.title_label, 0, 1)
        self.head.addWidget(self.view, 1, 1)
        self.head.setRowStretch(1, 1)
        self.head.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(1)
        layout.addLayout(self.head, 1)
        layout.addWidget(self.range_label)

    def set_title(self, text: str) -> None:
        self.title_label.setText(text)

    def fit_in(self, width: float, height: float) -> float:
        """How large (screen pixels per image pixel) a panel of this size would show the batch,
        with its title wherever shows it larger; 0 before a batch."""
        return max(scale for scale, _ in self._fits(width, height)) if self.tiles is not None else 0.0

    def _fits(self, width: float, height: float) -> list[tuple[float, int]]:
        """(scale, title column width) with the title above (0) and beside."""
        may_go_beside = self.title_shown and self.title_may_go_beside
        beside = TITLE_BESIDE_EMS * self.title_label.fontInfo().pixelSize() if may_go_beside else 0
        fits = []
        for title_width in (0, beside):
            chrome_width, chrome_height = self.chrome(title_width)
            fits.append((self.best_fit(width - chrome_width, height - chrome_height).scale, title_width))
        return fits

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._place_title()

    def _place_title(self) -> None:
        if self.tiles is None:
            return
        above, beside = self._fits(self.width(), self.height())
        self.set_title_beside(beside[1] if beside[0] > above[0] else 0)

    def set_title_beside(self, width: int) -> None:
        """Put the title in a column of `width` px left of the picture (wrapped), or above it (0)."""
        if width == self.title_beside:
            return
        self.title_beside = width
        self.title_label.setWordWrap(bool(width))
        self.title_label.setAlignment(
            Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft if width else Qt.AlignmentFlag.AlignLeft
        )
        self.head.removeWidget(self.title_label)
        # beside: a fixed column; above: as wide as the panel, cut rather than widening it
        policy = QSizePolicy.Policy.Fixed if width else QSizePolicy.Policy.Ignored
        self.title_label.setSizePolicy(policy, QSizePolicy.Policy.Ignored if width else QSizePolicy.Policy.Preferred)
        if width:
            self.title_label.setFixedWidth(width)
            self.head.addWidget(self.title_label, 1, 0)
        else:
            self.title_label.setMinimumWidth(1)
            self.title_label.setMaximumWidth(16777215)
            self.head.addWidget(self.title_label, 0, 1)

    def chrome(self, title_beside: int = 0) -> tuple[int, int]:
        """The (width, height) the panel takes around its picture with the title above it, or in
        a column of `title_beside` px beside it."""
        margins = self.layout().contentsMargins()
        width = margins.left() + margins.right() + 2 * self.frameWidth() + 4
        height = margins.top() + margins.bottom() + 2 * self.frameWidth() + 4
        if self.range_shown:
            height += self.range_label.fontMetrics().height() + 1
        if title_beside:
            width += title_beside + 1
        elif self.title_shown:
            height += self.title_label.fontMetrics().height() + 1  # one line (its hint follows its wrapping)
        return width, height

    def set_title_visible(self, visible: bool) -> None:
        """Show the title, or leave it to the holder (a row's header) and give its room to the picture."""
        self.title_shown = visible
        self.title_label.setVisible(visible)

    def set_range_visible(self, visible: bool) -> None:
        """Show the values line under the picture, or give its room to the picture (the line's
        text stays as the picture's tooltip)."""
        self.range_shown = visible
        self.range_label.setVisible(visible)

    @property
    def image_size(self) -> float:
        """How many screen pixels one image of the batch is tall, as shown now."""
        return 0.0 if self.tiles is None else self.tiles.shape[1] * self.factor

    def show_images(
        self,
        images: torch.Tensor,
        value_range: tuple[float, float],
        labels: torch.Tensor | None = None,
        name: str | None = None,
    ) -> None:
        """Show a batch [N, C, H, W] as a grid mapped from the field's display range to black..white."""
        name = name or self.name
        low, high = display_range(name, value_range)
        tiles = to_uint8(images, low, high)
        same_batch = self.tiles is not None and self.tiles.shape == tiles.shape
        self.tiles, self.labels, self.pending = tiles, labels, False
        self.image_item.setOpacity(1.0)
        self.pending_text.setVisible(False)
        values = images.float()
        shown, lowest, highest = f"[{low:g}, {high:g}]", values.min().item(), values.max().item()
        # what black and white mean first: in a narrow panel the values give way
        self.range_label.set_forms(
            [
                f"black → white = {shown}   ·   values {lowest:+.2f} … {highest:+.2f}",
                f"black→white = {shown} · values {lowest:+.2f}…{highest:+.2f}",
                f"black→white = {shown}",
                shown,
            ]
        )
        self.view.setToolTip(self.range_label.toolTip())  # the whole line, where the label is hidden or cut
        if same_batch:  # the usual case while stepping: same grid, new pixels
            self.grid = tile(tiles, self.columns)
            self.image_item.setImage(self.grid, autoLevels=False, levels=(0, 255))
        else:
            self._place_title()
            self._lay_out(force=True)

    def set_overlay(self, mask: torch.Tensor | None) -> None:
        """Tint where `mask` ([N, C, H, W], 1 = marked) is set, over the grid; None removes it."""
        self.mask = mask
        self.overlay_item.setVisible(mask is not None)
        if mask is not None:
            marked = tile(to_uint8(mask, 0.0, 1.0), self.columns)[..., 0] > 127
            rgba = np.zeros(marked.shape + (4,), dtype=np.uint8)
            rgba[marked] = OVERLAY_RGBA
            self.overlay_item.setImage(rgba, autoLevels=False, levels=(0, 255))

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
        self._lay_out()

    def best_fit(self, width: float, height: float) -> GridFit | None:
        """The grid that would show this batch largest in a view of that size (None before a batch)."""
        if self.tiles is None:
            return None
        count, tile_height, tile_width, _ = self.tiles.shape
        return best_grid(count, tile_height, tile_width, width, height, self.labels)

    def clear(self) -> None:
        """Show nothing: a pooled panel about to show another run (see widgets/pool.py)."""
        self.tiles = self.grid = self.labels = self.mask = None
        self.pending = False
        self.image_item.clear()
        self.overlay_item.setVisible(False)
        self.pending_text.setVisible(False)
        self._label_columns()
        self.range_label.setText("")

    def _label_columns(self) -> None:
        """A batch with several images per class has one column per class: say which, at the top of
        each column (the Train tab's 4-per-digit epoch grid). The labels are made once and reused."""
        classes = None if self.tiles is None else class_columns(self.labels, self.tiles.shape[0])
        shown = 0 if classes is None else self.columns
        while len(self.column_labels) < shown:
            label = pg.TextItem("", color=(255, 235, 120), anchor=(0.5, 1))  # above its column
            self.view_box.addItem(label, ignoreBounds=True)
            self.column_labels.append(label)
        for column, label in enumerate(self.column_labels):
            label.setVisible(column < shown)
            if column < shown:
                tile_width = self.tiles.shape[2]
                label.setText(str(int(self.labels[column])))
                label.setFont(self._label_font())
                label.setPos(GRID_PADDING + column * (tile_width + GRID_PADDING) + tile_width / 2, 0)

    def _lay_out(self, force: bool = False) -> None:
        """Choose the grid for the view's shape, then show it at the zoom in effect, centred."""
        if self.tiles is None:
            return
        view_width, view_height = max(1, self.view.width()), max(1, self.view.height())
        band = self._label_band()  # the column labels' row above the grid, not over its first images
        fit = self.best_fit(view_width, view_height - band)
        if force or fit.columns != self.columns or self.grid is None:
            self.columns = fit.columns
            self.grid = tile(self.tiles, self.columns)
            self.image_item.setImage(self.grid, autoLevels=False, levels=(0, 255))
            self.set_overlay(self.mask)
            self._label_columns()
        self.factor = float(self.zoom) if self.zoom else screen_scale(fit.scale)
        height, width = self.grid.shape[:2]
        half_width = view_width / self.factor / 2
        # the grid centred in the view below the labels' band
        top = -band / self.factor - ((view_height - band) / self.factor - height) / 2
        self.view_box.setRange(
            xRange=(width / 2 - half_width, width / 2 + half_width),
            yRange=(top, top + view_height / self.factor),
            padding=0,
        )

    def _label_band(self) -> int:
        """Screen pixels above the grid for the column labels (0 when the columns are not classes)."""
        if self.tiles is None or class_columns(self.labels, self.tiles.shape[0]) is None:
            return 0
        return QFontMetrics(self._label_font()).height() + LABEL_PADDING_PX

    def _label_font(self) -> QFont:
        font = QFont(self.font())
        font.setBold(True)
        return font
