"""The guidance trade-off as an instrument (Experiments ▸ Guidance trade-off…): a γ sweep from one
seed, with the judge's right digit, diversity within each digit and FD against γ, drawn as the
scales arrive; each point's run opens in the Compare view.

A view over core.mnist.guidance_tradeoff: the picture is the one `diffusion-stepper experiment
mnist guidance-tradeoff` writes, from the same rows.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.mnist.guidance_tradeoff import (
    TRADEOFF_GUIDANCES,
    TRADEOFF_PER_CLASS,
    TradeoffRequest,
    objective_of,
    tradeoff_charts,
    tradeoff_points,
    write_tradeoff,
)
from diffusion_stepper.core.parsing import parse_float_list
from diffusion_stepper.visualizer.dialogs.measure_dialog import MeasureDialog, Total, model_choice, open_measure_dialog
from diffusion_stepper.visualizer.widgets.forms import spin_box


class TradeoffDialog(MeasureDialog):
    TITLE = "The guidance trade-off: right digit, diversity and FD against γ"
    HINT = "Each scale samples every digit from the same seed; the judge reads them. Then open any γ to step it."

    def __init__(self, models: list[tuple[str, str]], seed: int = 0, device: str = "auto", parent=None):
        super().__init__(seed, device, parent)
        self.model = model_choice(models)
        self.per_class = spin_box(2, 500, TRADEOFF_PER_CLASS, "Digits of each class per scale")
        self.guidances = QLineEdit(", ".join(f"{scale:g}" for scale in TRADEOFF_GUIDANCES))
        self.guidances.setToolTip("The guidance scales γ to sweep")
        for label, field in (("Model", self.model), ("Digits per class", self.per_class), ("Scales γ", self.guidances)):
            self.form.addRow(label, field)
        self.open_row = QHBoxLayout()  # "γ = 2" buttons: that point's run in the Compare view
        self.open_row.addWidget(QLabel("Open the run:"))
        self.open_row.addStretch(1)
        self.layout_.addLayout(self.open_row)
        self.open_buttons: list[QPushButton] = []
        self.tradeoff: TradeoffRequest | None = None
        self.objective = ""

    def request(self) -> TradeoffRequest:
        try:
            self.tradeoff = TradeoffRequest(
                checkpoint=self.model.currentData(),
                guidances=parse_float_list(self.guidances.text()),
                per_class=self.per_class.value(),
                seed=self.seed,
                device=self.device,
            )
        except ValueError as exc:  # OutOfRangeError is one too
            raise UserFacingError(f"scales γ: {exc}") from None
        for button in self.open_buttons:
            button.deleteLater()
        self.open_buttons = []
        return self.tradeoff

    def items(self, request: TradeoffRequest):
        self.objective = objective_of(request.checkpoint)
        yield Total(len(request.guidances))
        yield from tradeoff_points(request)

    def describe(self, row) -> str:
        return (
            f"γ = {row.guidance:g}: {row.accuracy:.1%} read as the right digit, diversity {row.diversity:.2f} "
            f"(real digits {row.diversity_real:.2f}), FD {row.fd:.2f} (real {row.fd_real:.2f}), {row.seconds:.1f} s"
        )

    def row_added(self, row) -> None:
        button = QPushButton(f"γ = {row.guidance:g}")
        button.setToolTip("Sample this scale's run (the same seed) beside the runs in the Compare view")
        button.clicked.connect(lambda _=False, guidance=row.guidance: self.open_run(guidance))
        self.open_row.insertWidget(self.open_row.count() - 1, button)
        self.open_buttons.append(button)

    def charts(self):
        return tradeoff_charts(self.rows, self.model.currentText())

    def open_run(self, guidance: float) -> None:
        """The point's run, sampled again from its seed (the same frames), opens on its own in the
        Step view, where its many digits fit the window (in a comparison row they would be cut)."""
        window = self.parent()
        sample = self.tradeoff.sample_request(guidance, self.objective)
        window.sampling.start(lambda: [sample])

    def save_rows(self, folder: Path):
        return write_tradeoff(self.rows, folder, self.model.currentText())


def open_tradeoff_dialog(window) -> TradeoffDialog | None:
    """Experiments ▸ Guidance trade-off… with the Sample dock's class-conditioned models, seed and device."""
    return open_measure_dialog(window, TradeoffDialog, "tradeoff_dialog")
