"""IF sampling speed: our stepped CFG sampler (every frame captured) against diffusers' pipelines.

    python bench/if_step_time.py [--stage 1|2] [--model-dir DIR | --unet-config CONFIG.json] \\
        [--device cuda] [--steps 20] [--repeats 3]

Baseline: diffusers' IFPipeline (stage I) or IFSuperResolutionPipeline (stage II) on the same
UNet, scheduler, prompt embeddings, seed and steps, with CFG. Measured: `sample if` as the app
runs it, which also copies x_t, x0_hat, eps_hat and the CFG parts of every step to the CPU.
Both run alternately `repeats` times after a warm-up; the ratio of median per-step times is the
overhead (goal <= 1.03), and on CUDA the peak GPU memory of each is reported too.

The UNet comes from a local stage folder (`--model-dir`), from a UNet config file with random
fp16 weights (`--unet-config`: the published config.json of IF-I-XL or IF-II-L, for machines
that cannot download the weights), or by default from the tiny IF-architecture model the tests use.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from diffusion_stepper.core.deepfloyd_if.embeddings import PromptEmbeddings
from diffusion_stepper.core.deepfloyd_if.models import UNET_AND_SCHEDULERS_ONLY, load_if_stage
from diffusion_stepper.core.deepfloyd_if.tasks import IFRequest
from diffusion_stepper.core.deepfloyd_if.tiny import TOKENS, build_tiny_stage, save_if_stage

PROMPT = "an oil painting of a snowy mountain village"


def stage_folder(args, scratch: Path) -> Path:
    """A diffusers folder for the stage: the one given, one built from a config, or the tiny one."""
    if args.model_dir:
        return Path(args.model_dir)
    if not args.unet_config:
        return build_tiny_stage(args.stage, scratch / "stage")
    from diffusers import UNet2DConditionModel

    config = json.loads(Path(args.unet_config).read_text())
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(config).to(torch.float16)
    return save_if_stage(args.stage, unet, scratch / "stage", variant="fp16")


def timed(run, device) -> tuple[float, float]:
    """Seconds and peak GPU memory (GiB; 0 on the CPU) of one call."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
    return time.perf_counter() - started, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=int, choices=[1, 2], default=1)
    parser.add_argument("--model-dir")
    parser.add_argument("--unet-config")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from diffusers import IFPipeline, IFSuperResolutionPipeline

    with tempfile.TemporaryDirectory() as scratch:
        folder = stage_folder(args, Path(scratch))
        stage = load_if_stage(args.stage, model_dir=folder, device=args.device, allow_cpu=True)
        device = stage.device
        width = stage.embedding_dim
        generator = torch.Generator().manual_seed(0)
        table = PromptEmbeddings(
            {
                "": torch.randn(1, TOKENS, width, generator=generator),
                PROMPT: torch.randn(1, TOKENS, width, generator=generator),
            }
        )
        low_res = None
        if args.stage == 2:  # a random 64 px picture to upscale (stage II's time does not depend on it)
            from PIL import Image

            size = stage.sample_size // 4
            pixels = (torch.rand(size, size, 3, generator=generator) * 255).to(torch.uint8).numpy()
            low_res = Path(scratch) / "low.png"
            Image.fromarray(pixels).save(low_res)
        pipeline_class = IFPipeline if args.stage == 1 else IFSuperResolutionPipeline
        pipeline = pipeline_class(
            unet=stage.unet,
            scheduler=stage.scheduler,
            **UNET_AND_SCHEDULERS_ONLY,
            **({"image_noising_scheduler": stage.image_noising_scheduler} if args.stage == 2 else {}),
        )
        pipeline.set_progress_bar_config(disable=True)
        embeds = {name: table.get(name).to(device, stage.dtype) for name in ("", PROMPT)}
        guidance = 7.0 if args.stage == 1 else 4.0

        def baseline():
            extra = {}
            if args.stage == 2:
                from diffusion_stepper.core.deepfloyd_if.images import load_image

                image = load_image(low_res, stage.sample_size // 4).tensor
                extra = {"image": image.to(device, stage.dtype), "noise_level": 250}
            pipeline(
                prompt_embeds=embeds[PROMPT],
                negative_prompt_embeds=embeds[""],
                num_inference_steps=args.steps,
                guidance_scale=guidance,
                generator=torch.Generator(device).manual_seed(0),
                output_type="pt",
                **extra,
            )

        def ours():
            request = IFRequest(
                task="sample" if args.stage == 1 else "upscale",
                prompt=[PROMPT],
                steps=args.steps,
                guidance=guidance,
                image=str(low_res) if low_res else None,
                stage=stage,
                prompt_table=table,
            )
            for _ in request.start().frames:
                pass

        baseline(), ours()  # warm-up: kernels, allocator, caches
        base_times, our_times, base_peaks, our_peaks = [], [], [], []
        for _ in range(args.repeats):
            seconds, peak = timed(baseline, device)
            base_times.append(seconds)
            base_peaks.append(peak)
            seconds, peak = timed(ours, device)
            our_times.append(seconds)
            our_peaks.append(peak)

    base_step = statistics.median(base_times) / args.steps
    our_step = statistics.median(our_times) / args.steps
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    )
    model = args.model_dir or args.unet_config or "tiny IF-architecture UNet (core/deepfloyd_if/tiny.py)"
    print(
        f"| {date.today()} | {where}, torch {torch.__version__} | stage {'I' * args.stage}: {model}, "
        f"{args.steps} steps, CFG | "
        f"{base_step * 1000:.2f} ms | {our_step * 1000:.2f} ms | **{our_step / base_step:.3f}** | "
        f"{max(base_peaks):.2f} / {max(our_peaks):.2f} GiB |"
    )


if __name__ == "__main__":
    main()
