"""Train a tiny diffusers DDPM on coloured discs (32×32 RGB) and save it as DDPMPipeline does.

    python examples/tiny_diffusers_ddpm.py --out discs-ddpm            # 3 to 5 minutes on a 2-core CPU
    diffusion-stepper sample diffusers --model-dir discs-ddpm --sampler ddim --steps 50 --out discs.npz
    diffusion-stepper discs.npz                                         # step through it in the app

A diffusers folder made offline, in minutes, for trying `sample diffusers` and the app's Add
checkpoint… where no hub model can be downloaded; the screenshot of a diffusers run in the Step view
in docs/your-own-model.md was made from it (600 iterations). A real DDPMPipeline folder (google/ddpm-cifar10-32,
or your own from diffusers' training tutorial) is used the same way.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

SIZE = 32
COLOURS = torch.tensor([[0.9, 0.2, 0.2], [0.2, 0.7, 0.3], [0.2, 0.4, 0.9], [0.95, 0.8, 0.2]])


def discs(n: int, generator: torch.Generator) -> torch.Tensor:
    """n pictures of one coloured disc on a dark ground, in [-1, 1] as diffusers' models take them."""
    rows, columns = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    centre = torch.randint(9, SIZE - 9, (n, 2), generator=generator)
    radius = torch.randint(5, 9, (n,), generator=generator)
    colour = COLOURS[torch.randint(0, len(COLOURS), (n,), generator=generator)]
    distance = (rows[None] - centre[:, 0, None, None]) ** 2 + (columns[None] - centre[:, 1, None, None]) ** 2
    inside = distance <= radius[:, None, None] ** 2
    ground = torch.full((n, 3, SIZE, SIZE), -0.8)
    return torch.where(inside[:, None], colour[:, :, None, None] * 2 - 1, ground)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the folder to write (unet/, scheduler/, model_index.json)")
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)  # the UNet's first weights
    generator = torch.Generator().manual_seed(args.seed)
    unet = UNet2DModel(
        sample_size=SIZE,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(32, 64, 64),
        norm_num_groups=8,
        down_block_types=("DownBlock2D",) * 3,
        up_block_types=("UpBlock2D",) * 3,
    )
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-3)
    started = time.monotonic()
    for iteration in range(args.iterations):
        clean = discs(32, generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (clean.shape[0],), generator=generator)
        noise = torch.randn(clean.shape, generator=generator)
        loss = F.mse_loss(unet(scheduler.add_noise(clean, noise, t), t).sample, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if iteration % 100 == 0 or iteration == args.iterations - 1:
            elapsed = time.monotonic() - started
            print(f"iteration {iteration + 1}/{args.iterations}: loss {loss.item():.4f}, {elapsed:.0f} s")
    DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
