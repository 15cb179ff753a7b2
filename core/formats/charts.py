"""Line plots as pictures (Pillow, no Qt): the sampler lab's curves as PNGs that fit a slide.

The CLI and the app's "Save plot" write the same picture from the same numbers, drawn here once:
a dark background like the app's, thick lines, and text large enough to read from the back row.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from diffusion_stepper.core.atomic import write_bytes_atomically
from diffusion_stepper.core.formats.palette import run_colour
from diffusion_stepper.core.formats.pictures import BACKGROUND, TEXT_COLOUR, text_font

# Pillow's built-in font draws ASCII and little else (the exports' captions are ASCII for the same
# reason), so the plots spell the course's symbols out.
_SPELLED_OUT = {
    "x̂₀": "x0-hat",
    "x̂₁": "x1-hat",
    "ε̂": "eps-hat",
    "η": "eta",
    "γ": "gamma",
    "σ": "sigma",
    "ᾱ": "alpha-bar",
    "é": "e",
    "→": "->",
    "−": "-",
    "×": "x",
    "₀": "0",
    "₁": "1",
    "≈": "~",
}
AXIS_COLOUR = (150, 150, 150)
GRID_COLOUR = (55, 55, 55)


@dataclass
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]


@dataclass
class Chart:
    """One set of axes: its series, and reference lines drawn across it."""

    title: str
    x_label: str
    y_label: str
    series: list[Series]
    log_x: bool = False
    horizontal_lines: list[tuple[str, float]] = field(default_factory=list)  # (label, y), e.g. a floor
    y_range: tuple[float, float] | None = None


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def drawable(text: str) -> str:
    """`text` in the characters the plot's font has (see _SPELLED_OUT)."""
    for symbol, spelled in _SPELLED_OUT.items():
        text = text.replace(symbol, spelled)
    return "".join(character for character in text if ord(character) < 0x300 or character in "·…")


def _tick_text(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def draw_chart(chart: Chart, width: int = 1200, height: int = 700) -> Image.Image:
    """The chart as an RGB picture of `width` × `height` pixels."""
    chart = Chart(
        drawable(chart.title),
        drawable(chart.x_label),
        drawable(chart.y_label),
        [Series(drawable(series.label), series.x, series.y) for series in chart.series],
        chart.log_x,
        [(drawable(label), y) for label, y in chart.horizontal_lines],
        chart.y_range,
    )
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    title_font, label_font, tick_font = (
        text_font(max(18, height // 22)),
        text_font(max(14, height // 30)),
        text_font(max(12, height // 36)),
    )
    points = [(x, y) for s in chart.series for x, y in zip(s.x, s.y) if math.isfinite(x) and math.isfinite(y)]
    references = [y for _, y in chart.horizontal_lines if math.isfinite(y)]
    if chart.log_x:
        points = [(math.log10(x), y) for x, y in points if x > 0]
    xs = [x for x, _ in points] or [0.0, 1.0]
    ys = [y for _, y in points] + references or [0.0, 1.0]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = chart.y_range or (min(0.0, min(ys)), max(ys))
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    if y_high == y_low:
        y_high = y_low + 1
    y_high += 0.05 * (y_high - y_low)

    # the left margin holds the tick labels and the rotated axis label, whatever the width
    left = max(int(width * 0.11), 3 * label_font.size + 4 * tick_font.size)
    right, top, bottom = int(width * 0.97), int(height * 0.12), int(height * 0.84)

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x_low) / (x_high - x_low) * (right - left),
            bottom - (y - y_low) / (y_high - y_low) * (bottom - top),
        )

    while draw.textlength(chart.title, font=title_font) > width - left - 8 and title_font.size > 12:
        title_font = text_font(title_font.size - 2)
    draw.text((left, top // 4), chart.title, fill=TEXT_COLOUR, font=title_font)
    for value in _nice_ticks(y_low, y_high):
        _, py = to_px(x_low, value)
        draw.line([(left, py), (right, py)], fill=GRID_COLOUR, width=1)
        text = _tick_text(value)
        draw.text(
            (left - 8 - draw.textlength(text, font=tick_font), py - tick_font.size / 2),
            text,
            fill=AXIS_COLOUR,
            font=tick_font,
        )
    if chart.log_x:  # a tick at each x the series share (the budgets, not Heun's odd 9)
        shared = Counter(x for s in chart.series for x in set(s.x) if x > 0)
        common = [x for x in shared if shared[x] > 1] or list(shared)
        x_ticks = [(math.log10(x), _tick_text(x)) for x in sorted(common)]
    else:
        x_ticks = [(value, _tick_text(value)) for value in _nice_ticks(x_low, x_high)]
    ticked: list[float] = []
    for value, text in x_ticks:
        px, _ = to_px(value, y_low)
        if any(abs(px - other) < 2.5 * tick_font.size for other in ticked):  # too close to a kept one
            continue
        ticked.append(px)
        draw.line([(px, top), (px, bottom)], fill=GRID_COLOUR, width=1)
        draw.text((px - draw.textlength(text, font=tick_font) / 2, bottom + 6), text, fill=AXIS_COLOUR, font=tick_font)
    draw.rectangle([left, top, right, bottom], outline=AXIS_COLOUR, width=2)
    x_label_width = draw.textlength(chart.x_label, font=label_font)
    draw.text(
        ((left + right - x_label_width) / 2, bottom + 12 + tick_font.size),
        chart.x_label,
        fill=TEXT_COLOUR,
        font=label_font,
    )
    y_label = Image.new(
        "RGB", (int(draw.textlength(chart.y_label, font=label_font)) + 4, label_font.size + 8), BACKGROUND
    )
    ImageDraw.Draw(y_label).text((2, 2), chart.y_label, fill=TEXT_COLOUR, font=label_font)
    rotated = y_label.rotate(90, expand=True)
    image.paste(rotated, (4, max(0, (top + bottom - rotated.height) // 2)))

    line_width = max(3, height // 180)
    for label, value in chart.horizontal_lines:
        _, py = to_px(x_low, value)
        for start in range(left, right, 24):  # dashed
            draw.line([(start, py), (min(start + 12, right), py)], fill=TEXT_COLOUR, width=2)
        draw.text(
            (left + 8, py - tick_font.size - 6),  # at the left: the legend may take a right corner
            label,
            fill=TEXT_COLOUR,
            font=tick_font,
        )
    for number, series in enumerate(chart.series):
        colour = run_colour(number)
        # earlier series are drawn wider, so a line that lies on another still shows around it
        series_width = line_width + (len(chart.series) - 1 - number)
        pairs = [(x, y) for x, y in zip(series.x, series.y) if math.isfinite(x) and math.isfinite(y)]
        if chart.log_x:
            pairs = [(math.log10(x), y) for x, y in pairs if x > 0]
        pixels = [to_px(x, y) for x, y in pairs]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=series_width, joint="curve")
        dot = series_width * 0.8 + 2
        for px, py in pixels if len(pixels) <= 30 else []:
            draw.ellipse([px - dot, py - dot, px + dot, py + dot], fill=colour)

    # the legend in the corner that hides the fewest points, on a box of its own so no line crosses its text
    swatch = 36
    legend_font = label_font

    def legend_width_with(font) -> float:
        return max((draw.textlength(s.label, font=font) for s in chart.series), default=0) + swatch + 24

    while legend_width_with(legend_font) > 0.9 * (right - left) and legend_font.size > 10:  # long labels
        legend_font = text_font(legend_font.size - 1)
    legend_width = legend_width_with(legend_font)
    legend_height = len(chart.series) * (legend_font.size + 10)
    corners = [
        (right - legend_width - 8, top + 8),
        (right - legend_width - 8, bottom - legend_height - 8),
        (left + 14, top + 8),
        (left + 14, bottom - legend_height - 8),
    ]
    plotted = []  # points along every line, to see which corner hides the least of them
    for s in chart.series:
        pairs = [(math.log10(x) if chart.log_x else x, y) for x, y in zip(s.x, s.y) if math.isfinite(y)]
        pairs = [to_px(x, y) for x, y in pairs if math.isfinite(x)]
        for (ax, ay), (bx, by) in zip(pairs, pairs[1:]):
            plotted += [(ax + (bx - ax) * k / 16, ay + (by - ay) * k / 16) for k in range(16)]
        plotted += pairs[-1:]

    def hidden(corner: tuple[float, float]) -> int:
        x0, y0 = corner
        return sum(x0 - 6 <= px <= x0 + legend_width and y0 - 4 <= py <= y0 + legend_height for px, py in plotted)

    legend_x, legend_y = min(corners, key=hidden)  # the first corner wins a tie
    if chart.series:
        draw.rectangle(
            [legend_x - 6, legend_y - 4, legend_x + legend_width, legend_y + legend_height],
            fill=BACKGROUND,
            outline=GRID_COLOUR,
        )
    for number, series in enumerate(chart.series):
        colour = run_colour(number)
        middle = legend_y + legend_font.size / 2 + 2
        draw.line([(legend_x, middle), (legend_x + swatch, middle)], fill=colour, width=line_width)
        draw.text((legend_x + swatch + 8, legend_y), series.label, fill=TEXT_COLOUR, font=legend_font)
        legend_y += legend_font.size + 10
    return image


def charts_side_by_side(charts: Sequence[Chart], width: int = 1600, height: int = 700) -> Image.Image:
    """Several charts in one picture, left to right (a 16:9 slide holds two)."""
    each = width // len(charts)
    picture = Image.new("RGB", (each * len(charts), height), BACKGROUND)
    for number, chart in enumerate(charts):
        picture.paste(draw_chart(chart, each, height), (number * each, 0))
    return picture


def write_png(picture: Image.Image, path: str | Path) -> Path:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    write_bytes_atomically(path, buffer.getvalue())
    return Path(path)


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Rows of one table (dicts with the same keys) as CSV, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomically(path, buffer.getvalue().encode())
    return Path(path)
