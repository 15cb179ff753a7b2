"""Crop a picture to a square before IF sees it: choose which square with the slider or arrow keys.

IF works on square images; without this step the centre square is taken. The crop is saved as
a PNG beside the app's other work, and that file becomes the IF image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QSlider, QVBoxLayout

from diffusion_stepper.core.deepfloyd_if.images import open_rgb
from diffusion_stepper.visualizer.dialogs.painting import save_png

PREVIEW = 480  # the longer side of the preview, in pixels
SHADE = 0.35  # how bright the part left out stays in the preview


class CropDialog(QDialog):
    def __init__(self, image_path: str | Path, out_path: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Crop to a square (IF works on squares)")
        self.out_path = Path(out_path)
        self.notes: list[str] = []
        self.picture, _ = open_rgb(image_path, self.notes)
        width, height = self.picture.size
        self.side = min(width, height)
        self.horizontal = width > height  # the square slides along the longer side
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, max(width, height) - self.side)
        self.slider.setValue(self.slider.maximum() // 2)  # the centre square, the default without this step
        self.slider.valueChanged.connect(self.redraw)
        scale = PREVIEW / max(width, height)
        self.preview_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        self.base = np.asarray(self.picture.resize(self.preview_size, Image.Resampling.BILINEAR), dtype=np.float32)
        self.preview = QLabel()
        self.preview.setFixedSize(*self.preview_size)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(QLabel("Slide to choose the square (arrow keys move it too)."))
        layout.addWidget(self.slider)
        layout.addWidget(buttons)
        self.slider.setFocus()
        self.redraw()

    def box(self) -> tuple[int, int, int, int]:
        """The chosen square in the picture's pixels: (left, top, right, bottom)."""
        offset = self.slider.value()
        left, top = (offset, 0) if self.horizontal else (0, offset)
        return left, top, left + self.side, top + self.side

    def redraw(self) -> None:
        left, top, right, bottom = self.box()
        scale = self.preview_size[0] / self.picture.size[0]
        shown = self.base * SHADE
        rows = slice(round(top * scale), round(bottom * scale))
        cols = slice(round(left * scale), round(right * scale))
        shown[rows, cols] = self.base[rows, cols]
        data = np.ascontiguousarray(shown.clip(0, 255).astype(np.uint8))
        image = QImage(data.data, data.shape[1], data.shape[0], 3 * data.shape[1], QImage.Format.Format_RGB888)
        self.preview.setPixmap(QPixmap.fromImage(image.copy()))

    def accept(self) -> None:
        if save_png(self, self.picture.crop(self.box()), "crop"):
            super().accept()
