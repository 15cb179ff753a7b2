"""Sampling runs for the MNIST models: a checkpoint plus the user's choices, composed into frames."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from diffusion_stepper.core.devices import make_generator, resolve_device
from diffusion_stepper.core.diffusion.objectives import (
    DEFAULT_GUIDANCE,
    Objective,
    SingleStepObjective,
    add_gaussian_noise,
    algorithm_name,
    compose_sampler,
)
from diffusion_stepper.core.diffusion.rules.catalogue import check_sampler_choice
from diffusion_stepper.core.diffusion.sampling import (
    NetworkPredictor,
    pure_noise,
)
from diffusion_stepper.core.diffusion.theory import CLEAN_EXTRA
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.frames import Frame, SamplingRun, forward_noised_start, to_cpu, with_extras
from diffusion_stepper.core.limits import SAMPLES, STEPS, check_guidance, check_run_fits, out_of_range
from diffusion_stepper.core.mnist.bundled import DEFAULT_MODEL as DEFAULT_CHECKPOINT
from diffusion_stepper.core.mnist.checkpoints import X0_CLIP_CHOICES, LoadedCheckpoint, load_checkpoint
from diffusion_stepper.core.mnist.data import load_mnist
from diffusion_stepper.core.mnist.unet import UNet

MNIST_SHAPE = (1, 28, 28)
MNIST_VALUE_RANGE = [0.0, 1.0]
DEFAULT_NUM_SAMPLES = 10


def compose_mnist_sampler(
    model: UNet,
    objective: Objective,
    x_start: torch.Tensor,
    generator: torch.Generator,
    labels: torch.Tensor | None = None,
    guidance: float = DEFAULT_GUIDANCE,
    steps: int | None = None,
    sigma: float | None = None,
    x0_clip: str = "none",
    sampler: str | None = None,
    eta: float | None = None,
) -> Iterator[Frame]:
    """The sampler for one UNet (`compose_sampler`): CFG when `labels` are given; x̂₀ clipped to
    MNIST's [0, 1] with `x0_clip="static"` (DDPM's option)."""
    return compose_sampler(
        NetworkPredictor(model, objective),
        objective,
        x_start,
        generator,
        labels=None if labels is None else labels.to(x_start.device),
        num_classes=model.num_classes,
        guidance=guidance,
        steps=steps,
        sigma=sigma,
        sampler=sampler,
        eta=eta,
        x0_range=tuple(MNIST_VALUE_RANGE) if x0_clip == "static" else None,
    )


def with_clean_image(frames: Iterator[Frame], clean: torch.Tensor) -> Iterator[Frame]:
    """Attach the known clean image to the first frame, as the extra `theory.CLEAN_EXTRA`."""
    clean = to_cpu(clean)
    return with_extras(frames, lambda frame: {CLEAN_EXTRA: clean} if frame.index == 0 else {})


@dataclass
class _Batch:
    """What a run samples: `size` images, with their class labels for a class-conditioned model."""

    size: int
    labels: torch.Tensor | None = None
    classes: list[int] | None = None
    per_class: int | None = None
    guidance: float | None = None


def sample_mnist(
    checkpoint: LoadedCheckpoint,
    *,
    classes: Sequence[int] | None = None,
    per_class: int | None = None,
    num: int | None = None,
    guidance: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    sigma: float | None = None,
    clean_images: torch.Tensor | None = None,
    x0_clip: str | None = None,
    sampler: str | None = None,
    eta: float | None = None,
) -> SamplingRun:
    """Validate the user's choices against the checkpoint and compose its sampling run.

    Class-conditioned models sample `per_class` of each of `classes` (default 0-9) with CFG.
    Other models sample `num` images. The single-step denoiser denoises pure noise, or
    `clean_images` noised at `sigma` (default: its training sigma).
    """
    objective = checkpoint.objective
    single_step = isinstance(objective, SingleStepObjective)
    _check_choices(checkpoint, guidance, steps, per_class, num, sigma, clean_images, x0_clip, sampler, eta)
    if not single_step:
        sampler = sampler or checkpoint.default_sampler
        steps = checkpoint.default_steps if steps is None else steps
    batch = _batch(checkpoint, classes, per_class, num, guidance, clean_images)
    _check_size(batch.size, 1 if single_step else steps, single_step)
    device = next(checkpoint.model.parameters()).device
    generator = make_generator(seed, device)
    if single_step and clean_images is not None:
        sigma = objective.sigma if sigma is None else sigma
        x_start = add_gaussian_noise(clean_images[: batch.size].to(device), sigma, generator)
        source = "noised test digits"
    else:
        x_start = pure_noise((batch.size, *MNIST_SHAPE), generator, device)
        source = "pure noise"
        if single_step:
            sigma = 1.0  # pure N(0, I) noise is "clean zero plus noise of sigma 1"
    x0_clip = x0_clip or checkpoint.default_x0_clip
    frames = compose_mnist_sampler(
        checkpoint.model,
        objective,
        x_start,
        generator,
        labels=batch.labels,
        guidance=batch.guidance or 0.0,
        steps=steps,
        sigma=sigma,
        x0_clip=x0_clip,
        sampler=sampler,
        eta=eta,
    )
    if single_step and clean_images is not None:
        frames = forward_noised_start(with_clean_image(frames, clean_images[: batch.size]))
    num_steps = 1 if single_step else steps
    params = {
        "steps": num_steps,
        "num_samples": batch.size,
        "source": source,
        "objective": objective.to_dict(),
        "architecture": checkpoint.sidecar["architecture"],
        "epoch": checkpoint.sidecar.get("epoch"),
    }
    if batch.labels is not None:
        params.update(guidance=batch.guidance, classes=batch.classes, per_class=batch.per_class)
    if objective.name == "ddpm":
        params["x0_clip"] = x0_clip
    if not single_step:
        params["sampler"] = sampler
    if eta is not None:
        params["eta"] = eta
    if single_step:
        params["sigma"] = sigma
    meta = {
        "algorithm": algorithm_name(objective, batch.labels is not None),
        "model": checkpoint.name,
        "checkpoint": str(checkpoint.sidecar_path),
        "seed": seed,
        "params": params,
        "value_range": MNIST_VALUE_RANGE,
        "device": str(device),
    }
    return SamplingRun(frames, meta, batch.labels, num_steps + 1)


def _check_choices(
    checkpoint: LoadedCheckpoint,
    guidance: float | None,
    steps: int | None,
    per_class: int | None,
    num: int | None,
    sigma: float | None,
    clean_images: torch.Tensor | None,
    x0_clip: str | None,
    sampler: str | None,
    eta: float | None,
) -> None:
    """One line for the first choice that does not suit the checkpoint (its objective and sampler)."""
    objective = checkpoint.objective
    single_step = isinstance(objective, SingleStepObjective)
    if guidance is not None:
        check_guidance(guidance)
    if steps is not None and steps <= 0:
        raise UserFacingError(f"steps must be positive, got {steps}")
    if steps is not None and objective.name == "ddpm" and steps > objective.default_steps:
        raise UserFacingError(f"steps must be at most T = {objective.default_steps} for this DDPM model, got {steps}")
    if steps is not None and single_step and steps != 1:
        raise UserFacingError("the single-step denoiser takes exactly one step; leave out --steps")
    if per_class is not None and per_class <= 0:
        raise UserFacingError(f"per-class must be positive, got {per_class}")
    if num is not None and num <= 0:
        raise UserFacingError(f"num must be positive, got {num}")
    if sigma is not None and not (single_step and clean_images is not None):
        raise UserFacingError(
            "--sigma sets the noise added to test digits: use it with the single-step denoiser and --noisy-test"
        )
    if sigma is not None and sigma < 0:
        raise UserFacingError(f"sigma must be >= 0, got {sigma}")
    if x0_clip is not None and x0_clip not in X0_CLIP_CHOICES:
        raise UserFacingError(f"x0-clip must be one of {', '.join(X0_CLIP_CHOICES)}, got {x0_clip!r}")
    if x0_clip == "static" and objective.name != "ddpm":
        raise UserFacingError(f"clipping x̂0 is a DDPM step's option; {checkpoint.name} is {objective.name}")
    if single_step and (sampler is not None or eta is not None):
        raise UserFacingError("the single-step denoiser jumps once and has no sampler to choose; leave out --sampler")
    if not single_step:
        kind = f"{checkpoint.name} ({'a flow-matching' if objective.name == 'flow' else 'a DDPM-trained'} model)"
        check_sampler_choice(sampler or checkpoint.default_sampler, eta, objective.samplers, kind)


def _batch(
    checkpoint: LoadedCheckpoint,
    classes: Sequence[int] | None,
    per_class: int | None,
    num: int | None,
    guidance: float | None,
    clean_images: torch.Tensor | None,
) -> _Batch:
    """A class model's classes × per-class (rows of 0..9, as the course shows them), with its
    guidance; else `num` images. Class options on an unconditional model are refused, and back."""
    if not checkpoint.is_class_conditioned:
        architecture = f"{checkpoint.name} is {checkpoint.architecture!r}"
        for flag, value in (("--classes", classes), ("--guidance", guidance), ("--per-class", per_class)):
            if value is not None:
                hint = " (use --num)" if flag == "--per-class" else ""
                raise UserFacingError(f"{flag} needs a class-conditioned model; {architecture}{hint}")
        return _Batch(num or (clean_images.shape[0] if clean_images is not None else DEFAULT_NUM_SAMPLES))
    if num is not None:
        raise UserFacingError(
            "--num is for unconditional models; for a class-conditioned one use --classes and --per-class"
        )
    classes = list(range(checkpoint.num_classes)) if classes is None else list(classes)
    bad = [c for c in classes if not 0 <= c < checkpoint.num_classes]
    if bad or not classes:
        raise UserFacingError(f"classes must be in 0..{checkpoint.num_classes - 1}, got {classes}")
    per_class = 1 if per_class is None else per_class
    labels = torch.tensor(classes, dtype=torch.int64).repeat(per_class)
    guidance = DEFAULT_GUIDANCE if guidance is None else guidance
    return _Batch(len(classes) * per_class, labels, classes, per_class, guidance)


def _check_size(batch: int, steps: int, single_step: bool) -> None:
    """Refuse a run past the limits, or one whose frames would not fit in memory."""
    if out_of_range(batch, SAMPLES):
        raise UserFacingError(f"at most {SAMPLES[1]:,} samples in one run, asked for {batch:,}")
    if not single_step and out_of_range(steps, STEPS):
        raise UserFacingError(f"steps must be between {STEPS[0]} and {STEPS[1]:,}, got {steps:,}")
    # x_t, x̂0 and the estimate, CFG's two estimates and their gap (or the single-step run's clean
    # image), and a second evaluation (Heun, midpoint)
    check_run_fits(1 + steps, batch, MNIST_SHAPE, pictures_per_frame=7)


@dataclass
class SampleRequest:
    """Everything `diffusion-stepper sample mnist` and the app's Generate button ask for."""

    checkpoint: str = DEFAULT_CHECKPOINT
    classes: list[int] | None = None
    per_class: int | None = None  # class models: samples of each class (default 1)
    num: int | None = None
    guidance: float | None = None
    steps: int | None = None
    seed: int = 0
    sigma: float | None = None
    noisy_test: bool = False
    data_dir: str | None = None
    device: str = "auto"
    x0_clip: str | None = None  # none | static; default: the checkpoint's own choice
    sampler: str | None = None  # the step rule's name; default: the objective's own (ddpm or euler)
    eta: float | None = None  # DDIM's η

    def start(self) -> SamplingRun:
        return start_sampling(self)


def start_sampling(request: SampleRequest) -> SamplingRun:
    """Load the checkpoint (and test digits for --noisy-test), then compose the run."""

    device = resolve_device(request.device)
    checkpoint = load_checkpoint(request.checkpoint, device)
    clean_images = None
    if request.noisy_test:
        if not isinstance(checkpoint.objective, SingleStepObjective):
            raise UserFacingError("noisy test digits are for the single-step denoiser")

        clean_images, _ = load_mnist("test", request.data_dir).as_float(device, request.num or DEFAULT_NUM_SAMPLES)
    return sample_mnist(
        checkpoint,
        classes=request.classes,
        per_class=request.per_class,
        num=request.num,
        guidance=request.guidance,
        steps=request.steps,
        seed=request.seed,
        sigma=request.sigma,
        clean_images=clean_images,
        x0_clip=request.x0_clip,
        sampler=request.sampler,
        eta=request.eta,
    )
