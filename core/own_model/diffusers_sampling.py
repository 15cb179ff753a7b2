"""A diffusers DDPM/DDIM folder sampled with our own loop and step rules, on its scheduler's terms.

The pieces (see core.diffusion.sampling):

- schedule: the scheduler's alphas_cumprod, indexed by diffusers' t (t = -1 is clean data);
- timesteps: the scheduler's own `set_timesteps(N)` (its spacing and steps_offset), then the clean end;
- denoiser adapter: `DiffusersPredictor`, the UNet called with the integer timestep as UNet2DModel
  expects; an x̂₀ ("sample") or v output becomes the ε it implies, so every ε sampler takes it;
- step rule: any ε sampler of the catalogue, with the scheduler's x̂₀ clipping or thresholding and,
  for DDPM, its variance (fixed_small: β̃, fixed_large: β) and its noise on every step from t > 0;
  DDIM steps to t − T//N as DDIMScheduler does, with the model's own ε̂ beside the clipped x̂₀;
- start: x_T drawn as the pipelines draw it, torch.randn on the CPU from a generator seeded with
  the seed, shape (num, C, H, W).

So on the CPU, a DDPM run equals DDPMPipeline, and a DDIM run (η = 0 or not) DDIMPipeline, called
with `generator=torch.Generator().manual_seed(seed)`. On a GPU x_T is the same, and the steps' fresh
noise comes from the GPU's own generator (the pipelines would draw it on the CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from diffusion_stepper.core.devices import make_generator
from diffusion_stepper.core.diffusion.rules.catalogue import EPS_SAMPLERS, check_sampler_choice, make_eps_step_rule
from diffusion_stepper.core.diffusion.rules.x0 import FixedVariance, PosteriorVariance, scheduler_x0_clip, x0_clip_name
from diffusion_stepper.core.diffusion.sampling import (
    Evaluate,
    PlainEstimate,
    StepResult,
    StepRule,
    pure_noise,
    run_sampler,
)
from diffusion_stepper.core.diffusion.schedules import DIFFUSERS_CLEAN_T, DiscreteSchedule, scheduler_timesteps
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.frames import SamplingRun
from diffusion_stepper.core.limits import SAMPLES, check_run_fits, out_of_range
from diffusion_stepper.core.own_model.diffusers_folder import (
    DiffusersModel,
    FolderConfig,
    load_diffusers_model,
    read_folder,
)

CLEAN_T = DIFFUSERS_CLEAN_T  # the chain's clean end in diffusers' indexing (ᾱ = 1)
DEFAULT_STEPS = 50  # DDIMPipeline's; DDPM takes the folder's num_train_timesteps, as DDPMPipeline does
DEFAULT_NUM_SAMPLES = 4
VALUE_RANGE = [-1.0, 1.0]


class DiffusersPredictor:
    """(x, t) -> ε̂ from a UNet2DModel: ε̂ itself, or the ε an x̂₀ or a v output implies at t,
    ε = (x_t − √ᾱ_t·x̂₀)/√(1 − ᾱ_t) and ε = √ᾱ_t·v + √(1 − ᾱ_t)·x_t."""

    def __init__(self, unet: torch.nn.Module, prediction_type: str, schedule: DiscreteSchedule):
        self.unet = unet
        self.prediction_type = prediction_type
        self.schedule = schedule

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, t: float, cond: torch.Tensor | None) -> torch.Tensor:
        output = self.unet(x, torch.tensor(int(t), device=x.device), return_dict=False)[0]
        if self.prediction_type == "epsilon":
            return output
        alpha_bar = self.schedule.alpha_bar(int(t))
        signal, noise = math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)
        if self.prediction_type == "sample":
            return (x - signal * output) / noise
        return signal * output + noise * x


class SchedulerTargets:
    """DDIMScheduler's step from t lands at ᾱ of t − T//N (the final ᾱ below 0: 1, or ᾱ_0 without
    set_alpha_to_one), whatever timestep the list visits next ("trailing" and "linspace" spacing
    can differ from it). The frame records the next frame's t as t_next, so its update still checks
    against the next x_t, and says where ᾱ_t′ was taken."""

    def __init__(self, rule: StepRule, targets: dict[int, int]):
        self.rule = rule
        self.noise_field = rule.noise_field
        self.targets = targets

    def __call__(
        self,
        x_t: torch.Tensor,
        t: float,
        t_next: float,
        estimate: torch.Tensor,
        generator: torch.Generator,
        evaluate: Evaluate | None = None,
    ) -> StepResult:
        target = self.targets[int(t)]
        result = self.rule(x_t, t, target, estimate, generator, evaluate)
        if target != int(t_next) and result.update is not None:
            result.coeffs.update(t_next=float(t_next), t_target=float(target))
            note = f"   (ᾱ_t′ taken at t = {target}, as DDIMScheduler steps: t − T//N, or its final ᾱ)"
            result.update = replace(result.update, formula=result.update.formula + note)
        return result


def chain_timesteps(model: DiffusersModel, sampler: str, steps: int) -> list[int]:
    """The scheduler's own `set_timesteps(steps)` list, then where the chain ends: the clean end,
    or for DDIM where DDIMScheduler's last step lands (ᾱ_0 without set_alpha_to_one)."""
    timesteps = scheduler_timesteps(model.scheduler, steps)
    end = ddim_targets(model, steps, timesteps)[timesteps[-1]] if sampler == "ddim" else CLEAN_T
    return timesteps + [end]


def ddim_targets(model: DiffusersModel, steps: int, timesteps: list[int]) -> dict[int, int]:
    """Where DDIMScheduler's step from each t lands: t − T//N, or below 0 its final ᾱ (t = -1 for
    ᾱ = 1 with set_alpha_to_one, as DDIMPipeline sets it for a DDPM config too; else t = 0)."""
    stride = model.folder.num_train_timesteps // steps
    final = CLEAN_T if model.scheduler.config.get("set_alpha_to_one", True) else 0
    return {t: t - stride if t - stride >= 0 else final for t in timesteps}


def step_rule(model: DiffusersModel, sampler: str, eta: float | None, steps: int, timesteps: list[int]) -> StepRule:
    config = model.scheduler.config
    variance = FixedVariance() if config.get("variance_type") == "fixed_large" else PosteriorVariance()
    rule = make_eps_step_rule(
        sampler,
        model.schedule,
        eta=eta,
        x0_clip=scheduler_x0_clip(config),
        variance=variance,
        clean_t=CLEAN_T,
        noise_while_t_above=0,  # DDPMScheduler adds noise on every step from t > 0
        eps_from_clipped_x0=False,  # DDIMPipeline's use_clipped_model_output is off
    )
    return SchedulerTargets(rule, ddim_targets(model, steps, timesteps[:-1])) if sampler == "ddim" else rule


@dataclass(frozen=True)
class RunPlan:
    """The choices of a run, checked against the folder before its weights load."""

    sampler: str
    steps: int
    eta: float | None
    num: int


def plan_run(
    folder: FolderConfig, sampler: str | None, steps: int | None, eta: float | None, num: int | None
) -> RunPlan:
    """The run's settings with the folder's defaults filled in; one line for the first that does not suit."""
    sampler = sampler or folder.default_sampler
    check_sampler_choice(sampler, eta, EPS_SAMPLERS, f"{folder.name} (a diffusers noise-prediction model)")
    total = folder.num_train_timesteps
    if steps is None:
        steps = total if sampler == "ddpm" else min(DEFAULT_STEPS, total)
    if not 1 <= steps <= total:
        raise UserFacingError(f"steps must be between 1 and T = {total} for {folder.name}, got {steps}")
    num = DEFAULT_NUM_SAMPLES if num is None else num
    if out_of_range(num, SAMPLES):
        raise UserFacingError(f"num must be between {SAMPLES[0]} and {SAMPLES[1]:,}, got {num:,}")
    # x_t, x̂₀ and ε̂ of every frame, and Heun's second ε̂
    check_run_fits(steps + 1, num, folder.image_shape, pictures_per_frame=4)
    return RunPlan(sampler, steps, (0.0 if eta is None else eta) if sampler == "ddim" else None, num)


def sample_diffusers(model: DiffusersModel, plan: RunPlan, seed: int = 0) -> SamplingRun:
    """Compose the run: its frames (a generator, one step at a time) and its meta."""
    folder, config = model.folder, model.scheduler.config
    timesteps = chain_timesteps(model, plan.sampler, plan.steps)
    cpu_generator = torch.Generator().manual_seed(int(seed))
    x_start = pure_noise((plan.num, *folder.image_shape), cpu_generator).to(model.device)
    generator = cpu_generator if model.device.type == "cpu" else make_generator(seed, model.device)
    predictor = DiffusersPredictor(model.unet, config.get("prediction_type", "epsilon"), model.schedule)
    rule = step_rule(model, plan.sampler, plan.eta, plan.steps, timesteps)
    frames = run_sampler(x_start, timesteps, PlainEstimate(predictor), rule, generator)
    params = {
        "sampler": plan.sampler,
        "steps": plan.steps,
        "num_samples": plan.num,
        "source": "pure noise",
        "scheduler": folder.scheduler_class,
        "prediction_type": predictor.prediction_type,
        "timestep_spacing": config.get("timestep_spacing", "leading"),
        "x0_clip": x0_clip_name(scheduler_x0_clip(config)),
        "alpha_bars": model.schedule.alpha_bars.tolist(),
        "timesteps": timesteps[:-1],
    }
    if plan.sampler == "ddpm":
        params["variance_type"] = config.get("variance_type", "fixed_small")
    if plan.eta is not None:
        params["eta"] = plan.eta
    meta = {
        "algorithm": "ddpm",  # the ε family (core.run_meta.family_of): DDPM's update and theory
        "model": folder.name,
        "checkpoint": folder.source,
        "seed": int(seed),
        "params": params,
        "value_range": VALUE_RANGE,
        "device": str(model.device),
    }
    return SamplingRun(frames, meta, None, len(timesteps))


@dataclass
class DiffusersSampleRequest:
    """Everything `diffusion-stepper sample diffusers` and the app's Generate button ask of a folder."""

    model_dir: str
    sampler: str | None = None  # default: the scheduler's own (ddpm for DDPMScheduler, ddim for DDIMScheduler)
    steps: int | None = None  # default: T for ddpm, else 50 (at most T)
    eta: float | None = None  # DDIM's η (default 0)
    num: int | None = None
    seed: int = 0
    device: str = "auto"

    def start(self) -> SamplingRun:
        folder = read_folder(self.model_dir)
        plan = plan_run(folder, self.sampler, self.steps, self.eta, self.num)
        return sample_diffusers(load_diffusers_model(folder, self.device), plan, self.seed)
