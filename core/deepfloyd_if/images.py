"""Images and masks in, for part A: any file a lecturer has, brought to IF's square RGB in [-1, 1].

Every conversion that changes what the user gave (transparency, grey, 16 bits, cropping,
resizing) is reported as a note rather than done silently; what cannot be converted is refused
with one line that says why.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.files import check_input_file
from diffusion_stepper.core.formats.trajectory_file import load_trajectory
from diffusion_stepper.core.limits import check_memory

# The most pixels a picture may decode to, read from its header before anything is decoded: a
# 48-megapixel phone photo's JPEG decodes at a reduced scale (draft mode) well under it, while a
# small crafted PNG of 144 megapixels (Pillow warns only above 89, refuses above 179) would cost
# gigabytes on its way to IF's 64 px. Every conversion below stays within a few copies of it.
MAX_PIXELS = 24_000_000
CONVERSION_BYTES_PER_PIXEL = 16  # a float32 working copy of a grey picture, its 8-bit and RGB copies
# The files taken as pictures (a dropped file with another suffix opens as a run or a checkpoint).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


@dataclass
class LoadedImage:
    tensor: torch.Tensor  # [1, 3, size, size] in [-1, 1]
    notes: list[str] = field(default_factory=list)
    original_size: tuple[int, int] = (0, 0)  # (width, height) as the file has it


def picture_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the picture's header, nothing decoded (and Pillow's warnings kept quiet)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            return image.size


def _open(path: Path, draft_size: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """The picture at `path`, decoded in full (a big JPEG at a reduced scale, at least `draft_size`
    on a side), so a truncated file is reported here and not mid-run; and its size in the file.
    Its size is checked against MAX_PIXELS from the header, before any decoding."""
    check_input_file(path)
    try:
        with warnings.catch_warnings():  # the size is checked here, with a limit well under Pillow's
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
            original_size = image.size
            if draft_size and image.format == "JPEG" and min(image.size) > 2 * draft_size:
                image.draft("RGB", (draft_size, draft_size))  # decode a big JPEG at a fraction of its size
            _check_pixels(path, image)
            image.load()
    except UnidentifiedImageError as error:
        raise UserFacingError(f"{path} is not an image Pillow can read (PNG, JPEG, WebP, BMP, TIFF, ...)") from error
    except Image.DecompressionBombError as error:
        raise UserFacingError(
            f"{path} is too large to open safely (over {MAX_PIXELS // 1_000_000} megapixels): downscale it first"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:  # a damaged file; Pillow raises all three
        raise UserFacingError(f"{path} is damaged or truncated: {str(error).splitlines()[0]}") from None
    return image, original_size


def _check_pixels(path: Path, image: Image.Image) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise UserFacingError(
            f"{path} is {width}x{height} pixels ({width * height / 1e6:,.0f} megapixels), more than the "
            f"{MAX_PIXELS / 1e6:g} this app decodes: downscale it first (IF works at 64 px)"
        )
    check_memory(CONVERSION_BYTES_PER_PIXEL * width * height, f"opening {path}", "downscale the picture first")


def _to_rgb(image: Image.Image, notes: list[str]) -> Image.Image:
    """Any Pillow mode to 8-bit RGB, with a note for each lossy or surprising step."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.array(image, dtype=np.float32)  # one working copy, scaled in place
        peak = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        notes.append(f"converted from {mode} ({'16' if peak > 255 else '32'}-bit) greyscale to 8-bit RGB")
        array *= 255.0 / peak
        array += 0.5
        return Image.fromarray(np.clip(array, 0, 255, out=array).astype(np.uint8)).convert("RGB")
    if mode == "F":
        array = np.array(image, dtype=np.float32)
        low, high = float(array.min()), float(array.max())
        notes.append(f"converted from floating-point greyscale (values {low:g} to {high:g}) to 8-bit RGB")
        array -= low
        array *= 255.0 / (high - low) if high > low else 0.0
        array += 0.5
        return Image.fromarray(np.clip(array, 0, 255, out=array).astype(np.uint8)).convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        notes.append("transparency flattened onto white")
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("L", "1"):
        notes.append("greyscale copied to the three colour channels")
    elif mode == "CMYK":
        notes.append("converted from CMYK to RGB")
    elif mode not in ("RGB", "P"):
        notes.append(f"converted from {mode} to RGB")
    return image.convert("RGB")


def _square(image: Image.Image, notes: list[str]) -> Image.Image:
    width, height = image.size
    if width == height:
        return image
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    notes.append(f"centre-cropped from {width}x{height} to {side}x{side}")
    return image.crop((left, top, left + side, top + side))


def open_rgb(
    path: str | os.PathLike, notes: list[str], draft_size: int | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """The picture at `path` as 8-bit RGB and its size in the file; conversions go to `notes`.
    With `draft_size`, a big JPEG is decoded at a reduced scale, at least that large."""
    path = Path(path)
    image, original_size = _open(path, draft_size)
    try:
        return _to_rgb(image, notes), original_size
    except OSError as error:
        raise UserFacingError(f"{path} is damaged or truncated: {error}") from error


def load_image(path: str | os.PathLike, size: int) -> LoadedImage:
    """The image at `path` as [1, 3, size, size] in [-1, 1]: centre-cropped to a square, resized."""
    notes: list[str] = []
    rgb, original_size = open_rgb(path, notes, draft_size=2 * size)
    rgb = _square(rgb, notes)
    if rgb.size != (size, size):
        notes.append(f"resized from {rgb.size[0]}x{rgb.size[1]} to {size}x{size}")
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=None)
    array = np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0
    tensor = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
    return LoadedImage(tensor, notes, original_size)


def load_mask(path: str | os.PathLike, size: int, image_size: tuple[int, int] | None = None) -> torch.Tensor:
    """A binary mask as [1, 1, size, size] of 0 and 1 (1: make new content there).

    The mask must be the image's own size (it is then cropped and resized like the image) or
    the model's size, and hold only black and white.
    """
    path = Path(path)
    grey = check_mask(path, image_size)
    accepted = {(size, size)} | ({tuple(image_size)} if image_size else set())
    if grey.shape[::-1] not in accepted:
        wanted = " or ".join(f"{w}x{h}" for w, h in sorted(accepted))
        raise UserFacingError(
            f"the mask {path} is {grey.shape[1]}x{grey.shape[0]}, but it must be {wanted} to line up with the image"
        )
    binary = Image.fromarray(((grey > 0) * 255).astype(np.uint8))
    binary = _square(binary, [])
    if binary.size != (size, size):
        binary = binary.resize((size, size), Image.Resampling.NEAREST)
    mask = torch.from_numpy((np.asarray(binary) > 127).astype(np.float32))
    return mask.view(1, 1, size, size)


def check_mask(path: str | os.PathLike, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """The mask as 8-bit grey, refused unless it is readable, black and white, and either the
    image's size or square (the model's size, which is checked once the model is known)."""
    path = Path(path)
    image, _ = _open(path)
    if image.size != tuple(image_size or ()) and image.size[0] != image.size[1]:
        wanted = f"{image_size[0]}x{image_size[1]} (the image's size) or square" if image_size else "square"
        raise UserFacingError(
            f"the mask {path} is {image.size[0]}x{image.size[1]}, but it must be {wanted} to line up with the image"
        )
    grey = np.asarray(image.convert("L"))
    grey_levels = np.unique(grey)
    if not set(grey_levels.tolist()) <= {0, 255} and not set(grey_levels.tolist()) <= {0, 1}:
        between = int(((grey > 0) & (grey < 255)).sum())
        raise UserFacingError(
            f"the mask {path} is not binary: {between} pixels are neither black nor white (paint with a hard "
            "brush, no anti-aliasing)"
        )
    return grey


def load_start_image(
    image: str, size: int, device: torch.device, resize: bool = True
) -> tuple[torch.Tensor, list[str]]:
    """A task's start image in [-1, 1], and the notes on how it was converted: a picture at `size`
    px, or the final sample of a saved run (a trajectory .npz), brought to `size` px if `resize`."""
    path = Path(image)
    if path.suffix == ".npz":  # a saved run: upscale (or re-noise) its final sample
        trajectory = load_trajectory(path)
        low, high = trajectory.value_range
        tensor = (trajectory.final_sample[:1].clamp(low, high) - low) / (high - low) * 2.0 - 1.0
        notes = [f"the final sample of {path.name}"]
        if tensor.shape[1] == 1:
            tensor, notes = tensor.repeat(1, 3, 1, 1), notes + ["greyscale copied to the three colour channels"]
        if tensor.shape[-1] != size and resize:
            tensor = F.interpolate(tensor, (size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
            notes.append(f"resized to {size}x{size}")
        return tensor.to(device), notes
    loaded = load_image(path, size)
    return loaded.tensor.to(device), loaded.notes


def original_size(image: str | None) -> tuple[int, int] | None:
    """A picture's size as its file gives it (None for none, or for a saved run)."""
    if not image or Path(image).suffix == ".npz":
        return None
    return picture_size(image)
