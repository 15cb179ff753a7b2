"""MNIST's training recipes: what a run is configured with (`TrainConfig`: the model, the
objective and the hyperparameters, checked and recorded in each checkpoint's sidecar), the
course's recipe and the quick one, the learning rate's schedules, and the configuration a
checkpoint was trained with, to go on from it. The loop that trains by them is core.mnist.training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from diffusion_stepper.core import schema
from diffusion_stepper.core.devices import DEVICE_CHOICES
from diffusion_stepper.core.diffusion.objectives import (
    DEFAULT_SIGMA,
    OBJECTIVES,
    P_UNCOND,
    DDPMObjective,
    FlowObjective,
    Objective,
    SingleStepObjective,
)
from diffusion_stepper.core.diffusion.schedules import DEFAULT_FLOW_STEPS, DEFAULT_T, LinearBetaSchedule
from diffusion_stepper.core.errors import CheckpointError, UserFacingError
from diffusion_stepper.core.limits import (
    BATCH_SIZE,
    BELOW_ONE,
    CHAIN_LENGTH,
    EPOCHS,
    FLOW_STEPS,
    HIDDEN,
    LEARNING_RATE,
    NOISE_SIGMA,
    SAMPLES,
    SEED,
    STEPS,
    out_of_range,
)
from diffusion_stepper.core.mnist.checkpoints import load_training_state, resolve_checkpoint
from diffusion_stepper.core.mnist.sampling import MNIST_SHAPE
from diffusion_stepper.core.mnist.unet import UNet, build_unet
from diffusion_stepper.core.paths import work_folder
from diffusion_stepper.core.training.loop import cosine_rate, seeded

MODEL_KINDS = ("single-step", "time", "class")
ARCHITECTURE_OF_MODEL = {"single-step": "unconditional", "time": "time", "class": "class"}
NUM_CLASSES = 10
EPOCH_SAMPLE_STEPS = 50  # epoch grids use at most this many steps, to keep them quick on a CPU
LR_SCHEDULES = ("exponential", "constant", "warmup-cosine")
WARMUP_FRACTION = 0.05  # warmup-cosine: the rate rises linearly over the first 5% of the iterations
# "Keep training" (`--epochs +N`) runs the schedule again over the epochs it adds, from this share
# of the rate: a warm restart (SGDR) low enough not to undo what the first run learnt.
CONTINUED_LR_FRACTION = 0.3


@dataclass
class TrainConfig:
    model: str  # single-step | time | class
    objective: str  # single-step | ddpm | flow
    epochs: int
    hidden: int
    batch_size: int
    lr: float
    # exponential: the course's ExponentialLR stepped after each epoch, lr x 0.1^((epoch - 1) / epochs);
    # constant; or warmup-cosine: a linear warm-up, then a cosine fall to zero over the run's iterations
    lr_schedule: str = "exponential"
    ema_decay: float = 0.0  # sample from an exponential moving average of the weights (0: the weights)
    seed: int = 0
    device: str = "auto"
    limit: int | None = None  # train on the first `limit` images
    sigma: float = DEFAULT_SIGMA  # single-step noise level
    pure_noise: bool = False  # single-step: learn to "denoise" pure noise (z = eps)
    T: int = DEFAULT_T  # DDPM chain length
    num_ts: int = DEFAULT_FLOW_STEPS  # flow-matching sampling steps
    p_uncond: float = P_UNCOND
    log_every: int = 10
    epoch_samples: int = 40  # 4 of each digit for class models; 0 turns the epoch grid off
    epoch_sample_steps: int | None = None  # default: min(EPOCH_SAMPLE_STEPS, the objective's own)
    preview_seconds: float = 0.0  # also sample that grid every this many seconds of training (0: never)
    # Kept training (`--epochs +N`): the epochs done before the added ones. The rate's schedule
    # starts again at the next epoch, from CONTINUED_LR_FRACTION of lr, over the added epochs only.
    continued_after_epoch: int = 0

    @classmethod
    def from_hyperparameters(cls, hyperparameters: dict) -> TrainConfig:
        """The config a sidecar recorded, including those written before lr_schedule existed;
        raises `SchemaError` naming a field that is missing, unknown, or of the wrong type or range."""
        values = hyperparameter_reader()(hyperparameters, "hyperparameters")
        if "lr_decay" in values:
            values["lr_schedule"] = "exponential" if values.pop("lr_decay") else "constant"
        return cls(**values)

    def validate(self) -> None:
        if self.model not in MODEL_KINDS:
            raise UserFacingError(f"unknown model kind {self.model!r}; use one of {', '.join(MODEL_KINDS)}")
        if (self.model == "single-step") != (self.objective == "single-step"):
            raise UserFacingError(
                "the single-step model trains only the single-step objective, and time/class models train ddpm or flow"
            )
        for name in ("epochs", "hidden", "batch_size", "log_every"):
            if getattr(self, name) <= 0:
                raise UserFacingError(f"{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.lr <= 0:
            raise UserFacingError(f"lr must be positive, got {self.lr}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise UserFacingError(f"unknown lr schedule {self.lr_schedule!r}; use one of {', '.join(LR_SCHEDULES)}")
        if not 0 <= self.ema_decay < 1:
            raise UserFacingError(f"ema-decay must be in [0, 1), got {self.ema_decay}")
        if self.limit is not None and self.limit <= 0:
            raise UserFacingError(f"limit must be positive, got {self.limit}")
        if not 0 <= self.p_uncond < 1:
            raise UserFacingError(f"p-uncond must be in [0, 1), got {self.p_uncond}")
        for name, bounds in (("epochs", EPOCHS), ("hidden", HIDDEN), ("batch_size", BATCH_SIZE)):
            value = getattr(self, name)
            if out_of_range(value, bounds):
                flag = name.replace("_", "-")
                raise UserFacingError(f"{flag} must be between {bounds[0]:,} and {bounds[1]:,}, got {value:,}")

    def memory_estimate(self) -> int:
        """Bytes a training step holds at its peak on the CPU. The course's UNet keeps about 25
        feature maps of D channels per digit for the backward pass, at 28×28, 14×14 and 7×7:
        measured at 97-127 kB per digit per unit of D (B = 64 to 512, D = 16 to 128), plus torch's
        working buffers; the weights count four times (themselves, their gradients and Adam's two
        moments). It errs high, by up to a third."""
        activation_bytes_per_digit_per_channel, working_bytes = 120_000, 150_000_000
        weights = 500 * self.hidden * self.hidden  # 2.0 M parameters at D = 64, 8.1 M at D = 128
        activations = activation_bytes_per_digit_per_channel * self.batch_size * self.hidden
        return activations + working_bytes + 4 * 4 * weights

    def learning_rate(self, epoch: int, iteration: int, iterations_per_epoch: int) -> float:
        """The rate for `iteration` (0-based, over the whole run), which falls in `epoch` (1-based).
        A kept-training run's schedule covers only its added epochs (`continued_after_epoch`),
        from CONTINUED_LR_FRACTION of the rate."""
        before = self.continued_after_epoch
        peak = self.lr * (CONTINUED_LR_FRACTION if before else 1.0)
        if self.lr_schedule == "constant":
            return peak
        if self.lr_schedule == "exponential":
            return peak * 0.1 ** ((epoch - 1 - before) / (self.epochs - before))
        # warmup-cosine over this schedule's own iterations (never before its start: a resumed
        # run's epochs may be shorter, if its data folder holds fewer digits)
        done = max(0, iteration - before * iterations_per_epoch)
        total = (self.epochs - before) * iterations_per_epoch
        return cosine_rate(peak, done, total, warmup=max(1, round(WARMUP_FRACTION * total)))

    def build_objective(self) -> Objective:
        if self.objective == "single-step":
            return SingleStepObjective(self.sigma, self.pure_noise)
        if self.objective == "ddpm":
            return DDPMObjective(LinearBetaSchedule.create(self.T))
        if self.objective == "flow":
            return FlowObjective(self.num_ts)
        raise UserFacingError(f"unknown objective {self.objective!r}; use ddpm or flow")

    def architecture_spec(self) -> dict:
        """The sidecar's description of the network, enough for `build_unet` to rebuild it."""
        spec = {
            "name": ARCHITECTURE_OF_MODEL[self.model],
            "hidden": self.hidden,
            "in_channels": MNIST_SHAPE[0],
            "image_size": MNIST_SHAPE[1],
        }
        if self.model == "class":
            spec["num_classes"] = NUM_CLASSES
        return spec

    def build_model(self) -> UNet:
        """A freshly initialised UNet; its weights depend only on the seed."""
        return seeded(self.seed, lambda: build_unet(ARCHITECTURE_OF_MODEL[self.model], self.hidden, NUM_CLASSES))


def hyperparameter_reader() -> schema.Reader:
    """What a sidecar's recorded `TrainConfig` must hold to be trained on (`--resume`)."""

    positive_integer = schema.number(1, integer=True)
    fields = {
        "model": schema.text(MODEL_KINDS),
        "objective": schema.text(OBJECTIVES),
        "epochs": schema.number(*EPOCHS, integer=True),
        "hidden": schema.number(*HIDDEN, integer=True),
        "batch_size": schema.number(*BATCH_SIZE, integer=True),
        "lr": schema.number(*LEARNING_RATE),
        "lr_schedule": schema.text(LR_SCHEDULES),
        "lr_decay": schema.boolean,  # before lr_schedule existed
        "ema_decay": schema.number(*BELOW_ONE),
        "seed": schema.number(*SEED, integer=True),
        "device": schema.text(DEVICE_CHOICES),
        "limit": schema.optional(positive_integer),
        "sigma": schema.number(*NOISE_SIGMA),
        "pure_noise": schema.boolean,
        "T": schema.number(*CHAIN_LENGTH, integer=True),
        "num_ts": schema.number(*FLOW_STEPS, integer=True),
        "p_uncond": schema.number(*BELOW_ONE),
        "log_every": positive_integer,
        "epoch_samples": schema.number(0, SAMPLES[1], integer=True),
        "epoch_sample_steps": schema.optional(schema.number(*STEPS, integer=True)),
        "preview_seconds": schema.number(0),
        "continued_after_epoch": schema.number(0, EPOCHS[1], integer=True),
    }
    return schema.record(fields, required=("model", "objective", "epochs", "hidden", "batch_size", "lr"), others=None)


def recipe(model: str, objective: str | None = None) -> TrainConfig:
    """The course's hyperparameters for a model kind (and objective, for time/class models)."""
    if model == "single-step":
        return TrainConfig(
            "single-step", "single-step", epochs=5, hidden=128, batch_size=256, lr=1e-4, lr_schedule="constant"
        )
    objective = objective or "ddpm"
    if objective == "ddpm":
        return TrainConfig(model, "ddpm", epochs=20, hidden=64, batch_size=128, lr=1e-3)
    if objective == "flow":
        return TrainConfig(model, "flow", epochs=10, hidden=64, batch_size=64, lr=1e-2)
    raise UserFacingError(f"unknown objective {objective!r}; use ddpm or flow")


PRESETS = ("course", "quick")


PRESET_OBJECTIVES = {"course": "ddpm", "quick": "flow"}  # each preset's objective when none is named
# What the quick preset does and how long it takes, as bench/quick_training.py and
# bench/app_training.py measured it (the wall times of its runs in bench/RESULTS.md, launch to
# exit; a test holds the two together): the text the Train tab's tip and `train mnist --help` show.
QUICK_SUMMARY = (
    "the course UNet at D = 16, flow matching, 4 epochs of 6,400 digits: 38–43 s from the command line "
    "on a 2-core CPU, and 99–100% of its digits read right over five sampling seeds (bench/RESULTS.md); "
    "in the app, which trains it in a process of its own, within 1.1× of that"
)


def preset_config(preset: str, model: str = "class", objective: str | None = None) -> TrainConfig:
    """The course recipe, or the quick one: the course's UNet and objective, tuned to draw digits
    within a minute on a laptop CPU (for lectures without a GPU; bench/quick_training.py).

    Quick keeps the UNet at D = 16 and makes each of its 25,600 training images (4 epochs of the
    first 6,400 digits) count: small batches (more steps), a rate of 7e-3 warmed up then
    cosine-decayed to zero, and samples drawn from an average of the weights (over its 800
    iterations the average's warm-up, min(decay, (1 + n) / (10 + n)), stays below 0.995, so the
    rate's fall to zero does most of the smoothing). Tried against 24 other recipes at five sampling
    seeds (issue 31): more digits beat more epochs of fewer, batch 64 and D = 24 or 32 lost at
    equal time, and a larger rate (1e-2, 2e-2) or D = 12 read worse at some seed.
    """
    if preset not in PRESETS:
        raise UserFacingError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    if model != "single-step":
        objective = objective or PRESET_OBJECTIVES[preset]
    config = recipe(model, objective)
    if preset == "quick":
        config.hidden, config.batch_size, config.limit, config.epochs = 16, 32, 6400, 4
        config.lr, config.lr_schedule, config.ema_decay = 7e-3, "warmup-cosine", 0.995
        # Its grids (each epoch's, and the Train tab's every few seconds) take 10 steps: half the
        # time of 20, and by eye the same digits (issue 31); the judge's figures are for 20.
        config.epoch_samples, config.epoch_sample_steps = 20, 10
        if config.objective == "flow":
            config.num_ts = 20
        if model == "single-step":
            config.lr = 1e-3  # the course's 1e-4 suits 5 epochs of 60,000 images, not 25,600
    return config


def config_for_resume(
    checkpoint: str | Path, epochs: int | None = None, device: str | None = None, more_epochs: int | None = None
) -> TrainConfig:
    """The configuration a checkpoint was trained with, to go on from it: up to `epochs` on the
    run's own schedule (a stopped run finishes as if never stopped), or `more_epochs` after the
    checkpoint's epoch on a schedule of their own ("Keep training": see CONTINUED_LR_FRACTION)."""
    sidecar_path = resolve_checkpoint(checkpoint)
    sidecar, _ = load_training_state(sidecar_path)
    try:
        config = TrainConfig.from_hyperparameters(sidecar["hyperparameters"])
    except schema.SchemaError as exc:
        raise CheckpointError(f"{sidecar_path}: cannot resume from it ({exc})") from None
    if epochs is not None and more_epochs is not None:
        raise UserFacingError("give the epochs to train up to, or the epochs to add (+N), not both")
    if epochs is not None:
        config.epochs = epochs
    if more_epochs is not None:
        if more_epochs <= 0:
            raise UserFacingError(f"epochs to add must be positive, got +{more_epochs}")
        done = sidecar["epoch"]
        if out_of_range(done + more_epochs, EPOCHS):
            raise UserFacingError(f"{done} epochs done + {more_epochs} is over the {EPOCHS[1]:,} epochs a run may have")
        config.epochs, config.continued_after_epoch = done + more_epochs, done
    if device is not None:
        config.device = device
    return config


def default_run_folder(model: str, objective: str) -> Path:
    """A new folder under the work folder for a run, e.g. mnist-class-ddpm-20261123-142500."""
    name = f"mnist-{model}" if model == "single-step" else f"mnist-{model}-{objective}"
    return work_folder(f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
