"""The part B experiments of CS180 as runs: each is a list of requests, each request starts a run.

The GUI's Experiments menu and `diffusion-stepper experiment mnist NAME` read the same registry
(one `core.experiments.Experiments`, as every family's), so every one-click view in the app can
be reproduced (and saved) from the command line.

Two of them are not sampling runs but sweeps over the noise level sigma of test digits:
frame k holds the digits noised at sigmas[k], z = x + sigma * eps, with one eps for all frames,
so the frames differ only in sigma. The noising process shows z and the eps that was added; the
single-step denoiser adds its one-jump estimate D(z) and its implied noise (z - D(z)) / sigma.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from diffusion_stepper.core.devices import make_generator, resolve_device
from diffusion_stepper.core.diffusion.objectives import SingleStepObjective
from diffusion_stepper.core.diffusion.rules.catalogue import EPS_SAMPLERS, FLOW_SAMPLERS, steps_for_budget
from diffusion_stepper.core.diffusion.rules.single_step import SingleStepDenoise
from diffusion_stepper.core.diffusion.sampling import NetworkPredictor
from diffusion_stepper.core.diffusion.theory import CLEAN_EXTRA
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.experiments import Experiment, Experiments
from diffusion_stepper.core.frames import FORWARD_NOISED, Frame, SamplingRun, to_cpu
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint, saved_epochs
from diffusion_stepper.core.mnist.data import load_mnist
from diffusion_stepper.core.mnist.sampling import MNIST_VALUE_RANGE, SampleRequest, start_sampling

COURSE_SIGMAS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)
RACE_BUDGET = 10  # model evaluations per sampler in a race, unless told otherwise
RACE_BUDGETS_IN_MENU = (10, 50)
GUIDANCE_SWEEP = (0.0, 5.0, 10.0)
NOISING = "noising"

PURE_NOISE_NOTE = (
    "Denoising pure noise: this single-step denoiser was trained with an L2 loss to map pure noise ε "
    "to a training digit x. The input says nothing about which digit to draw, and the output that "
    "minimises the expected squared error is the average of all training digits: a blurry mean digit, "
    "nearly the same whatever the noise."
)
OOD_NOTE = (
    "Out of distribution: the denoiser saw only σ = {trained} in training. Near that level it "
    "recovers the digit; far below it, it invents strokes, and far above, it falls back to an "
    "average digit."
)


def one_test_digit_each(count: int, data_dir: str | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The first test image of each digit 0-9 (then the next ones, up to `count`), and labels."""

    images, labels = load_mnist("test", data_dir).as_float(device)
    picks: list[int] = []
    seen = dict.fromkeys(range(10), 0)
    while len(picks) < count:
        digit = len(picks) % 10
        matches = (labels == digit).nonzero().flatten()
        picks.append(int(matches[seen[digit] % len(matches)]))
        seen[digit] += 1
    index = torch.tensor(picks, device=device)
    return images[index], labels[index].cpu()


def sigma_sweep_frames(
    clean: torch.Tensor,
    sigmas: Sequence[float],
    generator: torch.Generator,
    denoise: NetworkPredictor | None = None,
) -> Iterator[Frame]:
    """One frame per sigma: the noised digits, and either the noise itself or the denoiser's output."""
    noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    step = SingleStepDenoise()
    for index, sigma in enumerate(sigmas):
        noisy = clean + float(sigma) * noise
        if denoise is None:
            x0_hat, noise_hat, coeffs = clean, noise, {"sigma": float(sigma)}
        else:
            result = step(noisy, sigma, 0.0, denoise(noisy, sigma, None), generator)
            x0_hat, noise_hat, coeffs = result.x0_hat, result.noise_hat, result.coeffs
        yield Frame(
            index=index,
            t=float(sigma),
            x_t=to_cpu(noisy),
            x0_hat=to_cpu(x0_hat),
            eps_hat=to_cpu(noise_hat),
            coeffs={"t": float(sigma), FORWARD_NOISED: 1.0, **coeffs},
            extras={CLEAN_EXTRA: to_cpu(clean)} if index == 0 else {},
        )


@dataclass
class SigmaSweepRequest:
    """Test digits noised at each sigma; with a checkpoint, the single-step denoiser on each."""

    checkpoint: str | None = None  # None: the noising process alone
    sigmas: Sequence[float] = COURSE_SIGMAS
    num: int = 10
    seed: int = 0
    data_dir: str | None = None
    device: str = "auto"

    def start(self) -> SamplingRun:
        if not self.sigmas or any(sigma < 0 for sigma in self.sigmas):
            raise UserFacingError(f"sigmas must be a list of values >= 0, got {list(self.sigmas)}")
        device = resolve_device(self.device)
        clean, labels = one_test_digit_each(self.num, self.data_dir, device)
        generator = make_generator(self.seed, device)
        params: dict = {
            "sigmas": [float(s) for s in self.sigmas],
            "num_samples": self.num,
            "source": "noised test digits",
        }
        if self.checkpoint is None:
            frames = sigma_sweep_frames(clean, self.sigmas, generator)
            meta = {"algorithm": NOISING, "model": "MNIST test digits", "checkpoint": ""}
            note = "The noising process z = x + σ·ε at each σ, with the same ε throughout; the noise panel shows ε."
        else:
            checkpoint = load_checkpoint(self.checkpoint, device)
            if not isinstance(checkpoint.objective, SingleStepObjective):
                raise UserFacingError(f"{checkpoint.name} is not a single-step denoiser; the σ sweep needs one")
            predictor = NetworkPredictor(checkpoint.model, checkpoint.objective)
            frames = sigma_sweep_frames(clean, self.sigmas, generator, predictor)
            meta = {"algorithm": "single-step", "model": checkpoint.name, "checkpoint": str(checkpoint.sidecar_path)}
            note = OOD_NOTE.format(trained=f"{checkpoint.objective.sigma:g}")
            params["objective"] = checkpoint.objective.to_dict()
        meta.update(seed=self.seed, params=params, value_range=MNIST_VALUE_RANGE, device=str(device), note=note)
        return SamplingRun(frames, meta, labels, len(self.sigmas))


@dataclass
class NotedRequest:
    """A sample request whose run carries a note to show beside it."""

    request: SampleRequest
    note: str

    def start(self) -> SamplingRun:
        run = start_sampling(self.request)
        run.meta["note"] = self.note
        return run


@dataclass
class ExperimentOptions:
    seed: int = 0
    device: str = "auto"
    steps: int | None = None  # sampling steps of the sampling runs (default: each model's own)
    data_dir: str | None = None
    # the models the experiments use: the bundled ones unless told otherwise
    single_step_checkpoint: str = "mnist-single-step"
    pure_noise_checkpoint: str = "mnist-pure-noise"
    ddpm_checkpoint: str = "mnist-class-ddpm"
    flow_checkpoint: str = "mnist-class-flow"
    nfe: int = RACE_BUDGET  # the sampler races: model evaluations each sampler may spend
    guidance: float | None = None  # the sampler races: CFG's γ (default: the sampler's own, 5)
    run_dir: str | None = None  # for the epoch comparison: a training run's folder
    epochs: Sequence[int] | None = None  # default: up to four of the run's saved epochs, first to last


def _noising(options: ExperimentOptions) -> list:
    return [SigmaSweepRequest(None, seed=options.seed, data_dir=options.data_dir, device=options.device)]


def _out_of_distribution(options: ExperimentOptions) -> list:
    return [
        SigmaSweepRequest(
            options.single_step_checkpoint, seed=options.seed, data_dir=options.data_dir, device=options.device
        )
    ]


def _pure_noise(options: ExperimentOptions) -> list:
    request = SampleRequest(checkpoint=options.pure_noise_checkpoint, num=10, seed=options.seed, device=options.device)
    return [NotedRequest(request, PURE_NOISE_NOTE)]


def _guidance_sweep(options: ExperimentOptions) -> list:
    return [
        SampleRequest(
            options.ddpm_checkpoint, guidance=scale, steps=options.steps, seed=options.seed, device=options.device
        )
        for scale in GUIDANCE_SWEEP
    ]


def _ddpm_vs_flow(options: ExperimentOptions) -> list:
    return [
        SampleRequest(checkpoint=name, steps=options.steps, seed=options.seed, device=options.device)
        for name in (options.ddpm_checkpoint, options.flow_checkpoint)
    ]


def race_requests(checkpoint: str, samplers, options: ExperimentOptions, flow: bool) -> list[SampleRequest]:
    """One run per sampler from the same starting noise (the same seed draws the same x_T), each
    with as many steps as `options.nfe` model evaluations buy it; DDIM at η = 0."""
    return [
        SampleRequest(
            checkpoint,
            sampler=name,
            eta=0.0 if name == "ddim" else None,
            steps=steps_for_budget(name, options.nfe, flow),
            guidance=options.guidance,
            seed=options.seed,
            device=options.device,
        )
        for name in samplers
    ]


def _samplers(options: ExperimentOptions) -> list:
    return race_requests(options.ddpm_checkpoint, EPS_SAMPLERS, options, flow=False)


def _flow_samplers(options: ExperimentOptions) -> list:
    return race_requests(options.flow_checkpoint, FLOW_SAMPLERS, options, flow=True)


def spread_of_epochs(epochs: Sequence[int], count: int = 4) -> list[int]:
    """Up to `count` of a run's saved epochs, evenly spread from the first to the last."""
    epochs = sorted(epochs)
    if len(epochs) <= count:
        return epochs
    return sorted({epochs[round(i * (len(epochs) - 1) / (count - 1))] for i in range(count)})


def epoch_checkpoints(run_dir: str | Path, epochs: Sequence[int] | None = None) -> list[Path]:
    """The sidecars of the chosen epochs of a training run (default: a spread of those saved);
    one clear error for any missing."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise UserFacingError(f"{folder}: no such folder (give a training run's folder)")
    saved = saved_epochs(folder)
    if not saved:
        raise UserFacingError(f"{folder} holds no finished epoch: train the run for at least one epoch")
    epochs = spread_of_epochs(saved) if epochs is None else epochs
    missing = [epoch for epoch in epochs if epoch not in saved]
    if missing:
        raise UserFacingError(
            f"{folder} has no checkpoint for epoch {', '.join(map(str, missing))}; it has epochs "
            f"{', '.join(map(str, saved))}"
        )
    return [saved[epoch] for epoch in epochs]


def _epochs(options: ExperimentOptions) -> list:
    if not options.run_dir:
        raise UserFacingError("the epoch comparison needs a training run's folder (--run-dir)")
    return [
        SampleRequest(checkpoint=str(path), steps=options.steps, seed=options.seed, device=options.device)
        for path in epoch_checkpoints(options.run_dir, options.epochs)
    ]


EXPERIMENTS = Experiments(
    "experiment",
    (
        Experiment("noising", "Noising process at σ = 0 … 1", _noising),
        Experiment("out-of-distribution", "Single-step denoiser across σ (out of distribution)", _out_of_distribution),
        Experiment("pure-noise", "Single-step denoiser on pure noise", _pure_noise),
        Experiment("guidance-sweep", "Guidance sweep γ = 0, 5, 10", _guidance_sweep, compare=True),
        Experiment("ddpm-vs-flow", "DDPM against flow matching, same seed", _ddpm_vs_flow, compare=True),
        Experiment("epochs", "Epochs of a training run, side by side", _epochs, compare=True),
        Experiment(
            "samplers", "Samplers race: DDPM, DDIM, DPM-Solver++, Euler, Heun", _samplers, compare=True, race=True
        ),
        Experiment(
            "flow-samplers", "Flow samplers race: Euler, Heun, midpoint", _flow_samplers, compare=True, race=True
        ),
    ),
)
