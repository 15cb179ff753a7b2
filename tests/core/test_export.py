import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_stepper.core.exports.animation import select_frames, write_animation
from diffusion_stepper.core.exports.render import SLIDES, ExportLayout, render_frame, write_png_grid
from diffusion_stepper.core.formats.layout import GRID_PADDING
from diffusion_stepper.core.formats.pictures import shown_images, to_uint8
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint
from diffusion_stepper.core.mnist.sampling import sample_mnist


@pytest.fixture
def trajectory(tiny_checkpoints):
    run = sample_mnist(load_checkpoint(tiny_checkpoints["class-ddpm"]), classes=[2, 4, 6], steps=9)
    return Trajectory(run.meta, list(run.frames), run.labels)


def test_gif_has_the_chosen_frames_and_size(tmp_path, trajectory):
    path = write_animation(trajectory, tmp_path / "run.gif", panel="x0_hat", fps=5, every=4, scale=3)
    with Image.open(path) as gif:
        assert gif.n_frames == 4  # frames 0, 4, 8 and the last one, 9
        size = gif.size
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
        assert gif.info.get("loop") == 0  # loops forever in a browser
    assert durations[:3] == [200, 200, 200] and durations[-1] >= 1000
    grid_width = 3 * 28 + 4 * GRID_PADDING  # three samples in a row
    assert size[0] == grid_width * 3


def test_panel_pixels_are_the_frames_values(trajectory):
    frame = trajectory[5]
    picture = render_frame(trajectory, frame, ["x_t"], scale=1)
    captions = 2 * (picture.info["caption_px"] + 8)  # the step's line, then the panel's title
    pixels = np.asarray(picture)
    first_image = pixels[captions + GRID_PADDING : captions + GRID_PADDING + 28, GRID_PADDING : GRID_PADDING + 28]
    expected = to_uint8(frame.x_t[:1], 0.0, 1.0)[0]
    assert np.array_equal(first_image, expected)


def test_a_slide_frame_is_exactly_its_size_with_captions_a_back_row_can_read(trajectory):
    for layout, size in (
        (SLIDES, (1920, 1080)),
        (ExportLayout.for_aspect("4:3", 800), (800, 600)),
        (ExportLayout.for_aspect("1:1"), (1080, 1080)),
    ):
        picture = render_frame(trajectory, trajectory[3], ["x_t", "x0_hat", "eps_hat"], layout=layout)
        assert picture.size == size
        assert picture.info["caption_px"] >= 0.03 * picture.height
        assert picture.info["scale"] >= 2  # three 28 px digits per panel, much larger than on the free frame
    free = render_frame(trajectory, trajectory[3], ["x_t", "x0_hat", "eps_hat"], scale=2)
    assert free.info["caption_px"] >= 0.03 * free.height


def test_batches_are_near_square_grids_not_strips(tiny_checkpoints):
    run = sample_mnist(load_checkpoint(tiny_checkpoints["class-ddpm"]), classes=list(range(10)), steps=2)
    ten = Trajectory(run.meta, list(run.frames), run.labels)
    side_by_side = render_frame(ten, ten[0], ["x_t", "x0_hat", "eps_hat"], scale=2)
    stacked = render_frame(ten, ten[0], ["x_t", "x0_hat", "eps_hat"], layout=ExportLayout("stacked", scale=2))
    assert side_by_side.width / side_by_side.height < 4  # the default run's GIF was a 20:1 strip
    assert stacked.size != side_by_side.size and stacked.width / stacked.height < 4


def test_the_final_frame_shows_the_last_estimate_not_a_zero_one(trajectory):
    final = trajectory[len(trajectory) - 1]
    assert final.coeffs.get("final") and not final.eps_hat.any()  # the frame itself has no estimate
    shown = shown_images(trajectory, final, "eps_hat")
    assert torch.equal(shown, trajectory[len(trajectory) - 2].eps_hat)
    assert torch.equal(shown_images(trajectory, final, "x_t"), final.x_t)  # the result itself


def test_png_contact_sheet_rows(tmp_path, trajectory):
    one_row = write_png_grid(trajectory, tmp_path / "one.png", steps_shown=[0], panel="x_t", scale=1)
    three_rows = write_png_grid(trajectory, tmp_path / "three.png", steps_shown=[0, 5, 9], panel="x_t", scale=1)
    with Image.open(one_row) as a, Image.open(three_rows) as b:
        assert b.size[0] == a.size[0]
        assert b.size[1] > 2.9 * a.size[1]
    with pytest.raises(ValueError, match="outside"):
        write_png_grid(trajectory, tmp_path / "bad.png", steps_shown=[42])


def test_frame_selection():
    assert select_frames(10, every=4) == [0, 4, 8, 9]
    assert select_frames(10, every=1, start=2, end=4) == [2, 3, 4]
    with pytest.raises(ValueError):
        select_frames(10, start=5, end=12)


def test_to_uint8_clips_and_expands_grey():
    pixels = to_uint8(torch.tensor([[[[-1.0, 0.0, 0.5, 2.0]]]]), 0.0, 1.0)
    assert pixels.shape == (1, 1, 4, 3)
    assert pixels[0, 0, :, 0].tolist() == [0, 0, 128, 255]


def test_mp4_plays_the_chosen_frames_in_h264(tmp_path, trajectory):
    import av

    from diffusion_stepper.core.exports.animation import write_animation
    from diffusion_stepper.core.exports.render import render_frame

    path = write_animation(
        trajectory, tmp_path / "run.mp4", panel="x_t,eps_hat", fps=10, every=3, scale=2, hold_last_seconds=0.5
    )
    picture = render_frame(trajectory, trajectory[0], ["x_t", "eps_hat"], scale=2)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(video=0))
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (picture.width + picture.width % 2, picture.height + picture.height % 2)
    # frames 0, 3, 6, 9 and the last frame held for 0.5 s at 10 fps (4 more copies)
    assert len(decoded) == 4 + 4


def test_stopping_an_export_early_writes_nothing(tmp_path, trajectory):
    from diffusion_stepper.core.exports.animation import export_animation

    folder = tmp_path / "exports"
    folder.mkdir()
    progress = export_animation(trajectory, folder / "run.gif", panel="x_t")
    assert next(progress) == (1, len(trajectory))
    progress.close()  # what the GUI's Cancel does
    assert list(folder.iterdir()) == []


def test_animation_needs_a_known_suffix(tmp_path, trajectory):
    from diffusion_stepper.core.exports.animation import write_animation

    with pytest.raises(ValueError, match=".gif or .mp4"):
        write_animation(trajectory, tmp_path / "run.avi")
