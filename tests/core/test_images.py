"""Images and masks of any kind come in converted with a note, or are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_stepper.core.deepfloyd_if.images import load_image, load_mask
from diffusion_stepper.core.errors import UserFacingError


def test_rgba_is_flattened_onto_white_with_a_note(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:, :10] = [255, 0, 0, 255]  # opaque red on the left, fully transparent on the right
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png", 20)
    assert loaded.tensor.shape == (1, 3, 20, 20)
    torch.testing.assert_close(loaded.tensor[0, :, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
    torch.testing.assert_close(loaded.tensor[0, :, 0, 15], torch.tensor([1.0, 1.0, 1.0]))  # white
    assert loaded.notes == ["transparency flattened onto white"]


def test_greyscale_and_16_bit_keep_their_brightness(tmp_path):
    Image.fromarray(np.full((8, 8), 64, np.uint8), "L").save(tmp_path / "grey.png")
    grey = load_image(tmp_path / "grey.png", 8)
    torch.testing.assert_close(grey.tensor, torch.full((1, 3, 8, 8), 64 / 127.5 - 1))
    assert "greyscale copied" in grey.notes[0]
    deep = np.full((8, 8), 65535 // 2, np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    sixteen = load_image(tmp_path / "deep.png", 8)
    assert abs(float(sixteen.tensor.mean())) < 0.01  # mid-grey, not saturated white
    assert "16-bit" in sixteen.notes[0]


def test_non_square_images_are_centre_cropped_then_resized(tmp_path):
    array = np.zeros((40, 80, 3), np.uint8)
    array[:, 20:60] = 255  # the centre square is white, the sides black
    Image.fromarray(array).save(tmp_path / "wide.png")
    loaded = load_image(tmp_path / "wide.png", 16)
    assert loaded.tensor.shape == (1, 3, 16, 16) and loaded.tensor.min() > 0.99
    assert loaded.notes == ["centre-cropped from 80x40 to 40x40", "resized from 40x40 to 16x16"]
    assert loaded.original_size == (80, 40)


def test_a_very_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    big = np.random.default_rng(0).integers(0, 255, (3000, 4000, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=60)
    loaded = load_image(tmp_path / "big.jpg", 64)
    assert loaded.tensor.shape == (1, 3, 64, 64)
    assert loaded.original_size == (4000, 3000)
    assert any("resized" in note for note in loaded.notes)


@pytest.mark.parametrize("content, message", [(b"not an image at all", "not an image"), (None, "no such file")])
def test_foreign_or_missing_files_are_refused(tmp_path, content, message):
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserFacingError, match=message):
        load_image(path, 16)


def test_a_truncated_image_is_refused(tmp_path):
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserFacingError, match="damaged or truncated|could not be read"):
        load_image(tmp_path / "cut.png", 16)


def test_masks_must_be_binary_and_line_up(tmp_path):
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    loaded = load_mask(tmp_path / "mask.png", 16, image_size=(32, 32))  # the image's size: resized like it
    assert loaded.shape == (1, 1, 16, 16) and set(loaded.unique().tolist()) == {0.0, 1.0}
    assert loaded[0, 0, 8, 8] == 1 and loaded[0, 0, 0, 0] == 0
    assert load_mask(tmp_path / "mask.png", 32).shape == (1, 1, 32, 32)  # the model's size
    Image.fromarray(mask[:20]).save(tmp_path / "short.png")
    with pytest.raises(UserFacingError, match="is 32x20, but it must be"):
        load_mask(tmp_path / "short.png", 16, image_size=(32, 32))
    soft = mask.copy()
    soft[8, 8:12] = 128
    Image.fromarray(soft).save(tmp_path / "soft.png")
    with pytest.raises(UserFacingError, match="not binary: 4 pixels"):
        load_mask(tmp_path / "soft.png", 32)
