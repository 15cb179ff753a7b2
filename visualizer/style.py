"""The app's stylesheets, kept as .qss files in resources/styles."""

from __future__ import annotations

from functools import cache

from diffusion_stepper.core.paths import style_sheet_path

NORMAL, PRESENTATION = "normal", "presentation"


@cache
def style_sheet(name: str) -> str:
    return style_sheet_path(name).read_text(encoding="utf-8")
