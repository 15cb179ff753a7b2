"""Tiny diffusers DDPM/DDIM folders with random weights, built in code (no download, a second on a
CPU): what `DDPMPipeline.save_pretrained` writes, for the own-model tests of core and the app."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_unet(channels: int = 3, sample_size: int = 32, seed: int = 0):
    # Deferred: diffusers takes seconds to import.
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    return UNet2DModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )


def save_tiny_pipeline(folder: Path, scheduler: str = "DDPMScheduler", seed: int = 0, **scheduler_config) -> Path:
    """A tiny unconditional pipeline saved with save_pretrained (unet/, scheduler/, model_index.json);
    `scheduler_config` overrides the scheduler's defaults."""
    # Deferred: diffusers takes seconds to import.
    import diffusers

    scheduler_class = getattr(diffusers, scheduler)
    pipeline_class = diffusers.DDIMPipeline if scheduler == "DDIMScheduler" else diffusers.DDPMPipeline
    pipeline = pipeline_class(unet=tiny_unet(seed=seed), scheduler=scheduler_class(**scheduler_config))
    pipeline.save_pretrained(folder)
    return Path(folder)
