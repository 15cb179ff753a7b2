"""The Compare view: the compared runs side by side on one shared timeline, aligned by normalized time."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from diffusion_stepper.core.session import Session, run_differences
from diffusion_stepper.visualizer.views.common import NOISE, CoalescedRefresh, field_for, run_caption
from diffusion_stepper.visualizer.widgets.panels import FIT, ImagePanel


class CompareView(QWidget):
    """The compared runs stacked on one shared timeline, aligned by normalized time."""

    FIELDS = {"x_t": "x_t", "x0_hat": "x̂₀ clean estimate", NOISE: "noise estimate"}

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.field = QComboBox()
        for key, label in self.FIELDS.items():
            self.field.addItem(label, key)
        self.field.currentIndexChanged.connect(self.refresh)
        self.hint = QLabel("Tick two or more runs in the Runs list, or press Sweep γ, to compare them here.")
        self.hint.setObjectName("emptyMessage")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show"))
        top.addWidget(self.field)
        top.addStretch(1)
        self.panel_box = QVBoxLayout()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.hint, 1)
        layout.addLayout(self.panel_box, 1)
        self.panels: dict[int, ImagePanel] = {}
        self.zoom = FIT
        self.refresher = CoalescedRefresh(session, self.refresh, self)

    @property
    def field_key(self) -> str:
        return self.field.currentData()

    def set_zoom(self, zoom: int) -> None:
        self.zoom = zoom
        for panel in self.panels.values():
            panel.set_zoom(zoom)

    def refresh(self) -> None:
        runs = self.session.compared
        self.hint.setVisible(not runs)
        if [run.id for run in runs] != list(self.panels):
            self._rebuild([run.id for run in runs])
        differences = run_differences([run.trajectory.meta for run in runs])
        for run, difference in zip(runs, differences):
            panel = self.panels[run.id]
            view = self.session.view(run)
            # what tells the runs apart comes first and large; the name and the step after it
            leading = f"<font size='+2'><b>{html.escape(difference)}</b></font>&nbsp;&nbsp;&nbsp;" if difference else ""
            panel.set_title(
                f"{leading}{html.escape(run.name)}&nbsp;&nbsp;&nbsp;{html.escape(run_caption(self.session, run))}"
            )
            name = field_for(run, self.field_key)
            if view.pending:
                panel.show_pending()
            elif name is not None:
                panel.show_images(view.frame.image(name), run.trajectory.value_range, run.trajectory.labels, name)

    def _rebuild(self, run_ids: list[int]) -> None:
        for panel in self.panels.values():
            self.panel_box.removeWidget(panel)
            panel.deleteLater()
        self.panels = {}
        for run_id in run_ids:
            panel = ImagePanel("x_t")
            panel.set_zoom(self.zoom)
            self.panels[run_id] = panel
            self.panel_box.addWidget(panel, 1)
