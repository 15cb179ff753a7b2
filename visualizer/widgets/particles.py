"""The particle view of a 2D run: the picture core.toy2d.render draws (what an export writes),
at the size of the panel, and the controls that choose what it shows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QCheckBox, QComboBox, QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.run_meta import PARTICLES
from diffusion_stepper.core.session import Session
from diffusion_stepper.core.toy2d.render import (
    FIELD_TITLES,
    SOURCE_TITLES,
    ParticleViewOptions,
    render_particles,
    view_title,
)
from diffusion_stepper.visualizer.widgets.equation import shrinkable
from diffusion_stepper.visualizer.widgets.panels import _ResizeAwareView

MIN_SIDE, MAX_SIDE = 160, 1400  # pixels the picture is rendered at, whatever the panel's size


def drawn_as_particles(trajectory: Trajectory) -> bool:
    """The app's one question whether a run is a 2D one: its frames are drawn as the particle view
    (the Step and Compare views, the Export dialog), not as panels of images."""
    return trajectory.run_meta.kind == PARTICLES


class ParticlePanel(QFrame):
    """One 2D run at one frame, rendered square to fill the panel; re-rendered on resize."""

    def __init__(self, options: ParticleViewOptions, parent=None):
        super().__init__(parent)
        self.options = options  # shared with the controls (and the other panels)
        self.trajectory: Trajectory | None = None
        self.index = 0
        self.picture: np.ndarray | None = None  # what is on screen now
        self._paths_key: tuple | None = None
        self._paths: np.ndarray | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title_label = shrinkable(QLabel(""))
        self.title_label.setObjectName("panelTitle")
        self.caption = shrinkable(QLabel(""))
        self.caption.setObjectName("panelRange")
        self.view = _ResizeAwareView(self._render)
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.view.setMinimumSize(120, 120)
        self.view_box = pg.ViewBox(enableMouse=False, enableMenu=False, invertY=True, lockAspect=True, defaultPadding=0)
        self.view.setCentralItem(self.view_box)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(1)
        layout.addWidget(self.title_label)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.caption)

    def set_title(self, text: str) -> None:
        self.title_label.setText(text)

    def show_frame(self, trajectory: Trajectory, index: int) -> None:
        self.trajectory, self.index = trajectory, index
        self.image_item.setOpacity(1.0)
        self._render()

    def clear(self) -> None:
        """Show nothing: a pooled panel about to show another run (see widgets/pool.py)."""
        self.trajectory, self.picture, self._paths_key, self._paths = None, None, None, None
        self.image_item.clear()
        self.caption.setText("")

    def show_pending(self) -> None:
        self.image_item.setOpacity(0.25)
        self.caption.setText("pending: the worker has not produced this frame yet")

    def _particle_paths(self, trajectory: Trajectory) -> np.ndarray:
        """Every frame's particles [F, N, 2], gathered once per run (again as a live run grows)."""
        key = (id(trajectory), len(trajectory.frames))
        if key != self._paths_key:
            self._paths = np.stack([frame.x_t.reshape(-1, 2).numpy() for frame in trajectory.frames])
            self._paths_key = key
        return self._paths

    def _render(self) -> None:
        trajectory = self.trajectory
        if trajectory is None or self.index >= len(trajectory.frames):
            return
        side = int(np.clip(min(self.view.width(), self.view.height()), MIN_SIDE, MAX_SIDE))
        options = replace(self.options, size=side)
        self.picture = render_particles(trajectory, self.index, options, self._particle_paths(trajectory))
        self.image_item.setImage(self.picture, autoLevels=False, levels=(0, 255))
        self.view_box.setRange(xRange=(0, side), yRange=(0, side), padding=0)
        frame = trajectory[self.index]
        error = frame.coeffs.get("field_error")
        extra = "" if error is None else f"   ·   mean |model − exact| = {error:.3f}"
        self.caption.setText(view_title(trajectory, options) + extra)


class ParticleControls(QWidget):
    """What the 2D pictures show (the session's `particle_view`): the field (and whose), the x̂₀
    cloud, p_t, the data, the paths."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.options = session.particle_view
        self.field = QComboBox()
        for key, title in FIELD_TITLES.items():
            self.field.addItem(title.replace("eps", "ε"), key)
        self.field.setToolTip(
            "The arrows: the velocity the particles move along (flow's v̂; for DDPM runs the probability-flow "
            "ODE's x̂₀/√ᾱ − ε̂/√(1 − ᾱ)), the noise estimate ε̂, or the score −ε̂/σ"
        )
        self.source = QComboBox()
        for key, title in SOURCE_TITLES.items():
            self.source.addItem(title, key)
        self.source.setToolTip("Whose field: the model's, the exact one (Gaussian mixtures), both, or their difference")
        self.boxes = {
            "x0_cloud": QCheckBox("x̂₀ cloud"),
            "density": QCheckBox("p_t"),
            "data": QCheckBox("data"),
            "paths": QCheckBox("paths"),
        }
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (QLabel("Arrows"), self.field, self.source, *self.boxes.values()):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.field.currentIndexChanged.connect(self._changed)
        self.source.currentIndexChanged.connect(self._changed)
        for box in self.boxes.values():
            box.toggled.connect(self._changed)
        self.show_options()

    def show_options(self) -> None:
        """Set the widgets from the options, without echoing a change."""
        for widget in (self.field, self.source, *self.boxes.values()):
            widget.blockSignals(True)
        self.field.setCurrentIndex(self.field.findData(self.options.field))
        self.source.setCurrentIndex(self.source.findData(self.options.source))
        for name, box in self.boxes.items():
            box.setChecked(getattr(self.options, name))
        for widget in (self.field, self.source, *self.boxes.values()):
            widget.blockSignals(False)

    def _changed(self) -> None:
        self.options.field = self.field.currentData()
        self.options.source = self.source.currentData()
        for name, box in self.boxes.items():
            setattr(self.options, name, box.isChecked())
        self.session.particle_view_changed()
