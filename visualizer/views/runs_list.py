"""The runs list (the Runs dock): every run of the session; selecting one makes it active, ticking it compares it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem

from diffusion_stepper.core.session import Session
from diffusion_stepper.visualizer.views.common import CoalescedRefresh


class RunsList(QListWidget):
    """Every run of the session. Selecting one makes it active; ticking it adds it to Compare."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setToolTip("Select a run to step through it; tick runs to compare them. Del removes, F2 renames.")
        self.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed | QAbstractItemView.EditTrigger.DoubleClicked)
        self.currentItemChanged.connect(self._on_current)
        self.itemChanged.connect(self._on_item_changed)
        self.refresher = CoalescedRefresh(session, self.refresh, self)

    def refresh(self) -> None:
        self.blockSignals(True)
        try:
            runs = self.session.runs
            while self.count() > len(runs):
                self.takeItem(self.count() - 1)
            while self.count() < len(runs):
                item = QListWidgetItem()
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEditable)
                self.addItem(item)
            for row, run in enumerate(runs):
                item = self.item(row)
                item.setData(Qt.ItemDataRole.UserRole, run.id)
                state = "" if run.state in ("done", "loaded") else f"  [{run.state}]"
                if not self.isPersistentEditorOpen(item):
                    item.setText(run.name + state)
                item.setToolTip(run.error or run.name)
                item.setCheckState(
                    Qt.CheckState.Checked if run.id in self.session.compared_ids else Qt.CheckState.Unchecked
                )
                if run.id == self.session.active_id:
                    self.setCurrentItem(item)
        finally:
            self.blockSignals(False)

    def run_id(self, item: QListWidgetItem | None) -> int | None:
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def _on_current(self, current: QListWidgetItem | None, previous) -> None:
        run_id = self.run_id(current)
        if run_id is not None:
            self.session.set_active(run_id)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        run_id = self.run_id(item)
        if run_id is None:
            return
        self.session.set_compared(run_id, item.checkState() == Qt.CheckState.Checked)
        run = self.session.run(run_id)
        text = item.text().split("  [")[0]
        if run is not None and text != run.name:
            self.session.rename_run(run_id, text)
