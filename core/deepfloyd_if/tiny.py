"""Tiny IF-architecture stages with random weights, built in code: for the tests, the benchmarks
and the screenshots, with no download and seconds on a CPU.

They keep IF's structure where it matters to our loop: a UNet2DConditionModel with IF's block
types, text projection and attention pooling, twice the image channels out (noise + learned
variance), stage II's noise-level class embedding, and a DDPMScheduler configured as IF-I-XL's
(squaredcos_cap_v2, learned_range, dynamic thresholding). The weights are random.
"""

from __future__ import annotations

from pathlib import Path

import torch

from diffusion_stepper.core.deepfloyd_if.models import UNET_AND_SCHEDULERS_ONLY

EMBED_DIM = 32  # T5-XXL's is 4096; tiny embeddings keep the tests fast
TOKENS = 77


def if_scheduler_config(stage: int = 1) -> dict:
    """IF's DDPMScheduler as diffusers converted it: x0 thresholded at 1.5 in stage I, 1.0 in stage II."""
    return dict(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        beta_start=0.0001,
        beta_end=0.02,
        prediction_type="epsilon",
        variance_type="learned_range",
        thresholding=True,
        dynamic_thresholding_ratio=0.95,
        sample_max_value=1.5 if stage == 1 else 1.0,
        clip_sample=True,
        clip_sample_range=1.0,
    )


def tiny_unet(stage: int, sample_size: int):
    # Deferred: diffusers takes seconds to import and only DeepFloyd IF needs it.
    from diffusers import UNet2DConditionModel

    extra = {}
    if stage == 2:
        extra = dict(
            class_embed_type="timestep",
            mid_block_scale_factor=1.414,
            time_embedding_act_fn="gelu",
            time_embedding_dim=32,
        )
    return UNet2DConditionModel(
        sample_size=sample_size,
        layers_per_block=1,
        block_out_channels=[16, 32],
        down_block_types=["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"],
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=["SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"],
        in_channels=3 if stage == 1 else 6,
        out_channels=6,
        cross_attention_dim=EMBED_DIM,
        encoder_hid_dim=EMBED_DIM,
        attention_head_dim=8,
        addition_embed_type="text",
        addition_embed_type_num_heads=2,
        cross_attention_norm="group_norm",
        resnet_time_scale_shift="scale_shift",
        act_fn="gelu",
        norm_num_groups=8,
        **extra,
    )


def build_tiny_stage(stage: int, folder: Path, sample_size: int | None = None, seed: int = 0) -> Path:
    """Save a random tiny stage I (16 px) or II (32 px) pipeline to `folder` with save_pretrained."""
    torch.manual_seed(seed)
    return save_if_stage(stage, tiny_unet(stage, sample_size or (16 if stage == 1 else 32)), folder)


def save_if_stage(stage: int, unet, folder: Path, variant: str | None = None) -> Path:
    """Save `unet` with IF's schedulers as a stage folder in diffusers' layout, as the hub's repos hold
    it (stage II also has its image-noising scheduler), so that it loads the way the real model does."""
    # Deferred: diffusers takes seconds to import and only DeepFloyd IF needs it.
    from diffusers import DDPMScheduler, IFPipeline, IFSuperResolutionPipeline

    parts = dict(unet=unet, scheduler=DDPMScheduler(**if_scheduler_config(stage)), **UNET_AND_SCHEDULERS_ONLY)
    if stage == 1:
        pipeline = IFPipeline(**parts)
    else:
        noising = DDPMScheduler(
            num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001, beta_end=0.02
        )
        pipeline = IFSuperResolutionPipeline(image_noising_scheduler=noising, **parts)
    pipeline.save_pretrained(folder, variant=variant)
    return Path(folder)


def tiny_embeddings(prompts: list[str], seed: int = 0) -> dict[str, torch.Tensor]:
    """A course-format embeddings table (prompt -> [1, 77, D]) with the empty prompt included."""
    generator = torch.Generator().manual_seed(seed)
    table = {"": torch.randn(1, TOKENS, EMBED_DIM, generator=generator)}
    for prompt in prompts:
        table[prompt] = torch.randn(1, TOKENS, EMBED_DIM, generator=generator)
    return table


def build_tiny_t5(folder: Path, seed: int = 0) -> Path:
    """A tiny T5 encoder and a word-level tokenizer saved as IF's repos hold them
    (`text_encoder/`, `tokenizer/`), so the --t5 path loads the way it does from the hub."""
    # Deferred: tokenizers takes seconds to import and only DeepFloyd IF needs it.
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    words = ["<pad>", "</s>", "<unk>", "a", "an", "photo", "of", "cat", "dog", "high", "quality", "oil", "painting"]
    tokenizer = Tokenizer(models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(Path(folder) / "tokenizer")
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(words), d_model=EMBED_DIM, d_kv=8, d_ff=64, num_layers=1, num_heads=2)
    T5EncoderModel(config).save_pretrained(Path(folder) / "text_encoder")
    return Path(folder)
