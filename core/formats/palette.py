"""The colours that mean something, in one place: the app's plots, the PNG charts and the
interactive page draw run k, x_t, the noise estimate and the guidance gap in the same colour."""

from __future__ import annotations

# one colour per run (or series), readable on the dark background and by most colour-blind viewers (Okabe-Ito)
RUN_COLOURS = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (204, 121, 167),
    (213, 94, 0),
    (0, 114, 178),
)
X_T_COLOUR = (90, 160, 255)  # x_t's histogram
NOISE_COLOUR = (255, 165, 60)  # the noise estimate's histogram (ε̂ or v̂)
GAP_COLOUR = (0, 200, 140)  # CFG's |ε_c − ε_u| over t, on the schedule


def run_colour(number: int) -> tuple[int, int, int]:
    """The colour of the number-th run of a comparison (or curve of a chart)."""
    return RUN_COLOURS[number % len(RUN_COLOURS)]


def css_colour(rgb: tuple[int, int, int]) -> str:
    """#rrggbb, as the page writes colours."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def page_palette() -> dict:
    """The colours the interactive page draws with (resources/page/page.js reads them from its data)."""
    return {
        "runs": [css_colour(rgb) for rgb in RUN_COLOURS],
        "x_t": css_colour(X_T_COLOUR),
        "noise": css_colour(NOISE_COLOUR),
        "gap": css_colour(GAP_COLOUR),
    }
