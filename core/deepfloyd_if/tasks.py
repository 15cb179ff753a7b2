"""The part A tasks as requests: what `diffusion-stepper sample if` and the app's IF view ask for.

Each task's composer (COMPOSERS) is a few lines that pick pieces from core.deepfloyd_if.sampling;
none has a loop of its own.

| task      | start                         | estimate             | course part |
| --------- | ----------------------------- | -------------------- | ----------- |
| forward   | the image, noised at each t   | none (the true noise)| 1.1         |
| blur      | the image, noised at each t   | a Gaussian blur      | 1.2         |
| one-step  | the image, noised at each t   | conditional, once    | 1.3         |
| iterative | the image noised at i_start   | conditional          | 1.4         |
| sample    | pure noise                    | CFG                  | 1.5, 1.6    |
| sdedit    | the image noised at i_start   | CFG                  | 1.7         |
| inpaint   | pure noise; known region kept | CFG                  | 1.7.2       |
| text-i2i  | the image noised at i_start   | CFG, the user's text | 1.7.3       |
| anagram   | pure noise                    | views averaged       | 1.8         |
| hybrid    | pure noise                    | lowpass + highpass   | 1.9 (1.10)  |
| upscale   | pure noise (stage II)         | CFG, with the 64 px  | stage II    |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from diffusion_stepper.core.deepfloyd_if.anagrams import ViewAverage, make_view
from diffusion_stepper.core.deepfloyd_if.embeddings import UNCONDITIONAL, PromptEmbeddings, prompt_table_for
from diffusion_stepper.core.deepfloyd_if.images import check_mask, load_mask, load_start_image, open_rgb, original_size
from diffusion_stepper.core.deepfloyd_if.models import IFStage, loaded_stage
from diffusion_stepper.core.deepfloyd_if.sampling import (
    CLEAN_T,
    DEFAULT_GUIDANCE,
    DEFAULT_NOISE_LEVEL,
    FrequencySplit,
    IFPredictor,
    IFRunSpec,
    KeepKnownRegion,
    blur_frames,
    chain_timesteps,
    denoising_run,
    forward_at,
    forward_frames,
    from_afar,
    one_step_frames,
    text_estimate,
    through_views,
    with_psnr,
)
from diffusion_stepper.core.devices import make_generator
from diffusion_stepper.core.diffusion.rules.catalogue import IF_SAMPLERS, check_sampler_choice
from diffusion_stepper.core.diffusion.sampling import pure_noise
from diffusion_stepper.core.diffusion.schedules import scheduler_schedule
from diffusion_stepper.core.diffusion.theory import CLEAN_EXTRA
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.formats.trajectory_file import load_trajectory
from diffusion_stepper.core.frames import Frame, SamplingRun, forward_noised_start, with_extras
from diffusion_stepper.core.limits import check_guidance, check_run_fits
from diffusion_stepper.core.run_meta import VIEW_NAMES, RunMeta

TASKS = (
    "sample",
    "forward",
    "blur",
    "one-step",
    "iterative",
    "sdedit",
    "inpaint",
    "text-i2i",
    "anagram",
    "hybrid",
    "upscale",
)
NEUTRAL_PROMPT = "a high quality photo"  # the course's prompt where the text should not steer
DEFAULT_TIMESTEPS = [250, 500, 750]  # the course's forward-process and denoising levels
DEFAULT_I_START = {"iterative": [10], "sdedit": [1, 3, 5, 7, 10, 20], "text-i2i": [1, 3, 5, 7, 10, 20]}
DEFAULT_VIEWS = ["identity", "flip"]  # the course's anagram: upright, and upside down
NEEDS_IMAGE = ("forward", "blur", "one-step", "iterative", "sdedit", "inpaint", "text-i2i", "upscale")
AT_CHOSEN_T = ("forward", "blur", "one-step")  # one frame per chosen t, no chain of steps
WITHOUT_UNET = ("forward", "blur")  # the tasks that never run the model
FROM_I_START = ("iterative", "sdedit", "text-i2i")  # start from the image noised at i_start
WITHOUT_CFG = ("one-step", "iterative")  # the course's 1.3 and 1.4 use the conditional estimate alone
STAGE_II_DEFAULTS = {"steps": 50, "guidance": 4.0}  # IFSuperResolutionPipeline's defaults
UPSCALE_FACTOR = 4  # stage II turns 64 px into 256 px
HYBRID_KERNEL = 33  # the course's Gaussian for hybrid images (sigma 2)
BLUR_KERNEL = 5  # the classical-denoising baseline's Gaussian (sigma 2)
DEFAULT_IMAGE, DEFAULT_MASK = "tower.png", "tower-mask.png"  # bundled in resources/images: image tasks work at once


@dataclass
class BranchPoint:
    """Where a branch starts: a step of an earlier run, its x_t and the timesteps left from there."""

    x_t: torch.Tensor  # [N, C, H, W]
    timesteps: list[int]  # from the step's t down to the clean end
    source: str = ""  # the earlier run, for the new run's record
    step: int = 0

    @classmethod
    def from_run(cls, meta: RunMeta, frames: list, index: int, source: str = "") -> BranchPoint:
        """Branch at frame `index` of an IF denoising run (one whose meta lists its timesteps)."""
        chain = list(meta.timesteps or ())
        if not chain:
            raise UserFacingError(
                "only IF denoising runs (sample, SDEdit, inpainting, anagram, hybrid, …) can be branched"
            )
        frame = frames[index]
        if int(frame.t) not in chain:
            raise UserFacingError(
                f"step {index} is the final image: there is nothing left to denoise; branch from an earlier step"
            )
        return cls(frame.x_t.clone(), chain[chain.index(int(frame.t)) :] + [CLEAN_T], source, index)


@dataclass
class IFRequest:
    """Everything one IF run needs. Field names follow the CLI's flags."""

    task: str = "sample"
    prompt: list[str] = field(default_factory=list)  # one per view for anagrams; low, high for hybrids
    image: str | None = None  # a picture, or a trajectory .npz whose final sample is used (upscale)
    mask: str | None = None
    i_start: list[int] | None = None
    views: list[str] = field(default_factory=lambda: list(DEFAULT_VIEWS))
    t: list[int] | None = None
    steps: int | None = None
    stride: int | None = None
    guidance: float | None = None
    no_cfg: bool = False
    seed: int = 0
    num: int = 1
    x0_clip: str = "dynamic"
    sampler: str = "ddpm"  # one of IF_SAMPLERS: ddpm | ddim | dpm++2m | dpm++2m-sde
    eta: float | None = None  # DDIM's η (default 0)
    blur_kernel: int | None = None
    blur_sigma: float = 2.0
    noise_level: int = DEFAULT_NOISE_LEVEL
    model_dir: str | None = None
    size: str | None = None
    embeddings: str | None = None
    t5: bool = False
    device: str = "auto"
    allow_cpu: bool = False
    offload: bool = False
    branch: BranchPoint | None = field(default=None, repr=False, compare=False)  # continue from a step
    # Loaded parts can be handed in (the app keeps them between runs; tests build them in code).
    stage: IFStage | None = field(default=None, repr=False, compare=False)
    prompt_table: PromptEmbeddings | None = field(default=None, repr=False, compare=False)

    def for_task(self, task: str) -> IFRequest:
        """These settings as a request for `task`, without the fields the task does not read, so
        its run records only what it used. The app's IF dock and the part A experiments keep one
        set of settings for every task and make each run's request this way."""
        prompts = self.prompt if task == "anagram" else self.prompt[:2] if task == "hybrid" else self.prompt[:1]
        own_chain = task not in AT_CHOSEN_T and task != "upscale"  # stage II takes its own default chain
        return dataclasses.replace(
            self,
            task=task,
            prompt=list(prompts),
            image=self.image if task in NEEDS_IMAGE else None,
            mask=self.mask if task == "inpaint" else None,
            i_start=self.i_start if task in FROM_I_START else None,
            t=self.t if task in AT_CHOSEN_T else None,
            steps=self.steps if own_chain else None,
            stride=self.stride if own_chain else None,
            eta=self.eta if task not in AT_CHOSEN_T else None,
        )

    def expand(self) -> list[IFRequest]:
        """One request per i_start: an SDEdit strip is several runs of different lengths."""
        starts = self.i_start or DEFAULT_I_START.get(self.task)
        if not starts or len(starts) == 1:
            return [dataclasses.replace(self, i_start=starts)]
        return [dataclasses.replace(self, i_start=[start]) for start in starts]

    def start(self) -> SamplingRun:
        return start_if(self)


def _check(request: IFRequest) -> None:
    if request.task not in TASKS:
        raise UserFacingError(f"unknown IF task {request.task!r}; choose from {', '.join(TASKS)}")
    if request.task in NEEDS_IMAGE and not request.image:
        raise UserFacingError(f"the {request.task} task starts from an image: pass --image")
    if request.task == "inpaint" and not request.mask:
        raise UserFacingError("inpainting needs a mask: pass --mask (white where new content goes)")
    if request.task == "anagram" and not 2 <= len(request.prompt) <= 4:
        raise UserFacingError("a visual anagram takes one --prompt per view, 2 to 4 of them")
    if request.task == "anagram" and len(request.views) != len(request.prompt):
        raise UserFacingError(
            f"{len(request.prompt)} prompts but {len(request.views)} views: give one view per prompt "
            "(--views identity flip)"
        )
    unknown_views = [name for name in request.views if name not in VIEW_NAMES] if request.task == "anagram" else []
    if unknown_views:
        raise UserFacingError(f"unknown view {unknown_views[0]!r}; choose from {', '.join(VIEW_NAMES)}")
    if request.task not in ("anagram", "hybrid") and len(request.prompt) > 1:
        raise UserFacingError(f"the {request.task} task takes one prompt, got {len(request.prompt)}: give one")
    if request.task in AT_CHOSEN_T and request.eta is not None:
        raise UserFacingError(f"the {request.task} task takes no sampling steps, so DDIM's η does nothing here")
    if request.task == "hybrid" and len(request.prompt) != 2:
        raise UserFacingError(
            "a hybrid image takes two prompts: --prompt LOW_FREQUENCY_PROMPT --prompt2 HIGH_FREQUENCY_PROMPT"
        )
    if request.steps is not None and request.stride is not None:
        raise UserFacingError("give --steps or --stride, not both")
    check_sampler_choice(request.sampler, request.eta, IF_SAMPLERS, "DeepFloyd IF")
    if request.guidance is not None:
        check_guidance(request.guidance)
    if request.num < 1:
        raise UserFacingError(f"--num must be at least 1, got {request.num}")
    if request.stage is None:  # before a model loads (minutes for real IF), the pictures are read once
        check_pictures(request)


def check_pictures(request: IFRequest) -> None:
    """Read the request's image and mask in full, so a bad one is reported before any model loads."""

    original_size = None
    if request.task in NEEDS_IMAGE:
        if Path(request.image).suffix == ".npz":
            load_trajectory(request.image)
        else:
            original_size = open_rgb(request.image, [], draft_size=256)[1]
    if request.task == "inpaint":
        check_mask(request.mask, original_size)


def prepare(request: IFRequest) -> IFRequest:
    """The request with its model stage and prompt embeddings loaded (once, for all its runs)."""
    _check(request)
    stage = request.stage or loaded_stage(
        2 if request.task == "upscale" else 1,
        request.size,
        request.model_dir,
        request.device,
        request.allow_cpu,
        request.offload,
    )
    table = request.prompt_table
    if request.task not in WITHOUT_UNET:
        table = prompt_table_for(table, request.embeddings, request.t5, stage.device, stage.embedding_dim)
    return dataclasses.replace(request, stage=stage, prompt_table=table)


def prepare_all(requests: list[IFRequest]) -> list[IFRequest]:
    """Each request prepared, the prompt embeddings read (or T5 loaded) once for all of them;
    the stages are kept between runs anyway."""
    prepared, table = [], None
    for request in requests:
        request = prepare(dataclasses.replace(request, prompt_table=request.prompt_table or table))
        table = request.prompt_table or table
        prepared.append(request)
    return prepared


@dataclass
class Composition:
    """What every task's composer is handed: the prepared request, the run's record so far, and
    what `start_if` works out once for all tasks (the start image, CFG or not, the chain's length)."""

    request: IFRequest
    spec: IFRunSpec
    generator: torch.Generator
    prompts: list[str]
    use_cfg: bool
    guidance: float
    steps: int | None  # the chain's steps (None: the stage's default, or the stride's)
    image: torch.Tensor | None  # the start image, [num, C, H, W] in [-1, 1], for the tasks that take one
    algorithm: str

    @classmethod
    def of(cls, request: IFRequest) -> Composition:
        """The composition of a prepared request: CFG unless turned off (the course's one-step and
        iterative denoising go without, unless a γ is given), the stage's own defaults (stage II's
        steps and γ), and the start image read at the stage's size."""
        if request.branch is not None:  # the branch's batch decides how many images there are
            request = dataclasses.replace(request, num=request.branch.x_t.shape[0])
        stage = request.stage
        prompts = request.prompt or [NEUTRAL_PROMPT]
        spec = IFRunSpec(request.task, stage, request.seed, prompts, params={"num_samples": request.num})
        use_cfg = not request.no_cfg and (request.task not in WITHOUT_CFG or request.guidance is not None)
        use_cfg = use_cfg and request.task not in WITHOUT_UNET
        defaults = STAGE_II_DEFAULTS if stage.stage == 2 else {}
        guidance = request.guidance if request.guidance is not None else defaults.get("guidance", DEFAULT_GUIDANCE)
        if use_cfg:
            spec.params["guidance"] = guidance
        own_steps = request.steps is not None or request.stride is not None
        steps = request.steps if own_steps else defaults.get("steps")
        generator = make_generator(request.seed, stage.device)
        image = None
        if request.task in NEEDS_IMAGE:
            size = stage.sample_size // UPSCALE_FACTOR if request.task == "upscale" else stage.sample_size
            # stage II takes any low-res size; stage I, its own
            image, notes = load_start_image(request.image, size, stage.device, resize=request.task != "upscale")
            image = image.repeat(request.num, 1, 1, 1)
            spec.params["image"] = str(request.image)
            if notes:
                spec.params["image_notes"] = notes
        size, kernel = stage.sample_size, request.blur_kernel
        if kernel is not None and (kernel % 2 == 0 or kernel // 2 >= size):
            raise UserFacingError(
                f"the blur kernel must be odd and at most {2 * size - 1} for {size} px images, got {kernel}"
            )
        algorithm = "ddpm+cfg" if use_cfg else "ddpm"
        return cls(request, spec, generator, prompts, use_cfg, guidance, steps, image, algorithm)

    @property
    def stage(self) -> IFStage:
        return self.request.stage

    @property
    def size(self) -> int:
        return self.stage.sample_size

    @property
    def channels(self) -> int:
        return self.stage.image_channels

    @property
    def noise_shape(self) -> tuple[int, int, int, int]:
        return (self.request.num, self.channels, self.size, self.size)

    def estimate(self, prompt: str, predictor: IFPredictor | None = None):
        """The noise estimate for `prompt`: with CFG against the unconditional prompt, or alone."""
        uncond = self._embedding(UNCONDITIONAL) if self.use_cfg else None
        predictor = predictor or IFPredictor(self.stage)
        return text_estimate(predictor, self._embedding(prompt), uncond, self.guidance, self.channels)

    def _embedding(self, prompt: str) -> torch.Tensor:
        return self.request.prompt_table.get(prompt).to(self.stage.device).repeat(self.request.num, 1, 1)

    def start_noise(self) -> torch.Tensor:
        """Pure noise to start from (what the histogram's theory compares the first frame with)."""
        self.spec.params["source"] = "pure noise"
        return pure_noise(self.noise_shape, self.generator, self.stage.device)

    def chosen_t(self) -> list[int]:
        """The timesteps of a task at chosen t, one frame each."""
        ts = self.request.t or DEFAULT_TIMESTEPS
        check_run_fits(len(ts), self.request.num, self.noise_shape[1:], pictures_per_frame=4)
        self.spec.params["t"] = ts
        return ts

    def at_chosen_t(self, frames: Iterator[Frame], ts: list[int]) -> SamplingRun:
        return SamplingRun(frames, self.spec.meta(f"if-{self.request.task}"), None, len(ts))

    def chain(self) -> list[int]:
        """The denoising chain's timesteps, once the run's frames are known to fit in memory."""
        timesteps = chain_timesteps(self.stage, steps=self.steps, stride=self.request.stride)
        # x_t, x̂₀, ε̂, CFG's three extras, the learned σ of DDPM's steps, and a start
        check_run_fits(len(timesteps) + 1, self.request.num, self.noise_shape[1:], pictures_per_frame=7)
        return timesteps

    def run_chain(self, x_start: torch.Tensor, chain: list[int], estimate, algorithm: str, **options) -> SamplingRun:
        """The denoising loop from x_start along chain, or from the branch point when there is one."""
        branch, spec = self.request.branch, self.spec
        if branch is not None:
            x_start, chain = branch.x_t.to(self.stage.device), branch.timesteps
            spec.params["branched_from"] = {"run": branch.source, "step": branch.step, "t": chain[0]}
            spec.params["source"] = f"step {branch.step} of {branch.source}"
        request = self.request
        return denoising_run(
            spec,
            x_start,
            chain,
            estimate,
            self.generator,
            request.x0_clip,
            algorithm,
            sampler=request.sampler,
            eta=request.eta,
            **options,
        )


def start_if(request: IFRequest) -> SamplingRun:
    """Load what the request needs and compose its run: its task's composer (COMPOSERS)."""
    composition = Composition.of(prepare(request))
    return COMPOSERS[composition.request.task](composition)


# --- each task's composer: a few pieces of core.deepfloyd_if.sampling, no loop of its own -------


def _forward(c: Composition) -> SamplingRun:
    ts = c.chosen_t()
    return c.at_chosen_t(forward_frames(c.image, c.stage.schedule, ts, c.generator), ts)


def _blur(c: Composition) -> SamplingRun:
    ts = c.chosen_t()
    kernel, sigma = c.request.blur_kernel or BLUR_KERNEL, c.request.blur_sigma
    c.spec.params.update(blur_kernel=kernel, blur_sigma=sigma)
    frames = blur_frames(c.image, c.stage.schedule, ts, c.generator, kernel, sigma)
    return c.at_chosen_t(with_psnr(frames, c.image), ts)


def _one_step(c: Composition) -> SamplingRun:
    ts = c.chosen_t()
    blur = (c.request.blur_kernel or BLUR_KERNEL, c.request.blur_sigma)
    estimate = c.estimate(c.prompts[0])
    frames = one_step_frames(c.image, c.stage.schedule, ts, estimate, c.generator, c.channels, blur=blur)
    return c.at_chosen_t(with_psnr(frames, c.image), ts)


def _from_i_start(c: Composition) -> SamplingRun:
    """Iterative denoising, SDEdit and text-conditional image-to-image: the image noised at i_start."""
    timesteps = c.chain()
    i_start = (c.request.i_start or DEFAULT_I_START[c.request.task])[0]
    if not 0 <= i_start < len(timesteps) - 1:
        raise UserFacingError(
            f"i_start must be between 0 and {len(timesteps) - 2} for these {len(timesteps) - 1} steps, got {i_start}"
        )
    c.spec.params["i_start"] = i_start
    chain = timesteps[i_start:]
    x_start = forward_at(c.image, c.stage.schedule, chain[0], c.generator)[0]
    run = c.run_chain(x_start, chain, c.estimate(c.prompts[0]), c.algorithm, extras={CLEAN_EXTRA: c.image})
    run.frames = with_psnr(run.frames, c.image)
    if c.request.branch is None:  # it starts from the image noised at i_start
        run.frames = forward_noised_start(run.frames)
    return run


def _inpaint(c: Composition) -> SamplingRun:
    timesteps = c.chain()
    request = c.request
    mask = load_mask(request.mask, c.size, original_size(request.image)).to(c.stage.device)
    mask = mask.repeat(request.num, 1, 1, 1)
    c.spec.params["mask"] = str(request.mask)
    x_start = c.start_noise()
    project = KeepKnownRegion(c.image, mask, c.stage.schedule)
    extras = {"mask": mask.expand(-1, c.channels, -1, -1), CLEAN_EXTRA: c.image}
    return c.run_chain(x_start, timesteps, c.estimate(c.prompts[0]), c.algorithm, project=project, extras=extras)


def _anagram(c: Composition) -> SamplingRun:
    timesteps = c.chain()
    views = [make_view(name) for name in c.request.views]
    c.spec.params["views"] = list(c.request.views)
    estimate = ViewAverage(views, [c.estimate(prompt) for prompt in c.prompts], c.channels)
    run = c.run_chain(c.start_noise(), timesteps, estimate, "ddpm+anagram")
    run.frames = with_extras(run.frames, through_views(views))
    return run


def _hybrid(c: Composition) -> SamplingRun:
    timesteps = c.chain()
    kernel = c.request.blur_kernel or min(HYBRID_KERNEL, 2 * c.size - 1)  # the course's 33, or what fits a tiny model
    sigma = c.request.blur_sigma
    c.spec.params.update(blur_kernel=kernel, blur_sigma=sigma)
    estimate = FrequencySplit(c.estimate(c.prompts[0]), c.estimate(c.prompts[1]), c.channels, kernel, sigma)
    run = c.run_chain(c.start_noise(), timesteps, estimate, "ddpm+hybrid")
    run.frames = with_extras(run.frames, from_afar)
    return run


def _upscale(c: Composition) -> SamplingRun:
    timesteps = c.chain()
    # diffusers' order of draws: the initial noise, then the low-res image's augmentation noise
    x_start = c.start_noise()
    upscaled = F.interpolate(c.image, (c.size, c.size), mode="bilinear", align_corners=True)
    noise_level = c.request.noise_level
    low_res = forward_at(upscaled, scheduler_schedule(c.stage.image_noising_scheduler), noise_level, c.generator)[0]
    c.spec.params["noise_level"] = noise_level
    predictor = IFPredictor(c.stage, low_res=low_res, noise_level=noise_level)
    estimate = c.estimate(c.prompts[0], predictor)
    return c.run_chain(x_start, timesteps, estimate, c.algorithm, extras={"low_res": upscaled})


def _sample(c: Composition) -> SamplingRun:
    timesteps = c.chain()
    return c.run_chain(c.start_noise(), timesteps, c.estimate(c.prompts[0]), c.algorithm)


COMPOSERS: dict[str, Callable[[Composition], SamplingRun]] = {
    "sample": _sample,
    "forward": _forward,
    "blur": _blur,
    "one-step": _one_step,
    "iterative": _from_i_start,
    "sdedit": _from_i_start,
    "inpaint": _inpaint,
    "text-i2i": _from_i_start,
    "anagram": _anagram,
    "hybrid": _hybrid,
    "upscale": _upscale,
}
