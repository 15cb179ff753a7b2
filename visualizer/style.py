"""The app's stylesheets, kept as .qss files in resources/styles.

Presentation mode sizes its text from the screen, so that it reads from the back row on a
projector of any resolution: `presentation_text_px` gives the base size, and the stylesheet's
$text, $large and $button placeholders are filled from it.
"""

from __future__ import annotations

from functools import cache
from string import Template

from diffusion_stepper.core.paths import style_sheet_path

NORMAL, PRESENTATION = "normal", "presentation"
LINES_PER_SCREEN = 40  # presentation text: a fortieth of the screen's height (19 px at 768, 27 px at 1080)
MIN_PRESENTATION_PX = 18


@cache
def _template(name: str) -> Template:
    return Template(style_sheet_path(name).read_text(encoding="utf-8"))


def presentation_text_px(screen_height: int) -> int:
    return max(MIN_PRESENTATION_PX, round(screen_height / LINES_PER_SCREEN))


def style_sheet(name: str, text_px: int = MIN_PRESENTATION_PX) -> str:
    """The stylesheet `name`, with its sizes worked out from `text_px` (presentation mode's)."""
    sizes = {"text": text_px, "large": round(text_px * 1.25), "button": round(text_px * 2.2)}
    return _template(name).substitute(sizes)
