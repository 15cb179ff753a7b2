"""Training as a generator of events: loss events every few iterations, an epoch event per epoch.

The caller decides what to do between events: the CLI advances a progress bar, the GUI plots a
curve and shows the preview grids. Pausing is simply not asking for the next event; stopping is
closing the generator. Checkpoints are written only at epoch ends, atomically, so neither can
damage one.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from diffusion_stepper.core import schema
from diffusion_stepper.core.devices import DEVICE_CHOICES, make_generator, resolve_device
from diffusion_stepper.core.diffusion.objectives import (
    DEFAULT_SIGMA,
    OBJECTIVES,
    P_UNCOND,
    DDPMObjective,
    FlowObjective,
    Objective,
    SingleStepObjective,
    class_condition_with_dropout,
)
from diffusion_stepper.core.diffusion.sampling import pure_noise
from diffusion_stepper.core.diffusion.schedules import DEFAULT_FLOW_STEPS, DEFAULT_T, LinearBetaSchedule
from diffusion_stepper.core.errors import CheckpointError, TrainingDiverged, UserFacingError
from diffusion_stepper.core.formats.pictures import write_sample_grid
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
    check_memory,
    out_of_range,
)
from diffusion_stepper.core.mnist.checkpoints import (
    load_training_state,
    read_weights,
    resolve_checkpoint,
    samples_path,
    save_checkpoint,
)
from diffusion_stepper.core.mnist.data import MnistSplit, load_mnist
from diffusion_stepper.core.mnist.sampling import (
    DEFAULT_GUIDANCE,
    MNIST_SHAPE,
    MNIST_VALUE_RANGE,
    compose_mnist_sampler,
)
from diffusion_stepper.core.mnist.unet import UNet, build_unet
from diffusion_stepper.core.paths import work_folder

MODEL_KINDS = ("single-step", "time", "class")
ARCHITECTURE_OF_MODEL = {"single-step": "unconditional", "time": "time", "class": "class"}
NUM_CLASSES = 10
EPOCH_SAMPLE_STEPS = 50  # epoch grids use at most this many steps, to keep them quick on a CPU
LR_SCHEDULES = ("exponential", "constant", "warmup-cosine")
# With ema_decay > 0 a checkpoint's weights are the average; the weights being trained are kept
# in its training state under this prefix, to resume from.
TRAINED_WEIGHTS = "trained"
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
        warmup = max(1, round(WARMUP_FRACTION * total))
        if done < warmup:
            return peak * (done + 1) / warmup
        progress = min(1.0, (done - warmup) / max(1, total - warmup))
        return peak * 0.5 * (1 + math.cos(math.pi * progress))

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
        # nn.Module initialisers draw from the global RNG; fork it so the caller's stays untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return build_unet(ARCHITECTURE_OF_MODEL[self.model], self.hidden, NUM_CLASSES)


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


class Stopwatch:
    """Seconds of training: it stops while the caller holds an event (a pause is not counted) and
    while a preview grid is drawn for the class, so a preview shows the weights at a round
    number of seconds of training. (Epoch grids and checkpoints count.)"""

    def __init__(self):
        self._banked, self._since = 0.0, time.perf_counter()

    @property
    def seconds(self) -> float:
        return self._banked + time.perf_counter() - self._since

    @contextmanager
    def stopped(self) -> Iterator[None]:
        self._banked = self.seconds
        try:
            yield
        finally:
            self._since = time.perf_counter()

    def hand_over(self, event: TrainEvent) -> Iterator[TrainEvent]:
        """Yield `event` with the clock stopped (use with `yield from`)."""
        with self.stopped():
            yield event


class WeightAverage:
    """An exponential moving average of a model's weights (its BatchNorm statistics copied as
    they are): the network the samples and checkpoints use when `ema_decay` > 0.

    The decay ramps up as min(decay, (1 + n) / (10 + n)) at iteration n, so the first, random
    weights are forgotten within a few steps instead of ~1 / (1 - decay).
    """

    def __init__(self, model: UNet, decay: float):
        self.model, self.decay = model, decay
        self.average = copy.deepcopy(model) if decay > 0 else model

    @property
    def enabled(self) -> bool:
        return self.average is not self.model

    @torch.no_grad()
    def update(self, iteration: int) -> None:
        if not self.enabled:
            return
        decay = min(self.decay, (1 + iteration) / (10 + iteration))
        for average, current in zip(self.average.parameters(), self.model.parameters()):
            average.lerp_(current, 1 - decay)
        for average, current in zip(self.average.buffers(), self.model.buffers()):
            average.copy_(current)


def _optimizer_to_safetensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    state = optimizer.state_dict()
    tensors = {}
    for param_index, param_state in state["state"].items():
        for key, value in param_state.items():
            tensors[f"optimizer.{param_index}.{key}"] = torch.as_tensor(value)
    return tensors, state["param_groups"]


def _optimizer_from_safetensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, param_index, name = key.split(".", 2)
            state.setdefault(int(param_index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


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


def _raise_out_of_memory(config: TrainConfig, device: torch.device, epoch: int, iteration: int) -> None:
    smaller = max(1, config.batch_size // 2)
    raise UserFacingError(
        f"out of {device.type.upper()} memory at batch size {config.batch_size} (epoch {epoch}, iteration "
        f"{iteration}); "
        f"try a smaller batch size, such as {smaller}"
    ) from None


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    message = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in message or "can't allocate memory" in message)


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


def default_run_folder(model: str, objective: str) -> Path:
    """A new folder under the work folder for a run, e.g. mnist-class-ddpm-20261123-142500."""
    name = f"mnist-{model}" if model == "single-step" else f"mnist-{model}-{objective}"
    return work_folder(f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")


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
        window_start, window_losses, window_images = epoch_start, [], 0
        epoch_loss_sum = torch.zeros((), device=device)
        order = torch.randperm(num_images, generator=generator, device=device)
        for batch_index in range(batches_per_epoch):
            index = order[batch_index * config.batch_size : (batch_index + 1) * config.batch_size]
            x = images[index]
            cond = None
            if model.num_classes:
                cond = class_condition_with_dropout(labels[index], model.num_classes, config.p_uncond, generator)
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate(epoch, iteration, batches_per_epoch)
            try:
                loss = objective.training_loss(model, x, cond, generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            except (RuntimeError, torch.OutOfMemoryError) as exc:
                if _is_out_of_memory(exc):
                    _raise_out_of_memory(config, device, epoch, iteration + 1)
                raise
            averaged.update(iteration)
            iteration += 1
            window_losses.append(loss.detach())
            window_images += x.shape[0]
            epoch_loss_sum += loss.detach()
            last_batch = batch_index == batches_per_epoch - 1
            if len(window_losses) >= config.log_every or last_batch:
                values = torch.stack(window_losses).tolist()  # one device sync per window
                _check_finite(values, epoch, iteration - len(values) + 1)
                event = LossEvent(
                    epoch=epoch,
                    iteration=iteration,
                    loss=sum(values) / len(values),
                    losses=values,
                    lr=optimizer.param_groups[0]["lr"],
                    images_per_second=window_images / max(time.perf_counter() - window_start, 1e-9),
                    epoch_iteration=batch_index + 1,
                    epoch_iterations=batches_per_epoch,
                    seconds=watch.seconds,
                )
                yield from watch.hand_over(event)
                # The window restarts when the caller asks for more, so a pause is not counted.
                window_start, window_losses, window_images = time.perf_counter(), [], 0
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
        tensors, groups = _optimizer_to_safetensors(optimizer)
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


def _check_finite(losses: list[float], epoch: int, first_iteration: int) -> None:
    for offset, value in enumerate(losses):
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"loss became {value} at epoch {epoch}, iteration {first_iteration + offset}; "
                "lower --lr or resume from the last checkpoint"
            )


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
        _optimizer_from_safetensors(optimizer, state, sidecar["optimizer_param_groups"])
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
