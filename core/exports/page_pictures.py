"""How the interactive page stores its pictures (core.exports.html_page): each as a lossless PNG
data URI, or, where that is smaller, as its difference from a like picture.

A picture that looks like another (the same panel one step earlier, or CFG's conditional estimate
beside the unconditional one) may be stored as its difference from that one, modulo 256 per
channel, which compresses better and is undone exactly in the browser (resources/page/page.js)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

BASE_TRIAL_FRAMES = 6  # frames encoded to find the panel another is best stored as a difference from
KEYFRAME_INTERVAL = 10  # every 10th frame of a panel is stored whole


def _png_data_uri(pixels: np.ndarray) -> str:
    """[H, W, 3] uint8 as a PNG data URI, lossless: one grey channel when the three are equal, a
    palette when there are at most 256 colours (the particle view has about 240), else RGB."""
    if (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 0] == pixels[..., 2]).all():
        image = Image.fromarray(pixels[..., 0])
    else:
        rgb = pixels.astype(np.uint32)
        codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]  # one integer per colour: a fast unique
        colours, indices = np.unique(codes.ravel(), return_inverse=True)
        if len(colours) <= 256:
            image = Image.fromarray(indices.reshape(pixels.shape[:2]).astype(np.uint8), mode="P")
            palette = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=1)
            image.putpalette(palette.astype(np.uint8).tobytes())
        else:
            image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=6)  # level 9 and `optimize` cost far more for under 1% here
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def difference_mod_256(pixels: np.ndarray, base: np.ndarray) -> np.ndarray:
    """`pixels` − `base` per channel, wrapped to 0..255: `base` + this, wrapped, gives `pixels` back."""
    return (pixels.astype(np.int16) - base.astype(np.int16)).astype(np.uint8)


def batch_strip(tiles: np.ndarray) -> np.ndarray:
    """[N, h, w, 3] -> [h, N*w, 3]: a batch's images side by side, as the page reads them."""
    count, height, width, channels = tiles.shape
    return tiles.transpose(1, 0, 2, 3).reshape(height, count * width, channels)


def _related_panels(strips: list[list[np.ndarray]]) -> list[int | None]:
    """For each panel, the earlier panel whose difference from it encodes smallest on a few frames
    (CFG's ε_c beside ε_u), or None where no earlier panel helps."""
    if not strips or not strips[0]:
        return []
    trial = sorted(set(np.linspace(0, len(strips[0]) - 1, BASE_TRIAL_FRAMES).round().astype(int).tolist()))

    def size(pictures: list[np.ndarray]) -> int:
        return sum(len(_png_data_uri(picture)) for picture in pictures)

    related: list[int | None] = []
    for panel, frames in enumerate(strips):
        best, best_size = None, size([frames[i] for i in trial])
        for earlier in range(panel):
            if strips[earlier][0].shape != frames[0].shape:
                continue
            candidate = size([difference_mod_256(frames[i], strips[earlier][i]) for i in trial])
            if candidate < best_size:
                best, best_size = earlier, candidate
        related.append(best)
    return related


def encode_pictures(strips: list[list[np.ndarray]], differences: bool = True) -> list[list[str | dict]]:
    """Each panel's frames as the page stores them: a PNG data URI, or {"uri", "base": [panel, frame]}
    when the picture is smaller stored as its difference from the same panel's previous frame (the
    estimates change little from step to step) or from the related panel's same frame. Every
    KEYFRAME_INTERVAL-th frame is whole, so the browser never undoes a long chain to show one.
    `differences=False` stores every picture whole (the particle view: a few colours, which a
    palette PNG holds best, and differences do not keep)."""
    if not differences:
        return [[_png_data_uri(picture) for picture in frames] for frames in strips]
    related = _related_panels(strips)
    stored: list[list[str | dict]] = [[] for _ in strips]
    for frame in range(len(strips[0]) if strips else 0):
        for panel, frames in enumerate(strips):
            picture = frames[frame]
            best: str | dict = _png_data_uri(picture)
            bases = [(panel, frame - 1)] if frame % KEYFRAME_INTERVAL else []
            if related[panel] is not None:
                bases.append((related[panel], frame))
            for base_panel, base_frame in bases:
                uri = _png_data_uri(difference_mod_256(picture, strips[base_panel][base_frame]))
                if len(uri) < len(best if isinstance(best, str) else best["uri"]):
                    best = {"uri": uri, "base": [base_panel, base_frame]}
            stored[panel].append(best)
    return stored
