"""DeepFloyd IF's two stages, loaded through diffusers, with errors that say what to do.

Only the parts our own sampling loop needs are loaded: the UNet and its DDPM scheduler (and
stage II's image-noising scheduler). The T5 text encoder is separate (core.deepfloyd_if.embeddings),
because it is large and part A can run from precomputed prompt embeddings instead.

Sources are hub ids (`DeepFloyd/IF-I-XL-v1.0`, ...) or a local folder in diffusers' layout
(`unet/`, `scheduler/`, `model_index.json`), as `save_pretrained` writes it.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from diffusion_stepper.core.devices import is_gpu, resolve_device
from diffusion_stepper.core.diffusion.schedules import DiscreteSchedule, scheduler_schedule
from diffusion_stepper.core.errors import UserFacingError

STAGE_I_SIZES = {"XL": "DeepFloyd/IF-I-XL-v1.0", "L": "DeepFloyd/IF-I-L-v1.0", "M": "DeepFloyd/IF-I-M-v1.0"}
STAGE_II_SIZES = {"L": "DeepFloyd/IF-II-L-v1.0", "M": "DeepFloyd/IF-II-M-v1.0"}
DEFAULT_SIZE = {1: "XL", 2: "L"}

# Pipeline parts we never load or build: the T5 encoder is loaded on its own (embeddings.py), and the
# safety checker and watermarker act on the pipeline's output, which our own loop never produces.
UNET_AND_SCHEDULERS_ONLY = dict(
    text_encoder=None,
    tokenizer=None,
    safety_checker=None,
    feature_extractor=None,
    watermarker=None,
    requires_safety_checker=False,
)


@dataclass(frozen=True)
class Requirement:
    """What one stage needs, for the messages: its fp16 weights on disk and GPU memory to sample."""

    disk_gb: float
    vram_gb: float

    def describe(self) -> str:
        return f"about {self.disk_gb:g} GB of disk for the fp16 weights and {self.vram_gb:g} GB of GPU memory"


# Parameter counts from the model cards (4.3B, 900M, 400M; 1.2B, 450M) at 2 bytes each; GPU
# memory adds activations for a CFG batch of two. With model CPU offload the GPU needs less.
REQUIREMENTS = {
    "DeepFloyd/IF-I-XL-v1.0": Requirement(8.6, 11),
    "DeepFloyd/IF-I-L-v1.0": Requirement(1.8, 4),
    "DeepFloyd/IF-I-M-v1.0": Requirement(0.8, 3),
    "DeepFloyd/IF-II-L-v1.0": Requirement(2.4, 6),
    "DeepFloyd/IF-II-M-v1.0": Requirement(0.9, 4),
}


@dataclass
class IFStage:
    """One loaded stage: the UNet, its scheduler and where they came from."""

    stage: int  # 1: 64 px from text; 2: 256 px from a 64 px image and text
    source: str
    unet: torch.nn.Module
    scheduler: object  # diffusers.DDPMScheduler
    device: torch.device
    dtype: torch.dtype
    image_noising_scheduler: object | None = None  # stage II only: noises the low-res input

    @cached_property
    def schedule(self) -> DiscreteSchedule:
        """The scheduler's alphas_cumprod as our schedule, read once."""
        return scheduler_schedule(self.scheduler)

    @property
    def sample_size(self) -> int:
        return int(self.unet.config.sample_size)

    @property
    def image_channels(self) -> int:
        """Channels of the image being denoised (stage II's UNet also takes the upscaled input)."""
        channels = int(self.unet.config.in_channels)
        return channels // 2 if self.stage == 2 else channels

    @property
    def embedding_dim(self) -> int:
        """The text embedding width the UNet expects (4096 for T5-XXL)."""
        return int(self.unet.config.encoder_hid_dim or self.unet.config.cross_attention_dim)


def stage_source(stage: int, size: str | None = None, model_dir: str | os.PathLike | None = None) -> str:
    """The hub id or folder a stage loads from."""
    if stage not in (1, 2):
        raise UserFacingError(f"IF has stages 1 and 2 here, got {stage}")
    if model_dir is not None:
        return str(model_dir)
    sizes = STAGE_I_SIZES if stage == 1 else STAGE_II_SIZES
    size = (size or DEFAULT_SIZE[stage]).upper()
    if size not in sizes:
        raise UserFacingError(f"stage {stage} comes in sizes {', '.join(sizes)}, not {size!r}")
    return sizes[size]


def load_if_stage(
    stage: int = 1,
    size: str | None = None,
    model_dir: str | os.PathLike | None = None,
    device: str = "auto",
    allow_cpu: bool = False,
    offload: bool = False,
) -> IFStage:
    """Load stage I or II for our sampling loop. Raises UserFacingError with the way forward."""
    source = stage_source(stage, size, model_dir)
    resolved = resolve_device(device)
    on_gpu = is_gpu(resolved)
    if not on_gpu and not allow_cpu:
        raise UserFacingError(
            f"IF stage {stage} needs a GPU, CUDA or Apple's MPS ({_needs(source)}), and this run has none: "
            "pass --allow-cpu to run it on the CPU anyway (real IF takes minutes per step there), "
            "or open a saved IF trajectory instead"
        )
    if model_dir is not None and not (Path(model_dir) / "unet").is_dir():
        raise UserFacingError(
            f"{model_dir} is not an IF stage folder: it needs unet/ and scheduler/ (as diffusers' "
            "save_pretrained writes them)"
        )
    dtype = torch.float16 if on_gpu else torch.float32
    pipeline = _from_pretrained(stage, source, dtype, variant=_weights_variant(source, on_gpu))
    if offload:
        if resolved.type != "cuda":
            raise UserFacingError("model CPU offload is for a CUDA GPU; without one, leave --offload out")
        try:
            pipeline.enable_model_cpu_offload(device=resolved)
        except (ImportError, ModuleNotFoundError) as error:
            raise UserFacingError(
                f"model CPU offload needs the accelerate package: pip install accelerate ({error})"
            ) from error
    else:
        pipeline.unet.to(resolved)
    pipeline.unet.eval()
    return IFStage(
        stage=stage,
        source=source,
        unet=pipeline.unet,
        scheduler=pipeline.scheduler,
        device=resolved,
        dtype=dtype,
        image_noising_scheduler=getattr(pipeline, "image_noising_scheduler", None),
    )


def weights_present(source: str) -> bool:
    """Whether the stage can load without a download: a local folder, or the hub id's files in
    the Hugging Face cache (its model index and UNet config; the weights come with them)."""
    if Path(source).is_dir():
        return (Path(source) / "unet").is_dir()
    # Deferred: huggingface_hub takes seconds to import and only DeepFloyd IF needs it.
    from huggingface_hub import try_to_load_from_cache

    found = [try_to_load_from_cache(source, name) for name in ("model_index.json", "unet/config.json")]
    return all(isinstance(path, str) for path in found)


def _needs(source: str) -> str:
    requirement = REQUIREMENTS.get(source)
    return requirement.describe() if requirement else "see the model card for its size"


def _weights_variant(source: str, on_gpu: bool) -> str | None:
    """Which weight files to load: the fp16 ones on a GPU where they exist (hub repos of IF publish
    them; a local folder has them only if it was saved so), and on the CPU only where a local folder
    has nothing else (they are then cast to float32)."""
    folder = Path(source) / "unet"
    if not folder.is_dir():
        return "fp16" if on_gpu and source in REQUIREMENTS else None
    weights = [path.name for path in folder.iterdir() if path.suffix in (".safetensors", ".bin")]
    has_fp16 = any(".fp16." in name for name in weights)
    has_full_precision = any(".fp16." not in name for name in weights)
    return "fp16" if has_fp16 and (on_gpu or not has_full_precision) else None


def _from_pretrained(stage: int, source: str, dtype: torch.dtype, variant: str | None):
    # Deferred: transformers takes seconds to import and only DeepFloyd IF needs it.
    from transformers.utils import logging as transformers_logging

    # Importing diffusers' IF pipelines imports transformers' image processors, which log a line
    # about torchvision that means nothing here (IF takes no image processor of theirs)
    transformers_logging.set_verbosity_error()
    # Deferred: diffusers takes seconds to import and only DeepFloyd IF needs it.
    from diffusers import IFPipeline, IFSuperResolutionPipeline
    from diffusers.utils import logging as diffusers_logging

    pipeline_class = IFPipeline if stage == 1 else IFSuperResolutionPipeline
    # Our own progress and messages only: diffusers' loading bar and its hints (install
    # accelerate, renamed arguments) would interleave with them on stderr.
    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return pipeline_class.from_pretrained(
                source, **UNET_AND_SCHEDULERS_ONLY, torch_dtype=dtype, variant=variant
            )
    except Exception as error:  # diffusers wraps hub errors in OSError; translate what we can
        raise UserFacingError(explain_load_error(source, error)) from error


def explain_load_error(source: str, error: BaseException) -> str:
    """One line that says why `source` did not load and what to do about it."""
    # Deferred: huggingface_hub takes seconds to import and only DeepFloyd IF needs it.
    from huggingface_hub import get_token
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    chain = _exception_chain(error)
    card = f"https://huggingface.co/{source}"
    if any(isinstance(e, GatedRepoError) for e in chain):
        if get_token() is None:
            return (
                f"{source} is gated and no Hugging Face token is set: accept the license at {card}, "
                "then log in with `hf auth login` (or set HF_TOKEN)"
            )
        return f"{source} is gated and your token has no access yet: accept the license at {card} with the same account"
    if any(isinstance(e, LocalEntryNotFoundError) for e in chain) or _looks_offline(chain):
        return (
            f"the weights of {source} are not on this disk and the hub cannot be reached: download them once on a "
            f"connected machine ({_needs(source)}) or pass --model-dir with a local copy"
        )
    if any(isinstance(e, RepositoryNotFoundError) for e in chain):
        return f"there is no model {source} on the hub (or it is private): check the name, or pass --model-dir"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"could not load IF from {source}: {first_line}"


def _exception_chain(error: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    while error is not None and id(error) not in seen:
        chain.append(error)
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return chain


def _looks_offline(chain: list[BaseException]) -> bool:
    text = " ".join(str(e) for e in chain).lower()
    return any(phrase in text for phrase in ("offline", "couldn't connect", "could not connect", "connection error"))


# Loaded stages, kept for the next run: the app runs many experiments on one model, and loading
# IF-I-XL takes far longer than sampling a few steps.
_LOADED_STAGES: dict[tuple, IFStage] = {}
_LOADING = threading.Lock()


def loaded_stage(
    stage: int, size: str | None, model_dir: str | None, device: str, allow_cpu: bool, offload: bool
) -> IFStage:
    key = (stage, size, str(model_dir) if model_dir else None, device, allow_cpu, offload)
    with _LOADING:
        if key in _LOADED_STAGES:
            return _LOADED_STAGES[key]
    # Load outside the lock, so the app's status line never waits on a load (minutes for IF-I-XL);
    # runs start one at a time, so two loads of one stage do not race in practice.
    loaded = load_if_stage(stage, size, model_dir, device, allow_cpu=allow_cpu, offload=offload)
    with _LOADING:
        return _LOADED_STAGES.setdefault(key, loaded)


def loaded_stages() -> list[IFStage]:
    """The stages loaded so far in this process (the app's model status lists them)."""
    with _LOADING:
        return list(_LOADED_STAGES.values())
