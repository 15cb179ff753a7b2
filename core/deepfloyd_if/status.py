"""What a run of IF will use and what this machine has, as the IF dock's status lines: the stage I
weights (a folder, or a hub id and whether it is downloaded), the GPU, the stages already loaded,
and the prompt embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from diffusion_stepper.core.deepfloyd_if.embeddings import PromptEmbeddings
from diffusion_stepper.core.deepfloyd_if.models import (
    REQUIREMENTS,
    IFStage,
    loaded_stages,
    stage_source,
    weights_present,
)
from diffusion_stepper.core.devices import mps_available


def describe_loaded(stage: IFStage) -> str:
    """ "stage I (IF-I-XL-v1.0, 4300.0 M parameters, float16) on cuda:0"."""
    parameters = sum(parameter.numel() for parameter in stage.unet.parameters())
    dtype = str(stage.dtype).removeprefix("torch.")
    about = f"{Path(stage.source).name}, {parameters / 1e6:.1f} M parameters, {dtype}"
    return f"stage {'I' * stage.stage} ({about}) on {stage.device}"


def folder_summary(folder: str) -> str:
    """ "16 px, 3 input channels" for a stage folder, from its UNet config alone (nothing loaded)."""
    config_path = Path(folder) / "unet" / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return "not an IF stage folder (no unet/config.json)"
    return f"{config.get('sample_size', '?')} px, {config.get('in_channels', '?')} input channels"


def stage_one_line(folder: str, size: str | None) -> str:
    if folder:
        return f"Stage I: folder {Path(folder).name} ({folder_summary(folder)})"
    source = stage_source(1, size)
    need = REQUIREMENTS[source]
    if weights_present(source):
        return f"Stage I: {source}, in the Hugging Face cache (sampling needs about {need.vram_gb:g} GB of GPU memory)"
    return (
        f"Stage I: {source}, not downloaded yet ({need.describe()}; accept the license on its model card, "
        "then `hf auth login`; the first run downloads it)"
    )


def machine_line() -> str:
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        return f"GPU: {torch.cuda.get_device_name(0)}, {(total - free) / 2**30:.1f} of {total / 2**30:.0f} GB in use"
    if mps_available():
        return "GPU: Apple's GPU through MPS (it shares the Mac's memory)"
    return "no GPU here: IF runs only with “allow the CPU”, slowly; saved IF runs open fine (File ▸ Open)"


def status_text(folder: str, size: str | None, embeddings: PromptEmbeddings | None) -> str:
    """The dock's status: stage I, the machine, what is loaded, the prompts (one line each)."""
    loaded = [describe_loaded(stage) for stage in loaded_stages()]
    in_memory = "loaded: " + "; ".join(loaded) if loaded else "nothing loaded yet: the first run loads the model"
    prompts = f"{len(embeddings.prompts)} prompts in the embeddings" if embeddings else "no embeddings file yet"
    return "\n".join((stage_one_line(folder.strip(), size), machine_line(), in_memory, prompts))
