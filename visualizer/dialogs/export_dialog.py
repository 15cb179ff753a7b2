"""The export dialog: which panels, which frames, how fast and how big, GIF or MP4."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.exports.render import ASPECTS, SLIDES, ExportLayout
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.visualizer.widgets.panels import panel_title
from diffusion_stepper.visualizer.widgets.particles import drawn_as_particles


@dataclass
class ExportOptions:
    panels: list[str]  # frame fields, left to right
    start: int
    end: int
    every: int = 1
    fps: float = 10.0
    scale: int = 4
    format: str = "gif"  # "gif" or "mp4"
    arrangement: str = "side-by-side"  # or "stacked", or "auto" (whichever is larger, in a fixed frame)
    aspect: str | None = None  # "16:9", "4:3" or "1:1": every frame fitted to a slide of that shape
    width: int | None = None  # the slide's width in pixels (default: 1080 px tall)

    def layout(self) -> ExportLayout:
        if self.aspect:
            return ExportLayout.for_aspect(self.aspect, self.width, self.arrangement)
        return ExportLayout("side-by-side" if self.arrangement == "auto" else self.arrangement, scale=self.scale)


def exportable_fields(trajectory: Trajectory) -> list[str]:
    noise = [trajectory.noise_field] if trajectory.noise_field else []
    return ["x_t", "x0_hat"] + noise + trajectory.extra_names()


class ExportDialog(QDialog):
    def __init__(self, trajectory: Trajectory, fps: float, visible_fields: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export animation")
        last = len(trajectory) - 1
        self.checks: dict[str, QCheckBox] = {}
        panel_row = QWidget()
        panel_layout = QHBoxLayout(panel_row)
        panel_layout.setContentsMargins(0, 0, 0, 0)
        # a 2D run exports its particle view, drawn with the choices on screen: no panels to pick
        self.particle_view = drawn_as_particles(trajectory)
        if self.particle_view:
            panel_layout.addWidget(QLabel("the particle view, as the Step view shows it"))
        for name in [] if self.particle_view else exportable_fields(trajectory):
            check = QCheckBox(panel_title(name, trajectory.run_meta).split("  ")[0])
            check.setToolTip(panel_title(name, trajectory.run_meta))
            check.setChecked(name in visible_fields)
            self.checks[name] = check
            panel_layout.addWidget(check)
        self.start = QSpinBox()
        self.start.setRange(0, last)
        self.end = QSpinBox()
        self.end.setRange(0, last)
        self.end.setValue(last)
        self.every = QSpinBox()
        self.every.setRange(1, max(1, last))
        self.every.setToolTip("Keep every k-th frame (the last one is always kept)")
        self.fps = QDoubleSpinBox()
        self.fps.setRange(0.5, 50.0)
        self.fps.setValue(fps)
        self.scale = QSpinBox()
        self.scale.setRange(1, 16)
        self.scale.setValue(4)
        self.scale.setSuffix("×")
        self.format = QComboBox()
        self.format.addItem("GIF (loops in any browser)", "gif")
        self.format.addItem("MP4 (H.264, for slides)", "mp4")
        self.arrangement = QComboBox()
        for key, label in (("side-by-side", "side by side"), ("stacked", "stacked"), ("auto", "whichever is larger")):
            self.arrangement.addItem(label, key)
        self.frame_shape = QComboBox()
        self.frame_shape.addItem("free: the pictures at the scale", None)
        for aspect in ASPECTS:
            self.frame_shape.addItem(f"a {aspect} slide", aspect)
        self.frame_shape.setToolTip("Fit every frame to a slide of this shape, the pictures as large as they fit")
        self.width = QSpinBox()
        self.width.setRange(320, 7680)
        self.width.setValue(1920)
        self.width.setSuffix(" px wide")
        self.slides_button = QPushButton("For slides: 1920×1080 MP4")
        self.slides_button.setToolTip("16:9 at 1920×1080, MP4, the panels arranged to be largest")
        self.slides_button.clicked.connect(self.use_slide_preset)
        self.frame_shape.currentIndexChanged.connect(self._update_fields)
        form = QFormLayout()
        form.addRow("Panels", panel_row)
        form.addRow("From frame", self.start)
        form.addRow("To frame", self.end)
        form.addRow("Every", self.every)
        form.addRow("Frames per second", self.fps)
        form.addRow("Layout", self.arrangement)
        form.addRow("Frame", self.frame_shape)
        form.addRow("Width", self.width)
        form.addRow("Scale", self.scale)
        form.addRow("Format", self.format)
        form.addRow("", self.slides_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self._update_fields()

    def _update_fields(self) -> None:
        framed = self.frame_shape.currentData() is not None
        self.width.setEnabled(framed)  # a slide's size is its width and shape
        self.scale.setEnabled(not framed)  # a free frame's size is the scale

    def use_slide_preset(self) -> None:
        self.frame_shape.setCurrentIndex(self.frame_shape.findData("16:9"))
        self.width.setValue(SLIDES.size[0])
        self.arrangement.setCurrentIndex(self.arrangement.findData(SLIDES.arrangement))
        self.format.setCurrentIndex(self.format.findData("mp4"))

    def options(self) -> ExportOptions:
        panels = [name for name, check in self.checks.items() if check.isChecked()]
        if self.particle_view:
            panels = ["x_t"]  # the particles; the picture is the whole particle view
        if not panels:
            raise UserFacingError("tick at least one panel to export")
        if self.start.value() > self.end.value():
            raise UserFacingError(f"the frame range {self.start.value()}–{self.end.value()} is empty")
        return ExportOptions(
            panels=panels,
            start=self.start.value(),
            end=self.end.value(),
            every=self.every.value(),
            fps=self.fps.value(),
            scale=self.scale.value(),
            format=self.format.currentData(),
            arrangement=self.arrangement.currentData(),
            aspect=self.frame_shape.currentData(),
            width=self.width.value() if self.frame_shape.currentData() else None,
        )
