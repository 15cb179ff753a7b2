"""Part A on DeepFloyd IF: every algorithm a generator of Frames, composed from
core.diffusion.sampling.

The pieces (see DESIGN.md, "A sampler is a composition"):

- schedule: IF's alphas_cumprod, read from its scheduler;
- timesteps: the scheduler's own `set_timesteps(N)` list, or the course's 990, 990 - K, ..., 0;
  either way followed by the clean end t = -1 (diffusers' indexing: t = 0 is still noised);
- denoiser adapter: `IFPredictor`, stage I (text) or stage II (text + the noised low-res image);
- noise estimate: plain, CFG, visual anagram (`ViewAverage`) or hybrid (`FrequencySplit`);
- step rule: the DDPM posterior step with IF's learned variance and x0_hat handling;
- per-step projection: inpainting's known region;
- start: pure noise, or the forward process of an image at `i_start` (SDEdit, image-to-image).

Images are [N, 3, H, W] in [-1, 1]. With the same seed, steps and guidance, `sample` draws its
noise from the generator in the order diffusers' IFPipeline does, so the two agree exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from diffusion_stepper.core.deepfloyd_if.anagrams import View
from diffusion_stepper.core.deepfloyd_if.models import IFStage
from diffusion_stepper.core.diffusion.rules.catalogue import IF_SAMPLERS, make_eps_step_rule, unsuitable_sampler
from diffusion_stepper.core.diffusion.rules.x0 import LearnedRangeVariance, scheduler_x0_clip
from diffusion_stepper.core.diffusion.sampling import ClassifierFreeGuidance, NoiseEstimate, PlainEstimate, run_sampler
from diffusion_stepper.core.diffusion.schedules import (
    DIFFUSERS_CLEAN_T,
    DiscreteSchedule,
    forward_process,
    scheduler_timesteps,
    strided_timesteps,
)
from diffusion_stepper.core.diffusion.theory import CLEAN_EXTRA
from diffusion_stepper.core.frames import FORWARD_NOISED, Frame, SamplingRun, to_cpu, with_extras

IF_VALUE_RANGE = [-1.0, 1.0]
CLEAN_T = DIFFUSERS_CLEAN_T  # the chain's clean end in diffusers' indexing (alpha_bar = 1)
DEFAULT_STRIDE = 30  # the course's 990, 960, ..., 0
DEFAULT_STRIDE_START = 990
DEFAULT_GUIDANCE = 7.0
DEFAULT_NOISE_LEVEL = 250  # stage II's augmentation of its low-res input, as in diffusers
X0_CLIP_CHOICES = ("dynamic", "none")


# --- schedule, timesteps, step rule -------------------------------------------------------------


def chain_timesteps(stage: IFStage, steps: int | None = None, stride: int | None = None) -> list[int]:
    """The timesteps a run visits, ending with the clean end CLEAN_T.

    `steps` takes the scheduler's own `set_timesteps(steps)` list (as IFPipeline does); `stride`
    the course's 990, 990 - stride, ..., 0. Give one; the default is the course's stride 30.
    """
    if steps is not None and stride is not None:
        raise ValueError("give steps or stride, not both")
    if steps is not None:
        return scheduler_timesteps(stage.scheduler, steps) + [CLEAN_T]
    start = min(DEFAULT_STRIDE_START, stage.schedule.T)
    return strided_timesteps(start, stride or DEFAULT_STRIDE, 0) + [CLEAN_T]


def x0_handling(stage: IFStage, x0_clip: str = "dynamic"):
    """ "dynamic": the scheduler's own (IF's dynamic thresholding); "none": the course's plain formula."""
    if x0_clip not in X0_CLIP_CHOICES:
        raise ValueError(f"x0-clip must be one of {', '.join(X0_CLIP_CHOICES)}, got {x0_clip!r}")
    return None if x0_clip == "none" else scheduler_x0_clip(stage.scheduler.config)


def if_step_rule(stage: IFStage, x0_clip: str = "dynamic", sampler: str = "ddpm", eta: float | None = None):
    """IF's step rule: DDPM's posterior step with its learned variance (the default), DDIM or
    DPM-Solver++(2M), each with IF's x̂₀ handling and the clean end t = -1."""
    if stage.scheduler.config.variance_type != "learned_range":
        raise ValueError(
            f"IF's scheduler uses learned_range variance, this one {stage.scheduler.config.variance_type!r}"
        )
    if sampler not in IF_SAMPLERS:
        raise ValueError(unsuitable_sampler(sampler, IF_SAMPLERS, "DeepFloyd IF"))
    return make_eps_step_rule(
        sampler,
        stage.schedule,
        eta=eta,
        x0_clip=x0_handling(stage, x0_clip),
        variance=LearnedRangeVariance(),
        clean_t=CLEAN_T,
    )


# --- the denoiser adapter -----------------------------------------------------------------------


class IFPredictor:
    """(x, t, prompt embeddings) -> the UNet's output: noise estimate and variance channels.

    Stage II also sees the noised, upscaled low-res image and its noise level. Inputs are cast to
    the UNet's dtype (fp16 on a GPU); the output comes back in float32, so the step is computed
    at full precision.
    """

    def __init__(self, stage: IFStage, low_res: torch.Tensor | None = None, noise_level: int | None = None):
        if (stage.stage == 2) != (low_res is not None):
            raise ValueError("stage II takes the noised low-res image; stage I does not")
        self.stage = stage
        self.low_res = low_res
        self.noise_level = noise_level

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, t: float, cond: torch.Tensor | None) -> torch.Tensor:
        unet, dtype = self.stage.unet, self.stage.dtype
        model_input = x
        class_labels = None
        if self.low_res is not None:
            repeats = x.shape[0] // self.low_res.shape[0]  # CFG doubles the batch
            model_input = torch.cat([x, self.low_res.repeat(repeats, 1, 1, 1)], dim=1)
            class_labels = torch.full((x.shape[0],), int(self.noise_level), device=x.device)
        output = unet(
            model_input.to(dtype),
            int(t),
            encoder_hidden_states=cond.to(dtype),
            class_labels=class_labels,
            return_dict=False,
        )[0]
        return output.float()


def text_estimate(
    predict: IFPredictor, cond: torch.Tensor, uncond: torch.Tensor | None, guidance: float, channels: int
) -> Callable[[torch.Tensor, float], NoiseEstimate]:
    """CFG with the empty prompt as unconditional (the course's default), or the plain
    conditional estimate when `uncond` is None. `cond` holds one embedding per batch item."""
    if uncond is None:
        return PlainEstimate(predict, cond)
    return ClassifierFreeGuidance(predict, cond, uncond, guidance, name="eps", guided_channels=channels)


# --- visual anagrams: views and their inverses ---------------------------------------------------


# --- hybrid images: low frequencies of one estimate, high of another -------------------------------


def gaussian_kernel(kernel_size: int, sigma: float) -> torch.Tensor:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"the kernel size must be odd and positive, got {kernel_size}")
    if sigma <= 0:
        raise ValueError(f"the blur sigma must be positive, got {sigma}")
    offsets = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (weights / weights.sum()).to(torch.float32)


def gaussian_blur(x: torch.Tensor, kernel_size: int = 33, sigma: float = 2.0) -> torch.Tensor:
    """A separable Gaussian blur per channel, reflecting at the borders (torchvision's choice)."""
    kernel = gaussian_kernel(kernel_size, sigma).to(x.device, x.dtype)
    channels = x.shape[1]
    pad = kernel_size // 2
    if pad >= min(x.shape[-2:]):
        raise ValueError(f"kernel size {kernel_size} is too big for a {x.shape[-2]}x{x.shape[-1]} image")
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode="reflect"), horizontal, groups=channels)
    return F.conv2d(F.pad(x, (0, 0, pad, pad), mode="reflect"), vertical, groups=channels)


class FrequencySplit:
    """Hybrid images: eps = lowpass(eps_1) + highpass(eps_2), highpass = identity - lowpass.

    The learned-variance channels are averaged. The two parts are in the extras as eps_low and
    eps_high.
    """

    def __init__(self, low: Callable, high: Callable, channels: int, kernel_size: int = 33, sigma: float = 2.0):
        gaussian_kernel(kernel_size, sigma)  # validates both now rather than at the first step
        self.low, self.high = low, high
        self.channels = channels
        self.kernel_size, self.sigma = kernel_size, sigma

    def __call__(self, x: torch.Tensor, t: float) -> NoiseEstimate:
        low, high = self.low(x, t), self.high(x, t)
        c = self.channels
        eps_low = gaussian_blur(low.value[:, :c], self.kernel_size, self.sigma)
        eps_high = high.value[:, :c] - gaussian_blur(high.value[:, :c], self.kernel_size, self.sigma)
        variance = (low.value[:, c:] + high.value[:, c:]) / 2
        coeffs = {**low.coeffs, "blur_kernel": float(self.kernel_size), "blur_sigma": float(self.sigma)}
        return NoiseEstimate(
            torch.cat([eps_low + eps_high, variance], dim=1), {"eps_low": eps_low, "eps_high": eps_high}, coeffs
        )


# --- the forward process: starts and references ---------------------------------------------------


def forward_at(image: torch.Tensor, schedule: DiscreteSchedule, t: int, generator: torch.Generator):
    """(x_t, the noise drawn, alpha_bar_t): the forward process of `image` at t (one draw)."""
    noise = torch.randn(image.shape, generator=generator, device=image.device, dtype=image.dtype)
    alpha_bar = schedule.alpha_bar(int(t))
    return forward_process(image, alpha_bar, noise), noise, alpha_bar


# --- inpainting: the per-step projection --------------------------------------------------------


class KeepKnownRegion:
    """Inpainting: after every step, x_t' <- m * x_t' + (1 - m) * forward(x_orig, t').

    m = 1 where new content is made, 0 where the original is kept (the course's convention).
    """

    update_holds_where = "mask"  # the step's update is what x_t′ holds where m = 1 (the frames' extra "mask")

    def __init__(self, original: torch.Tensor, mask: torch.Tensor, schedule: DiscreteSchedule):
        self.original = original
        self.mask = mask
        self.schedule = schedule

    def __call__(self, x_next: torch.Tensor, t_next: float, generator: torch.Generator) -> torch.Tensor:
        if self.schedule.alpha_bar(int(t_next)) >= 1.0:  # the clean end: the original itself, no draw
            known = self.original
        else:
            known = forward_at(self.original, self.schedule, int(t_next), generator)[0]
        return self.mask * x_next + (1.0 - self.mask) * known


# --- runs -----------------------------------------------------------------------------------------


@dataclass
class IFRunSpec:
    """What every IF run records in its trajectory's meta."""

    task: str
    stage: IFStage
    seed: int
    prompts: list[str]
    params: dict = field(default_factory=dict)

    def meta(self, algorithm: str) -> dict:
        return {
            "algorithm": algorithm,
            "model": f"IF stage {'I' * self.stage.stage} ({Path(self.stage.source).name})",
            "checkpoint": self.stage.source,
            "seed": self.seed,
            "prompts": self.prompts,
            "params": {
                "task": self.task,
                "stage": self.stage.stage,
                "alpha_bars": self.stage.schedule.alpha_bars.tolist(),
                **self.params,
            },
            "value_range": IF_VALUE_RANGE,
            "device": str(self.stage.device),
        }


def psnr(estimate: torch.Tensor, reference: torch.Tensor, value_range: Sequence[float] = IF_VALUE_RANGE) -> float:
    """Peak signal-to-noise ratio in dB: 10 log10(peak^2 / MSE), the peak being the range's width."""
    peak = float(value_range[1]) - float(value_range[0])
    error = float(((estimate.float().clamp(*value_range) - reference.float()) ** 2).mean())
    return math.inf if error == 0 else 10.0 * math.log10(peak * peak / error)


def with_psnr(frames: Iterator[Frame], clean: torch.Tensor) -> Iterator[Frame]:
    """Record how close each step's clean estimate is to the original image (the denoising tasks)."""
    reference = to_cpu(clean)
    for frame in frames:
        frame.coeffs["psnr_db"] = psnr(frame.x0_hat, reference)
        yield frame


def through_views(views: Sequence[View]) -> Callable[[Frame], dict[str, torch.Tensor]]:
    """Anagrams' extras: the clean estimate as each view sees it (x0_view1, ...), so every reading
    of the illusion shows at every step, the second upside down for a flip."""
    return lambda frame: {f"x0_view{number}": view.apply(frame.x0_hat) for number, view in enumerate(views, 1)}


FAR_AWAY = 4  # "view from afar": the hybrid's clean estimate shrunk this many times


def from_afar(frame: Frame) -> dict[str, torch.Tensor]:
    """Hybrids' extra: the clean estimate shrunk (area average), as it looks from across the room,
    where only the low frequencies, prompt 1's image, survive."""
    return {"x0_afar": F.avg_pool2d(frame.x0_hat, FAR_AWAY)}


def denoising_run(
    spec: IFRunSpec,
    x_start: torch.Tensor,
    timesteps: list[int],
    estimate: Callable[[torch.Tensor, float], NoiseEstimate],
    generator: torch.Generator,
    x0_clip: str,
    algorithm: str,
    project: Callable | None = None,
    extras: dict[str, torch.Tensor] | None = None,
    sampler: str = "ddpm",
    eta: float | None = None,
) -> SamplingRun:
    """The one IF loop: run_sampler with IF's step rule, wrapped in a SamplingRun."""
    spec.params.update(timesteps=timesteps[:-1], x0_clip=x0_clip, steps=len(timesteps) - 1, sampler=sampler)
    if eta is not None:
        spec.params["eta"] = eta
    step_rule = if_step_rule(spec.stage, x0_clip, sampler, eta)
    frames = run_sampler(x_start, timesteps, estimate, step_rule, generator, project=project)
    if extras:  # the same images on every frame (the mask, the original)
        fixed = {name: to_cpu(image) for name, image in extras.items()}
        frames = with_extras(frames, lambda frame: fixed)
    return SamplingRun(frames, spec.meta(algorithm), None, len(timesteps))


def forward_frames(
    image: torch.Tensor, schedule: DiscreteSchedule, ts: Sequence[int], generator: torch.Generator
) -> Iterator[Frame]:
    """The forward process of one image at each t: x_t, with the noise drawn and the image."""
    for index, t in enumerate(ts):
        x_t, noise, alpha_bar = forward_at(image, schedule, t, generator)
        yield Frame(
            index=index,
            t=float(t),
            x_t=to_cpu(x_t),
            x0_hat=to_cpu(image),
            eps_hat=to_cpu(noise),
            coeffs={"t": float(t), "alpha_bar_t": alpha_bar, FORWARD_NOISED: 1.0},
            extras={CLEAN_EXTRA: to_cpu(image)},
        )


def one_step_frames(
    image: torch.Tensor,
    schedule: DiscreteSchedule,
    ts: Sequence[int],
    estimate: Callable,
    generator: torch.Generator,
    channels: int,
    blur: tuple[int, float] | None = None,
) -> Iterator[Frame]:
    """Denoise the forward process of `image` at each t in one step:
    x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t). With `blur` = (kernel, sigma) the
    classical baseline is in the extras as "blurred"."""
    for index, t in enumerate(ts):
        x_t, noise, alpha_bar = forward_at(image, schedule, t, generator)
        result = estimate(x_t, float(t))
        eps = result.value[:, :channels]
        x0_hat = (x_t - math.sqrt(1.0 - alpha_bar) * eps) / math.sqrt(alpha_bar)
        extras = {
            CLEAN_EXTRA: to_cpu(image),
            "noise": to_cpu(noise),
            **{k: to_cpu(v) for k, v in result.extras.items()},
        }
        if blur is not None:
            extras["blurred"] = to_cpu(gaussian_blur(x_t, *blur))
        yield Frame(
            index=index,
            t=float(t),
            x_t=to_cpu(x_t),
            x0_hat=to_cpu(x0_hat),
            eps_hat=to_cpu(eps),
            coeffs={"t": float(t), "alpha_bar_t": alpha_bar, FORWARD_NOISED: 1.0, **result.coeffs},
            extras=extras,
        )


def blur_frames(
    image: torch.Tensor,
    schedule: DiscreteSchedule,
    ts: Sequence[int],
    generator: torch.Generator,
    kernel_size: int,
    sigma: float,
) -> Iterator[Frame]:
    """Classical denoising: the forward process at each t, then a Gaussian blur as x0_hat."""
    for index, t in enumerate(ts):
        x_t, noise, alpha_bar = forward_at(image, schedule, t, generator)
        yield Frame(
            index=index,
            t=float(t),
            x_t=to_cpu(x_t),
            x0_hat=to_cpu(gaussian_blur(x_t, kernel_size, sigma)),
            eps_hat=to_cpu(noise),
            coeffs={
                "t": float(t),
                "alpha_bar_t": alpha_bar,
                FORWARD_NOISED: 1.0,
                "blur_kernel": float(kernel_size),
                "blur_sigma": sigma,
            },
            extras={CLEAN_EXTRA: to_cpu(image)},
        )
