"""Any diffusers unconditional DDPM/DDIM model, read for our own sampling loop.

What `DDPMPipeline.save_pretrained` or `DDIMPipeline.save_pretrained` writes: `unet/` (a
UNet2DModel) and `scheduler/` (a DDPMScheduler's or DDIMScheduler's config). Also the flat layout
some hub repos use (a UNet2DModel's config.json beside scheduler_config.json), and a hub id already
in the local Hugging Face cache (nothing is downloaded). Weights load from safetensors only.

`read_folder` checks everything a folder's JSON says (no diffusers import, so the app can list a
folder at once) and `load_diffusers_model` loads the weights. Every folder we cannot sample is one
`UserFacingError` line saying what is wrong and what to do. The sampling itself is
core.own_model.diffusers_sampling: our own step rules on the scheduler's ᾱ and timesteps.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from diffusion_stepper.core import schema
from diffusion_stepper.core.devices import resolve_device
from diffusion_stepper.core.diffusion.schedules import DiscreteSchedule, scheduler_schedule
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.files import check_input_file
from diffusion_stepper.core.limits import CHAIN_LENGTH, PICTURE_CHANNELS, out_of_range

SCHEDULERS = {"DDPMScheduler": "ddpm", "DDIMScheduler": "ddim"}  # the class, and its own sampler
PREDICTIONS = ("epsilon", "sample", "v_prediction")
# fixed_small_log is fixed_small's σ written through its log (the same σ in diffusers' step)
VARIANCES = ("fixed_small", "fixed_small_log", "fixed_large")
SPACINGS = ("leading", "trailing", "linspace")
SIDE = (32, 256)  # the pictures' side in pixels
MAX_CONFIG_BYTES = 1_000_000
UNET_CONFIG, SCHEDULER_CONFIG, PIPELINE_INDEX = "config.json", "scheduler_config.json", "model_index.json"
WEIGHTS = "diffusion_pytorch_model"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class FolderConfig:
    """A folder's (or cached hub repo's) UNet and scheduler configs, checked; where its weights are."""

    source: str  # the folder or hub id as given
    unet_subfolder: str | None  # "unet", or None for the flat layout
    unet_config: dict
    scheduler_config: dict
    weights_variant: str | None  # "fp16" where only fp16 weights were saved

    @property
    def name(self) -> str:
        return Path(self.source).name if Path(self.source).is_dir() else self.source

    @property
    def scheduler_class(self) -> str:
        return self.scheduler_config["_class_name"]

    @property
    def default_sampler(self) -> str:
        """The scheduler's own step: "ddpm" for a DDPMScheduler, "ddim" for a DDIMScheduler."""
        return SCHEDULERS[self.scheduler_class]

    @property
    def num_train_timesteps(self) -> int:
        return int(self.scheduler_config.get("num_train_timesteps", 1000))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        size = self.unet_config["sample_size"]
        height, width = (size, size) if isinstance(size, int) else size
        return int(self.unet_config.get("in_channels", 3)), int(height), int(width)

    def describe(self) -> str:
        """ "3×32×32, DDPMScheduler (epsilon, T = 1000)": what the app's model list says of it."""
        channels, height, width = self.image_shape
        prediction = self.scheduler_config.get("prediction_type", "epsilon")
        return f"{channels}×{height}×{width}, {self.scheduler_class} ({prediction}, T = {self.num_train_timesteps})"


@dataclass
class DiffusersModel:
    """A loaded folder: the UNet on its device, and the scheduler its config makes."""

    folder: FolderConfig
    unet: torch.nn.Module
    scheduler: object  # diffusers.DDPMScheduler or DDIMScheduler, with the folder's config
    device: torch.device

    @cached_property
    def schedule(self) -> DiscreteSchedule:
        """The scheduler's alphas_cumprod as our schedule, indexed by diffusers' t (t = -1: clean data)."""
        return scheduler_schedule(self.scheduler)


def diffusers_folder_of(path: str | Path) -> Path | None:
    """The diffusers folder `path` names: a folder with unet/, scheduler/, model_index.json or
    scheduler_config.json (read_folder then says what else it lacks), or a file of such a folder
    (its model_index.json, a config, the weights: what a file dialog can pick); else None."""
    path = Path(path)
    if path.is_dir():
        candidates = [path]
    elif path.name in (PIPELINE_INDEX, UNET_CONFIG, SCHEDULER_CONFIG) or path.name.startswith(WEIGHTS):
        candidates = [path.parent, path.parent.parent]
    else:
        return None
    for folder in candidates:
        if (folder / "unet").is_dir() or (folder / "scheduler").is_dir() or (folder / SCHEDULER_CONFIG).is_file():
            return folder
        if (folder / PIPELINE_INDEX).is_file():
            return folder
    return None


def read_folder(source: str | Path) -> FolderConfig:
    """The checked configs of a local folder or a hub id in the Hugging Face cache."""
    source = str(source)
    folder = Path(source).expanduser()
    if folder.exists():
        if not folder.is_dir():
            folder = diffusers_folder_of(folder) or folder
        return _read_local(folder)
    if _HUB_ID.match(source):
        return _read_cached(source)
    raise UserFacingError(f"{source}: no such folder (give a folder as DDPMPipeline.save_pretrained writes it)")


def _read_local(folder: Path) -> FolderConfig:
    if not folder.is_dir():
        raise UserFacingError(f"{folder}: not a folder; give the folder DDPMPipeline.save_pretrained wrote")
    if (folder / "unet").is_dir():
        unet_dir, scheduler_file, subfolder = folder / "unet", folder / "scheduler" / SCHEDULER_CONFIG, "unet"
    elif (folder / UNET_CONFIG).is_file():
        unet_dir, scheduler_file, subfolder = folder, folder / SCHEDULER_CONFIG, None
    else:
        raise UserFacingError(
            f"{folder} is not a diffusers DDPM/DDIM folder: it needs unet/ and scheduler/ (as "
            "DDPMPipeline.save_pretrained writes them), or config.json beside scheduler_config.json"
        )
    if not (unet_dir / UNET_CONFIG).is_file():
        raise UserFacingError(f"{unet_dir} has no {UNET_CONFIG}: save the pipeline again with save_pretrained")
    if not scheduler_file.is_file():
        raise UserFacingError(
            f"{folder} has no {scheduler_file.relative_to(folder)}: the sampler needs the scheduler's noise "
            "schedule (save the whole pipeline with save_pretrained, scheduler included)"
        )
    unet_config, scheduler_config = _json(unet_dir / UNET_CONFIG), _json(scheduler_file)
    check_unet_config(unet_config, str(unet_dir / UNET_CONFIG))
    check_scheduler_config(scheduler_config, str(scheduler_file))
    names = [path.name for path in unet_dir.iterdir() if path.name.startswith(WEIGHTS)]
    return FolderConfig(str(folder), subfolder, unet_config, scheduler_config, _variant(names, str(unet_dir)))


def _read_cached(hub_id: str) -> FolderConfig:
    # Deferred: huggingface_hub takes seconds to import and only hub ids need it.
    from huggingface_hub import try_to_load_from_cache

    def cached(name: str) -> Path | None:
        found = try_to_load_from_cache(hub_id, name)
        return Path(found) if isinstance(found, str) else None

    for subfolder, scheduler_name in (("unet", f"scheduler/{SCHEDULER_CONFIG}"), (None, SCHEDULER_CONFIG)):
        prefix = f"{subfolder}/" if subfolder else ""
        unet_file, scheduler_file = cached(prefix + UNET_CONFIG), cached(scheduler_name)
        if unet_file is not None and scheduler_file is not None:
            unet_config, scheduler_config = _json(unet_file), _json(scheduler_file)
            check_unet_config(unet_config, f"{hub_id}: {prefix}{UNET_CONFIG}")
            check_scheduler_config(scheduler_config, f"{hub_id}: {scheduler_name}")
            candidates = [f"{WEIGHTS}.safetensors", f"{WEIGHTS}.fp16.safetensors", f"{WEIGHTS}.bin"]
            names = [name for name in candidates if cached(prefix + name) is not None]
            return FolderConfig(hub_id, subfolder, unet_config, scheduler_config, _variant(names, hub_id))
    raise UserFacingError(
        f"{hub_id} is not in the Hugging Face cache, and this app does not download: fetch it once on a "
        f"connected machine (hf download {hub_id}), or give a folder saved with save_pretrained"
    )


def _json(path: Path) -> dict:
    check_input_file(path, UserFacingError, MAX_CONFIG_BYTES)
    try:
        config = schema.parse_json(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, schema.SchemaError) as exc:
        raise UserFacingError(f"{path}: unreadable config ({exc})") from None
    if not isinstance(config, dict):
        raise UserFacingError(f"{path}: a config is a JSON object, this is not")
    return config


def _variant(weight_names: list[str], where: str) -> str | None:
    """Which weights to load: the full-precision safetensors, else the fp16 ones; pickles never."""
    safetensors = [name for name in weight_names if name.endswith(".safetensors")]
    if any(".fp16." not in name for name in safetensors):
        return None
    if safetensors:
        return "fp16"
    pickles = [name for name in weight_names if name.endswith(".bin")]
    if pickles:
        raise UserFacingError(
            f"{where} holds its weights only as a PyTorch pickle ({pickles[0]}), which can run code when loaded; "
            "this app loads safetensors only: convert it once with UNet2DModel.from_pretrained(folder)"
            ".save_pretrained(folder) (save_pretrained writes safetensors)"
        )
    raise UserFacingError(f"{where} has no weights ({WEIGHTS}.safetensors): save the pipeline with save_pretrained")


def _field(config: dict, key: str, reader: schema.Reader, where: str, default=None):
    try:
        return reader(config.get(key, default), key)
    except schema.SchemaError as exc:
        raise UserFacingError(f"{where}: {exc}") from None


def check_unet_config(config: dict, where: str) -> None:
    """Refuse, in one line, a UNet this loop cannot sample: not a UNet2DModel, conditioned, not an
    image's worth of channels out, or a size outside SIDE."""
    class_name = config.get("_class_name")
    if class_name == "UNet2DConditionModel":
        raise UserFacingError(
            f"{where}: a conditional UNet (UNet2DConditionModel, for text or image conditions); only unconditional "
            "UNet2DModel folders sample here (DeepFloyd IF has its own command: sample if)"
        )
    if class_name != "UNet2DModel":
        raise UserFacingError(
            f"{where}: a {str(class_name)[:60]}, not a UNet2DModel; only unconditional DDPM/DDIM pipelines "
            "(DDPMPipeline, DDIMPipeline) sample here"
        )
    if config.get("num_class_embeds") is not None or config.get("class_embed_type") is not None:
        raise UserFacingError(f"{where}: a class-conditioned UNet2DModel; only unconditional models sample here")
    channels = _field(config, "in_channels", schema.number(1, 64, integer=True), where, 3)
    out_channels = _field(config, "out_channels", schema.number(1, 128, integer=True), where, 3)
    if out_channels != channels:
        raise UserFacingError(
            f"{where}: {out_channels} channels out for {channels} in; only models that predict one image's worth "
            "(ε, x̂₀ or v, no learned variance) sample here"
        )
    if channels not in PICTURE_CHANNELS:
        raise UserFacingError(
            f"{where}: {channels} channels; only grey (1) or RGB (3) pixel models sample here "
            "(a latent model needs its VAE)"
        )
    size = config.get("sample_size")
    sides = size if isinstance(size, list) and len(size) == 2 else [size]
    for side in sides:
        _field({"sample_size": side}, "sample_size", schema.number(integer=True), where)
        if out_of_range(side, SIDE):
            raise UserFacingError(f"{where}: sample_size {side} px; this samples {SIDE[0]} to {SIDE[1]} px")


def check_scheduler_config(config: dict, where: str) -> None:
    """Refuse, in one line, a scheduler whose schedule or step our rules do not reproduce."""
    class_name = config.get("_class_name")
    if class_name not in SCHEDULERS:
        raise UserFacingError(
            f"{where}: a {str(class_name)[:60]}; only DDPMScheduler and DDIMScheduler configs are read here "
            "(save the pipeline with one of those)"
        )
    _field(config, "num_train_timesteps", schema.number(2, CHAIN_LENGTH[1], integer=True), where, 1000)
    _field(config, "steps_offset", schema.number(0, CHAIN_LENGTH[1], integer=True), where, 0)
    for key, default in (("clip_sample_range", 1.0), ("sample_max_value", 1.0), ("dynamic_thresholding_ratio", 0.995)):
        _field(config, key, schema.number(0, 1e6), where, default)
    choices = {"prediction_type": PREDICTIONS, "timestep_spacing": SPACINGS}
    if class_name == "DDPMScheduler":
        choices["variance_type"] = VARIANCES
    for key, allowed in choices.items():
        value = config.get(key) or allowed[0]
        if value not in allowed:
            raise UserFacingError(
                f"{where}: {key} {str(value)[:40]!r} is not supported here; it must be one of {', '.join(allowed)}"
            )
    if config.get("rescale_betas_zero_snr"):
        raise UserFacingError(
            f"{where}: rescale_betas_zero_snr is not supported here (ᾱ = 0 at the last step leaves x̂₀ from ε̂ undefined)"
        )


def load_diffusers_model(source: FolderConfig | str | Path, device: str = "auto") -> DiffusersModel:
    """Read and check the folder (unless given read), then load its UNet (float32, safetensors
    only) onto `device`."""
    folder = source if isinstance(source, FolderConfig) else read_folder(source)
    resolved = resolve_device(device)
    # Deferred: diffusers takes seconds to import and only diffusers folders (and IF) need it.
    from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()  # our own progress and messages only
    diffusers_logging.set_verbosity_error()
    scheduler_class = DDPMScheduler if folder.scheduler_class == "DDPMScheduler" else DDIMScheduler
    try:
        scheduler = scheduler_class.from_config(folder.scheduler_config)
    except (NotImplementedError, ValueError, TypeError) as exc:
        raise UserFacingError(f"{folder.source}: its scheduler config does not build ({exc})") from None
    try:
        with warnings.catch_warnings():
            # deprecations between diffusers and huggingface_hub's versions, nothing a user can act on
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            unet = UNet2DModel.from_pretrained(
                folder.source,
                subfolder=folder.unet_subfolder,
                use_safetensors=True,
                local_files_only=True,
                torch_dtype=torch.float32,
                variant=folder.weights_variant,
            )
    except Exception as exc:  # diffusers raises OSError, ValueError, EnvironmentError...: one line each
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserFacingError(f"could not load the UNet of {folder.source}: {first}") from None
    return DiffusersModel(folder, unet.to(resolved).eval(), scheduler, resolved)
