"""The timeline scrubber and the transport bar (first, previous, play, next, last, fps, loop).

The scrubber paints the frames that exist in solid colour and the frames the worker has not
produced yet hatched, with the cursor on top. Clicking or dragging seeks.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QHBoxLayout, QStyle, QToolButton, QVBoxLayout, QWidget

from diffusion_stepper.core.session import MAX_FPS, MIN_FPS, RUNNING, Session
from diffusion_stepper.visualizer.widgets.fitted_label import FittedLabel

PRODUCED_COLOUR = QColor(59, 130, 246)
PENDING_COLOUR = QColor(110, 110, 110)
CURSOR_COLOUR = QColor(250, 204, 21)
TRACK_COLOUR = QColor(40, 40, 40)
# The caption is the run's name, this gap, then the frame's ("step 12/20 · t = 288 · ᾱ_t = 0.0123"):
# where both do not fit, the name gives way (the Runs list shows it whole)
CAPTION_GAP = " " * 6


class TimelineBar(QWidget):
    """Positions 0..P-1 of the session's shared timeline across the widget's width."""

    MARGIN = 6
    MIN_WIDTH = 160  # a timeline squeezed narrower cannot be scrubbed: the window keeps room for it

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.setMinimumSize(self.MIN_WIDTH, 26)
        self.setMouseTracking(False)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Drag to scrub. Hatched: frames still being sampled.")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(600, 28)

    @property
    def pending_from(self) -> int:
        """The first position that is still pending (== the timeline's length when none is)."""
        session = self.session
        if not any(run.state == RUNNING for run in session.timeline_runs):
            return session.timeline_length
        return session.produced_limit + 1

    def x_of(self, position: float) -> float:
        """The centre of a position's cell, in widget pixels."""
        cell = (self.width() - 2 * self.MARGIN) / max(1, self.session.timeline_length)
        return self.MARGIN + (position + 0.5) * cell

    def position_at(self, x: float) -> int:
        length = max(1, self.session.timeline_length)
        cell = (self.width() - 2 * self.MARGIN) / length
        return max(0, min(length - 1, int((x - self.MARGIN) // max(cell, 1e-9))))

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        length = max(1, self.session.timeline_length)
        left, right = self.MARGIN, self.width() - self.MARGIN
        top, height = 6, self.height() - 12
        cell = (right - left) / length
        painter.fillRect(QRectF(left, top, right - left, height), TRACK_COLOUR)
        if self.session.active is not None:
            pending_from = self.pending_from
            painter.fillRect(QRectF(left, top, pending_from * cell, height), PRODUCED_COLOUR)
            if pending_from < length:
                rect = QRectF(left + pending_from * cell, top, (length - pending_from) * cell, height)
                painter.fillRect(rect, QBrush(PENDING_COLOUR, Qt.BrushStyle.BDiagPattern))
            x = self.x_of(self.session.position)
            painter.setPen(QPen(CURSOR_COLOUR, max(3.0, min(cell, 8.0))))
            painter.drawLine(int(x), 2, int(x), self.height() - 2)
        painter.end()

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.session.seek(self.position_at(event.position().x()))

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.session.seek(self.position_at(event.position().x()))


class TransportBar(QWidget):
    """The buttons, the scrubber, the caption and the playback settings under the panels."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.timeline = TimelineBar(session)
        self.caption = FittedLabel("No run yet: press Generate (Enter)")
        self.caption.setObjectName("caption")
        self.buttons = {}
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for key, icon, tip, action in (
            ("first", QStyle.StandardPixmap.SP_MediaSkipBackward, "First frame (Home)", session.first),
            ("previous", QStyle.StandardPixmap.SP_MediaSeekBackward, "Previous frame (Left)", lambda: session.step(-1)),
            ("play", QStyle.StandardPixmap.SP_MediaPlay, "Play / pause (Space)", session.toggle_playing),
            ("next", QStyle.StandardPixmap.SP_MediaSeekForward, "Next frame (Right)", lambda: session.step(1)),
            ("last", QStyle.StandardPixmap.SP_MediaSkipForward, "Last frame (End)", session.last),
        ):
            button = QToolButton()
            button.setIcon(self.style().standardIcon(icon))
            button.setToolTip(tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(action)
            self.buttons[key] = button
            row.addWidget(button)
        row.addWidget(self.timeline, 1)
        self.fps = QDoubleSpinBox()
        self.fps.setRange(MIN_FPS, MAX_FPS)
        self.fps.setDecimals(1)
        self.fps.setSuffix(" fps")
        self.fps.setValue(session.fps)
        self.fps.setToolTip("Playback speed")
        self.fps.valueChanged.connect(session.set_fps)
        self.loop = QCheckBox("loop")
        self.loop.setChecked(session.loop)
        self.loop.toggled.connect(session.set_loop)
        row.addWidget(self.fps)
        row.addWidget(self.loop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.caption)

    def settings(self) -> dict:
        """What the playback controls keep for the next launch, by the settings file's keys: the
        session's speed and loop."""
        return {"fps": self.session.fps, "loop": self.session.loop}

    def restore(self, settings: dict) -> None:
        if "fps" in settings:
            self.session.set_fps(settings["fps"])
        if "loop" in settings:
            self.session.set_loop(settings["loop"])

    def refresh(self, caption: str) -> None:
        session = self.session
        name, gap, frame = caption.partition(CAPTION_GAP)
        self.caption.set_forms([name], keep=gap + frame)
        icon = QStyle.StandardPixmap.SP_MediaPause if session.playing else QStyle.StandardPixmap.SP_MediaPlay
        self.buttons["play"].setIcon(self.style().standardIcon(icon))
        self.buttons["play"].setToolTip("Pause (Space)" if session.playing else "Play (Space)")
        if abs(self.fps.value() - session.fps) > 1e-9:
            self.fps.setValue(session.fps)
        if self.loop.isChecked() != session.loop:
            self.loop.setChecked(session.loop)
        self.timeline.update()
