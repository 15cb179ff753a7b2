"""The ranges every number a person types must fall in, and the memory check made before a big
allocation. The CLI's flags and the file readers take their bounds from here, and the README's
"Limits" table lists them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from diffusion_stepper.core.errors import OutOfRangeError, UserFacingError

# Inclusive ranges: (lowest, highest)
SEED = (0, 2**64 - 1)  # what torch.Generator.manual_seed takes
STEPS = (1, 10_000)  # sampling steps (a DDPM model also stops at its own T)
SAMPLES = (1, 5_000)  # images in one run
POINTS = (1, 20_000)  # particles in one 2D run
CLASSES = (1, 1_000)  # classes a conditioned model may have
INT_LIST_VALUES = 10_000  # numbers in one typed list such as 0-9 or 0,150,300
FPS = (0.1, 100.0)  # GIF frames last at least 10 ms
SCALE = (1, 64)  # integer zoom of an export
EXPORT_SIDE = (1, 16_384)  # pixels on either side of an exported frame
KEEP_EVERY = (1, 1_000_000)  # keep every K-th frame
GUIDANCE = (0.0, 100.0)  # a CFG scale γ (IF's, MNIST's, the 2D lab's): every estimate is checked against it
GUIDANCE_SWEEP_VALUES = 100  # scales in one guidance trade-off sweep
ETA = (0.0, 1.0)  # DDIM's noise scale η: 0 deterministic, 1 the DDPM posterior's variance
NOISE_SIGMA = (0.0, 100.0)  # the single-step denoiser's σ
BELOW_ONE = (0.0, 0.999999)  # a probability or decay that must stay below 1 (p_uncond, EMA)
CHAIN_INDEX = (0, 100_000)  # a timestep, a stride or a start index on a chain
BLUR_KERNEL = (1, 1_023)
BLUR_SIGMA = (0.01, 1_000.0)
LEARNING_RATE = (1e-12, 10.0)
EPOCHS = (1, 10_000)
HIDDEN = (1, 1_024)  # the UNet's hidden size D (D = 1,024 is 2 GB of weights)
BATCH_SIZE = (1, 65_536)
CHAIN_LENGTH = (1, 100_000)  # a DDPM chain's T
FLOW_STEPS = (1, 100_000)  # a flow model's num_ts
LOG_EVERY = (1, 1_000_000)  # iterations between two loss events

# The 2D lab: its point MLP and its training (the config's check, `train toy2d` and the checkpoint
# reader), the class it guides to, and the distributions drawn for it
TOY_ITERATIONS = (1, 1_000_000)  # training iterations of a 2D model
TOY_HIDDEN = (1, 4_096)  # the MLP's width
TOY_DEPTH = (1, 16)  # its hidden layers
TOY_LEARNING_RATE = (0.0, 1.0)  # Adam's rate for a 2D model: above 0, at most 1
TOY_CLASSES = 64  # the classes a 2D model tells apart at most: labels 0 to 63
DRAWN_POINTS = (3, 4_000)  # the points of a drawn distribution
DRAWN_SPREAD = (0.01, 2.0)  # the std of the Gaussian around each drawn point
# The ranges the 2D lab dock offers a lecture, within those above (the commands take all of them)
LAB2D_ITERATIONS = (100, 100_000)
LAB2D_STEPS = (1, 1_000)
LAB2D_PARTICLES = (10, POINTS[1])
LAB2D_GUIDANCE = (0.0, 20.0)

# Pictures hold values near their range ([0, 1], [-1, 1]); x̂₀ early in an unclipped chain reaches
# thousands. Beyond this a value is a broken run's (statistics of it overflow float32 to NaN).
IMAGE_MAGNITUDE = 1e12
PICTURE_CHANNELS = (1, 3)  # grey or colour: what every image run holds and every export draws
NAME_CHARS = 200  # a dataset's or a drawing's name, as runs and 2D checkpoints record it
TITLE_CHARS = NAME_CHARS + 50  # a title made around such a name ("Drawn (NAME)")

# Arrays read from a file may unpack to this many times the file's size and no more: real runs
# compress to 1-10x, a crafted "zip bomb" to 1,000x
MAX_UNPACK_RATIO = 64
MIN_UNPACK_ALLOWANCE = 256 * 1024 * 1024


def available_memory_bytes() -> int:
    """Memory the machine can give now: Linux's MemAvailable, else half the physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (OSError, ValueError, AttributeError):
        return 8 * 1024**3  # no way to ask (Windows): assume a modest laptop


def check_memory(needed_bytes: float, what: str, advice: str) -> None:
    """Refuse up front, with the estimate, work that would need more memory than is free."""
    available = available_memory_bytes()
    if needed_bytes > available:
        raise UserFacingError(
            f"{what} would need about {format_bytes(needed_bytes)} of memory, more than the "
            f"{format_bytes(available)} free; {advice}"
        )


def format_bytes(count: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:,.1f} {unit}"
    return f"{int(count)} bytes"


def out_of_range(value: float, bounds: tuple[float, float]) -> bool:
    return not bounds[0] <= value <= bounds[1]


def check_guidance(scale: float) -> None:
    """Refuse a CFG scale outside GUIDANCE (far beyond it the estimates overflow to NaN)."""
    if not math.isfinite(scale) or out_of_range(scale, GUIDANCE):
        raise OutOfRangeError(f"guidance γ must be between {GUIDANCE[0]:g} and {GUIDANCE[1]:g}, got {scale:g}")


def check_guidance_sweep(scales) -> None:
    """Refuse a sweep of CFG scales (the guidance trade-off's): 1 to GUIDANCE_SWEEP_VALUES of them,
    each within GUIDANCE."""
    if not 1 <= len(scales) <= GUIDANCE_SWEEP_VALUES:
        raise OutOfRangeError(f"give 1 to {GUIDANCE_SWEEP_VALUES} guidance scales, e.g. 0, 1, 3, 5; got {len(scales)}")
    for scale in scales:
        check_guidance(scale)


def check_run_fits(num_frames: int, num_images: int, image_shape: tuple[int, ...], pictures_per_frame: int = 3) -> None:
    """Refuse a sampling run whose recorded frames (x_t, x̂0, the noise estimate and any extras,
    each `image_shape` in float32) would not fit in the memory free."""
    per_frame = num_images * pictures_per_frame * 4 * math.prod(image_shape)
    check_memory(
        num_frames * per_frame,
        f"recording {num_frames:,} frames of {num_images:,} images",
        "use fewer samples or fewer steps",
    )
