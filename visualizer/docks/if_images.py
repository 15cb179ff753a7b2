"""The IF dock's picture fields: the image (opened, dropped, cropped to a square or sketched) and the
inpainting mask (opened or painted over the image). What the editors make is saved under the work
folder and becomes the field's file."""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QWidget

from diffusion_stepper.core.deepfloyd_if.images import IMAGE_SUFFIXES
from diffusion_stepper.core.deepfloyd_if.tasks import DEFAULT_IMAGE, DEFAULT_MASK
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.paths import sample_image, work_folder
from diffusion_stepper.visualizer.dialogs.crop_dialog import CropDialog
from diffusion_stepper.visualizer.dialogs.painting import MaskEditor, SketchEditor
from diffusion_stepper.visualizer.widgets.forms import button, row

IMAGE_FILTER = f"Images ({' '.join('*' + suffix for suffix in IMAGE_SUFFIXES)});;Stage I runs (*.npz);;All files (*)"


class IFImageFields(QObject):
    sketched = Signal(Path)  # a new sketch became the image
    failed = Signal(str)

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self._parent = parent  # the dialogs' parent
        self.image_path = QLineEdit(str(sample_image(DEFAULT_IMAGE)))
        self.image_path.setPlaceholderText("an image (drop one on the window)")
        self.image_path.setToolTip("Any picture (drop one on the window); bundled ones are in resources/images")
        self.mask_path = QLineEdit(str(sample_image(DEFAULT_MASK)))
        self.mask_path.setPlaceholderText("black and white; white = new content")
        self.image_row: QHBoxLayout = row(
            self.image_path,
            button("Open…", self.ask_image),
            button("Sketch…", self.sketch, "Draw a scribble; SDEdit projects it onto natural images (part A 1.7.1)"),
        )
        self.mask_row: QHBoxLayout = row(
            self.mask_path,
            button("Open…", self.ask_mask),
            button("Paint…", self.paint_mask, "Paint the mask over the image: brush, eraser, rectangle, clear, invert"),
        )

    @property
    def image(self) -> str | None:
        return self.image_path.text().strip() or None

    @property
    def mask(self) -> str | None:
        return self.mask_path.text().strip() or None

    # --- the image ------------------------------------------------------------------------------

    def ask_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self._parent, "Image", str(sample_image().parent), IMAGE_FILTER)
        if path:
            self.set_image(path)

    def crop_dialog_for(self, path: str | Path):
        """The crop-to-square step for a picture that is not square; None when there is nothing to choose."""

        if Path(path).suffix.lower() == ".npz":
            return None
        try:
            with Image.open(path) as image:
                if image.width == image.height:
                    return None
        except (OSError, UnidentifiedImageError):
            return None  # the run reports what is wrong with the file, in one line
        return CropDialog(path, work_folder("crops", f"{Path(path).stem}-square.png"), self._parent)

    def set_image(self, path: str | Path) -> None:
        """Use `path` as the image, after the crop-to-square step when it is not square
        (cancelling it keeps the picture, and IF takes its centre square)."""
        dialog = self.crop_dialog_for(path)
        if dialog is not None and dialog.exec():
            path = dialog.out_path
        self.image_path.setText(str(path))

    def sketch_editor(self):
        return SketchEditor(
            work_folder("sketches", f"sketch-{time.strftime('%Y%m%d-%H%M%S')}.png"), parent=self._parent
        )

    def sketch(self) -> None:
        """Draw a sketch; it becomes the image."""
        editor = self.sketch_editor()
        if editor.exec():
            self.use_sketch(editor.out_path)

    def use_sketch(self, path: Path) -> None:
        self.image_path.setText(str(path))
        self.sketched.emit(Path(path))

    # --- the mask -------------------------------------------------------------------------------

    def ask_mask(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self._parent, "Mask", str(sample_image().parent), IMAGE_FILTER)
        if path:
            self.mask_path.setText(path)

    def mask_editor(self):
        """The mask editor for the current image, starting from the current mask; a
        UserFacingError when there is no picture to paint on."""

        image = self.image
        if not image or not Path(image).is_file() or Path(image).suffix == ".npz":
            raise UserFacingError("open a picture first (Image ▸ Open…), then paint its mask")
        return MaskEditor(image, self.mask, work_folder("masks", f"{Path(image).stem}-mask.png"), self._parent)

    def paint_mask(self) -> None:
        try:
            editor = self.mask_editor()
        except UserFacingError as error:
            self.failed.emit(str(error))
            return
        if editor.exec():
            self.mask_path.setText(str(editor.out_path))
