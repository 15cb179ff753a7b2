"""Reading an interactive page (core.exports.html_page) back in Python: its JSON, and each stored
picture decoded as the browser decodes it, so tests can check the exact pixels a page holds."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from diffusion_stepper.core.formats.pictures import tile

DATA_ELEMENT = re.compile(r'<script type="application/json" id="run-data">(.*?)</script>', re.S)


def page_data(path: Path) -> dict:
    return json.loads(DATA_ELEMENT.search(Path(path).read_text(encoding="utf-8")).group(1))


def decode_data_uri(uri: str) -> np.ndarray:
    """A PNG data URI as [H, W, 3] uint8 (grey and palette pictures expanded, as a browser does)."""
    assert uri.startswith("data:image/png;base64,"), uri[:40]
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
        return np.asarray(image.convert("RGB"))


def stored_picture(run: dict, panel: int, frame: int) -> np.ndarray:
    """The pixels of one panel's frame, undoing a stored difference the way page.js does."""
    stored = run["panels"][panel]["frames"][frame]
    if isinstance(stored, str):
        return decode_data_uri(stored)
    base = stored_picture(run, *stored["base"])
    return (base.astype(np.uint16) + decode_data_uri(stored["uri"])).astype(np.uint8)  # modulo 256


def grid_picture(strip: np.ndarray, count: int, columns: int) -> np.ndarray:
    """A frame's strip of `count` images laid out as page.js draws it: the exports' own grid
    (core.formats.pictures.tile), `columns` wide, 1 px apart on the background colour."""
    height, width = strip.shape[0], strip.shape[1] // count
    return tile(strip.reshape(height, count, width, 3).transpose(1, 0, 2, 3), columns)
