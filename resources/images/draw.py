"""Draws the bundled sample images (our own work, CC0): python -m diffusion_stepper.resources.images.draw

Simple scenes with clear shapes and colours, so SDEdit, inpainting and image-to-image have
something recognisable to project onto IF's image manifold. 256 x 256 RGB PNGs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 256
HERE = Path(__file__).resolve().parent


def vertical_gradient(top: tuple, bottom: tuple) -> Image.Image:
    t = np.linspace(0.0, 1.0, SIZE)[:, None, None]
    colours = (1 - t) * np.array(top, float) + t * np.array(bottom, float)
    return Image.fromarray(np.repeat(colours, SIZE, axis=1).astype(np.uint8))


def tower() -> Image.Image:
    """A bell tower on a green hill under a blue sky (a nod to the course's Campanile)."""
    image = vertical_gradient((70, 130, 215), (190, 220, 245))
    draw = ImageDraw.Draw(image)
    draw.ellipse((-80, 190, 340, 420), fill=(70, 140, 60))
    draw.rectangle((108, 70, 148, 215), fill=(225, 215, 190))  # shaft
    draw.rectangle((104, 60, 152, 90), fill=(210, 200, 175))  # belfry
    for x in (112, 126, 140):
        draw.rectangle((x, 66, x + 6, 84), fill=(60, 60, 70))  # openings
    draw.polygon([(104, 60), (128, 20), (152, 60)], fill=(80, 110, 100))  # spire
    draw.ellipse((122, 98, 134, 110), fill=(245, 245, 235), outline=(60, 60, 60))  # clock
    return image.filter(ImageFilter.GaussianBlur(0.8))


def sunset() -> Image.Image:
    """The sun setting over the sea."""
    image = vertical_gradient((250, 120, 60), (255, 210, 120))
    draw = ImageDraw.Draw(image)
    draw.ellipse((88, 100, 168, 180), fill=(255, 240, 180))
    sea = vertical_gradient((40, 70, 120), (20, 40, 80)).crop((0, 150, SIZE, SIZE))
    image.paste(sea, (0, 150))
    for y in range(160, SIZE, 12):
        draw.line((100 - (y - 150) // 3, y, 156 + (y - 150) // 3, y), fill=(250, 200, 140), width=2)
    return image.filter(ImageFilter.GaussianBlur(0.8))


def face() -> Image.Image:
    """A simple painted face: the sort of sketch part A projects onto real faces."""
    image = vertical_gradient((120, 100, 90), (60, 50, 45))
    draw = ImageDraw.Draw(image)
    draw.ellipse((58, 30, 198, 210), fill=(235, 190, 160))  # face
    draw.pieslice((50, 10, 206, 150), 180, 360, fill=(90, 60, 40))  # hair
    for x in (95, 145):
        draw.ellipse((x - 12, 105, x + 12, 121), fill=(255, 255, 255))
        draw.ellipse((x - 6, 107, x + 6, 119), fill=(60, 90, 140))
    draw.line((128, 120, 120, 155, 132, 158), fill=(190, 140, 120), width=3)  # nose
    draw.arc((98, 150, 158, 185), 20, 160, fill=(170, 70, 70), width=4)  # mouth
    draw.rectangle((88, 205, 168, 256), fill=(70, 90, 150))  # shirt
    return image.filter(ImageFilter.GaussianBlur(0.8))


def tower_mask() -> Image.Image:
    """White over the tower's top (spire and belfry), the part inpainting redraws, as the course
    does with the Campanile's top."""
    mask = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(mask).rectangle((92, 12, 164, 96), fill=255)
    return mask


IMAGES = {"tower.png": tower, "tower-mask.png": tower_mask, "sunset.png": sunset, "face.png": face}


def main() -> None:
    for name, draw_image in IMAGES.items():
        draw_image().save(HERE / name)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
