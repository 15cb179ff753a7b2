"""Sample quality against NFE: each sampler of a class-conditioned model at several budgets, read
by the bundled judge, drawn as the points arrive (Experiments ▸ Samplers ▸ Sample quality…).

A view over core.mnist.sampler_quality: the picture is the one `diffusion-stepper experiment
mnist sampler-quality` writes, drawn by the same code from the same rows.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QLineEdit

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.mnist.sampler_quality import (
    APP_PER_CLASS,
    QUALITY_BUDGETS,
    QualityRequest,
    quality_charts,
    quality_plan,
    quality_points,
    write_quality,
)
from diffusion_stepper.core.mnist.sampling import DEFAULT_GUIDANCE
from diffusion_stepper.core.parsing import parse_int_list
from diffusion_stepper.visualizer.dialogs.measure_dialog import MeasureDialog, Total, model_choice, open_measure_dialog
from diffusion_stepper.visualizer.widgets.forms import float_box, spin_box


class QualityDialog(MeasureDialog):
    TITLE = "Sample quality against model evaluations (NFE)"
    HINT = "Each point samples every digit with one sampler at one budget; the judge reads them."

    def __init__(self, models: list[tuple[str, str]], seed: int = 0, device: str = "auto", parent=None):
        super().__init__(seed, device, parent)
        self.model = model_choice(models)
        self.per_class = spin_box(2, 500, APP_PER_CLASS, "Digits of each class per point (the judge's FD needs 13+)")
        self.guidance = float_box(
            0.0, 50.0, DEFAULT_GUIDANCE, 0.5, "CFG's γ: 5 is the app's default, 1 the conditional model alone (no push)"
        )
        self.budgets = QLineEdit(", ".join(str(budget) for budget in QUALITY_BUDGETS))
        self.budgets.setToolTip("Model evaluations each sampler may spend, one point each")
        for label, field in (
            ("Model", self.model),
            ("Digits per class", self.per_class),
            ("Guidance γ", self.guidance),
            ("NFE budgets", self.budgets),
        ):
            self.form.addRow(label, field)
        self.plan = None

    def request(self) -> QualityRequest:
        try:
            budgets = parse_int_list(self.budgets.text())
        except ValueError as exc:
            raise UserFacingError(f"NFE budgets: {exc}") from None
        if not budgets or min(budgets) < 1:
            raise UserFacingError("NFE budgets: give positive numbers, e.g. 5, 10, 20")
        return QualityRequest(
            checkpoint=self.model.currentData(),
            budgets=budgets,
            per_class=self.per_class.value(),
            guidance=self.guidance.value(),
            seed=self.seed,
            device=self.device,
        )

    def items(self, request: QualityRequest):
        self.plan = quality_plan(request)
        yield Total(len(self.plan.points))
        yield from quality_points(request, self.plan)

    def describe(self, row) -> str:
        return (
            f"{row.sampler} at NFE {row.nfe}: {row.accuracy:.1%} read as the right digit, FD {row.fd:.2f} "
            f"(real digits {row.fd_real:.2f}), {row.seconds:.1f} s"
        )

    def charts(self):
        return quality_charts(self.rows, self.plan.model, self.plan.flow)

    def save_rows(self, folder: Path):
        return write_quality(self.rows, folder, self.plan.model, self.plan.flow)


def open_quality_dialog(window) -> QualityDialog | None:
    """Experiments ▸ Samplers ▸ Sample quality against NFE, for the main window `window`: the
    Sample dock's class-conditioned models (its selected one first), seed and device."""
    return open_measure_dialog(window, QualityDialog, "quality_dialog")
