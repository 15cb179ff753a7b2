"""MNIST training as a generator of events: loss events every few iterations, an epoch event per epoch.

The caller decides what to do between events: the CLI advances a progress bar, the GUI plots a
curve and shows the preview grids. Pausing is simply not asking for the next event; stopping is
closing the generator. Checkpoints are written only at epoch ends, atomically, so neither can
damage one. What a run is configured with is core.mnist.recipes; the pieces every training loop
shares (the clock, the loss window, the weights' average, the optimizer's state) are
core.training.loop.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from diffusion_stepper.core.devices import make_generator, resolve_device
from diffusion_stepper.core.diffusion.objectives import (
    DDPMObjective,
    Objective,
    SingleStepObjective,
    class_condition_with_dropout,
)
from diffusion_stepper.core.diffusion.sampling import pure_noise
from diffusion_stepper.core.errors import CheckpointError, UserFacingError
from diffusion_stepper.core.formats.pictures import write_sample_grid
from diffusion_stepper.core.limits import check_memory
from diffusion_stepper.core.mnist.checkpoints import (
    load_training_state,
    read_weights,
    resolve_checkpoint,
    samples_path,
    save_checkpoint,
)
from diffusion_stepper.core.mnist.data import MnistSplit, load_mnist
from diffusion_stepper.core.mnist.recipes import EPOCH_SAMPLE_STEPS, TrainConfig
from diffusion_stepper.core.mnist.sampling import (
    DEFAULT_GUIDANCE,
    MNIST_SHAPE,
    MNIST_VALUE_RANGE,
    compose_mnist_sampler,
)
from diffusion_stepper.core.mnist.unet import UNet
from diffusion_stepper.core.training.loop import (
    LossWindow,
    Stopwatch,
    WeightAverage,
    descend,
    optimizer_from_safetensors,
    optimizer_to_safetensors,
    out_of_memory_said,
    set_rate,
)

# With ema_decay > 0 a checkpoint's weights are the average; the weights being trained are kept
# in its training state under this prefix, to resume from.
TRAINED_WEIGHTS = "trained"
DIVERGED_ADVICE = "lower --lr or resume from the last checkpoint"


@dataclass
class LossEvent:
    epoch: int
    iteration: int  # iterations done so far, over all epochs
    loss: float  # mean over the iterations since the last event
    losses: list[float]  # each of those iterations' losses
    lr: float
    images_per_second: float
    epoch_iteration: int  # iterations done in this epoch
    epoch_iterations: int  # iterations in a whole epoch
    seconds: float = 0.0  # training time of this launch so far (see Stopwatch: pauses and previews not counted)


@dataclass
class PreviewEvent:
    """The sample grid drawn mid-epoch, every `preview_seconds` of training."""

    epoch: int
    iteration: int
    seconds: float  # training time of this launch at the weights it shows (drawing not counted)
    samples: torch.Tensor  # [N, 1, 28, 28] in [0, 1]
    sample_labels: torch.Tensor | None
    sampling: str


@dataclass
class EpochEvent:
    epoch: int
    iteration: int
    mean_loss: float
    checkpoint: Path  # the sidecar of this epoch's checkpoint
    samples: torch.Tensor | None  # [N, 1, 28, 28] in [0, 1] (clamped for display), or None
    samples_path: Path | None  # the same grid as a PNG beside the checkpoint
    sample_labels: torch.Tensor | None
    seconds: float
    sampling: str = ""  # how the samples were drawn, e.g. "seed 0, 50 strided DDPM steps, CFG γ = 5"


TrainEvent = LossEvent | PreviewEvent | EpochEvent


def epoch_sample_steps(config: TrainConfig, objective: Objective) -> int | None:
    """The steps an epoch's sample grid takes: at most EPOCH_SAMPLE_STEPS (strided), to stay quick;
    None for the single-step denoiser's one jump."""
    if isinstance(objective, SingleStepObjective):
        return None
    return config.epoch_sample_steps or min(EPOCH_SAMPLE_STEPS, objective.default_steps)


def epoch_sampling_text(config: TrainConfig, objective: Objective, class_conditioned: bool) -> str:
    """How the epoch grids are drawn, for their title: "seed 0, 50 strided DDPM steps, CFG γ = 5"."""
    steps = epoch_sample_steps(config, objective)
    if steps is None:
        how = "one jump of the denoiser"
    elif isinstance(objective, DDPMObjective):
        strided = "strided " if steps < objective.default_steps else ""
        how = f"{steps} {strided}DDPM steps"
    else:
        how = f"{steps} Euler steps"
    guidance = f", CFG γ = {DEFAULT_GUIDANCE:g}, one column per digit" if class_conditioned else ""
    return f"seed {config.seed}, {how}{guidance}"


def epoch_sample_grid(
    model: UNet, objective: Objective, config: TrainConfig, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The epoch's sample grid, always from the same seed so epochs compare like for like."""
    if config.epoch_samples <= 0:
        return None, None
    generator = make_generator(config.seed, device)
    labels = None
    count = config.epoch_samples
    if model.num_classes:
        per_class = max(1, config.epoch_samples // model.num_classes)
        labels = torch.arange(model.num_classes).repeat(per_class)
        count = labels.shape[0]
    steps = epoch_sample_steps(config, objective)
    x_start = pure_noise((count, *MNIST_SHAPE), generator, device)
    model.eval()
    try:
        for frame in compose_mnist_sampler(
            model, objective, x_start, generator, labels=labels, guidance=DEFAULT_GUIDANCE, steps=steps
        ):
            final = frame.x_t
    finally:
        model.train()
    low, high = MNIST_VALUE_RANGE
    return final.clamp(low, high), labels


def train_on_mnist(
    config: TrainConfig, out_dir: str | Path, data_dir: str | None = None, resume_from: str | Path | None = None
) -> Iterator[TrainEvent]:
    """Load MNIST's training split (on the caller's thread: the app's worker), then train."""
    yield from train(config, load_mnist("train", data_dir), out_dir, resume_from=resume_from)


def train(
    config: TrainConfig,
    data: MnistSplit,
    out_dir: str | Path,
    resume_from: str | Path | None = None,
) -> Iterator[TrainEvent]:
    """Train per `config` on `data`, writing one checkpoint per epoch to `out_dir`."""
    config.validate()
    watch = Stopwatch()
    device = resolve_device(config.device)
    if device.type == "cpu":  # on a GPU, running out is an exception we turn into one line; here it is the OOM killer
        check_memory(
            config.memory_estimate(),
            f"training a UNet of D = {config.hidden} on batches of {config.batch_size:,} digits",
            "use a smaller --batch-size or --hidden",
        )
    out_dir = Path(out_dir)
    if resume_from is None and any(out_dir.glob("epoch-*.json")):
        raise UserFacingError(
            f"{out_dir} already holds checkpoints of another run: choose a new output folder, or resume that run"
        )
    objective = config.build_objective()
    images, labels = data.as_float(device, config.limit)
    num_images = images.shape[0]
    if num_images == 0:
        raise UserFacingError("no training images (check --limit and the data directory)")
    model = config.build_model().to(device)
    averaged = WeightAverage(model, config.ema_decay)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = make_generator(config.seed, device)
    first_epoch, iteration = 1, 0
    if resume_from is not None:
        first_epoch, iteration, resumed = _restore(resume_from, config, averaged, optimizer, generator)
        resumed_grid = samples_path(resumed.parent, first_epoch - 1)
        if not resumed_grid.exists():  # lost to a kill after its sidecar was written by an older version
            samples, sample_labels = epoch_sample_grid(averaged.average, objective, config, device)
            if samples is not None:
                write_sample_grid(samples.cpu(), resumed_grid, sample_labels)

    batches_per_epoch = (num_images + config.batch_size - 1) // config.batch_size
    hyperparameters = dataclasses.asdict(config)
    sampling = epoch_sampling_text(config, objective, bool(model.num_classes))
    next_preview = config.preview_seconds
    for epoch in range(first_epoch, config.epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        window = LossWindow()
        epoch_loss_sum = torch.zeros((), device=device)
        order = torch.randperm(num_images, generator=generator, device=device)
        for batch_index in range(batches_per_epoch):
            index = order[batch_index * config.batch_size : (batch_index + 1) * config.batch_size]
            x = images[index]
            cond = None
            if model.num_classes:
                cond = class_condition_with_dropout(labels[index], model.num_classes, config.p_uncond, generator)
            set_rate(optimizer, config.learning_rate(epoch, iteration, batches_per_epoch))
            with out_of_memory_said(device, config.batch_size, f"epoch {epoch}, iteration {iteration + 1}"):
                loss = objective.training_loss(model, x, cond, generator)
                descend(optimizer, loss)
            averaged.update(iteration)
            iteration += 1
            window.add(loss, x.shape[0])
            epoch_loss_sum += loss.detach()
            last_batch = batch_index == batches_per_epoch - 1
            if len(window) >= config.log_every or last_batch:
                losses = window.read(iteration, DIVERGED_ADVICE, epoch)
                event = LossEvent(
                    epoch=epoch,
                    iteration=iteration,
                    loss=losses.mean,
                    losses=losses.values,
                    lr=optimizer.param_groups[0]["lr"],
                    images_per_second=losses.images_per_second,
                    epoch_iteration=batch_index + 1,
                    epoch_iterations=batches_per_epoch,
                    seconds=watch.seconds,
                )
                yield from watch.hand_over(event)
                window.restart()  # when the caller asks for more, so a pause is not counted
            if next_preview and watch.seconds >= next_preview and not last_batch:
                with watch.stopped():
                    samples, sample_labels = epoch_sample_grid(averaged.average, objective, config, device)
                if samples is not None:
                    preview = PreviewEvent(epoch, iteration, watch.seconds, samples.cpu(), sample_labels, sampling)
                    yield from watch.hand_over(preview)
                while next_preview <= watch.seconds:  # on the 4 s, 8 s, ... marks, skipping any missed
                    next_preview += config.preview_seconds
        mean_loss = float(epoch_loss_sum) / batches_per_epoch
        samples, sample_labels = epoch_sample_grid(averaged.average, objective, config, device)
        tensors, groups = optimizer_to_safetensors(optimizer)
        tensors["generator"] = generator.get_state()
        if averaged.enabled:  # the checkpoint's weights are the average; training resumes from these
            tensors.update({f"{TRAINED_WEIGHTS}.{key}": value for key, value in model.state_dict().items()})
        sidecar = {
            "architecture": config.architecture_spec(),
            "objective": objective.to_dict(),
            "hyperparameters": hyperparameters,
            "epochs": config.epochs,
            "iteration": iteration,
            "mean_loss": mean_loss,
            "lr": optimizer.param_groups[0]["lr"],
            "device": str(device),
            "data": {
                "dataset": "mnist",
                "split": "train",
                "images": num_images,
                "limit": config.limit,
                "value_range": MNIST_VALUE_RANGE,
            },
            "optimizer_param_groups": groups,
        }
        if averaged.enabled:
            sidecar["weights_are"] = f"an exponential moving average of the trained weights (decay {config.ema_decay})"
        # the grid before the sidecar: a checkpoint is complete when its sidecar exists, samples and all
        grid = (
            None if samples is None else write_sample_grid(samples.cpu(), samples_path(out_dir, epoch), sample_labels)
        )
        checkpoint = save_checkpoint(out_dir, epoch, averaged.average, sidecar, tensors)
        event = EpochEvent(
            epoch=epoch,
            iteration=iteration,
            mean_loss=mean_loss,
            checkpoint=checkpoint,
            samples=None if samples is None else samples.cpu(),
            samples_path=grid,
            sample_labels=sample_labels,
            sampling=sampling,
            seconds=time.perf_counter() - epoch_start,
        )
        yield from watch.hand_over(event)


def _restore(
    resume_from: str | Path,
    config: TrainConfig,
    averaged: WeightAverage,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> tuple[int, int, Path]:
    """Load a checkpoint's weights (and their average), optimizer and RNG state; returns the
    epoch to start at, the iterations done and the checkpoint's sidecar."""
    sidecar_path = resolve_checkpoint(resume_from)
    sidecar, state = load_training_state(sidecar_path)
    saved = read_weights(sidecar_path, sidecar)
    prefix = f"{TRAINED_WEIGHTS}."
    trained = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    try:
        averaged.average.load_state_dict(saved)
        if averaged.enabled:
            averaged.model.load_state_dict(trained or saved)
    except RuntimeError:
        raise CheckpointError(
            f"{sidecar_path}: its weights do not match this run's model ({config.model}, hidden {config.hidden})"
        ) from None
    try:
        optimizer_from_safetensors(optimizer, state, sidecar["optimizer_param_groups"])
        generator.set_state(state["generator"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(
            f"{sidecar_path}: its optimizer or random-number state does not fit this run ({str(exc).splitlines()[0]})"
        ) from None
    first_epoch = sidecar["epoch"] + 1
    if first_epoch > config.epochs:
        raise UserFacingError(
            f"{sidecar_path} already finished epoch {sidecar['epoch']} of {config.epochs}; pass a larger --epochs"
        )
    return first_epoch, sidecar["iteration"], sidecar_path
