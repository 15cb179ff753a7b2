"""Training throughput (images/s): core.mnist.training against the course notebook's data path.

    python bench/train_throughput.py [--device cpu|cuda] [--hidden 64] [--batch-size 128] [--iterations 60]

Baseline: a per-item Dataset that builds a PIL image per digit and converts it to a tensor (what
torchvision's MNIST + ToTensor do), batched by a DataLoader, moved to the device per batch, then
the same model, objective and optimizer step. Ours: `core.mnist.training.train`, which holds MNIST as
one tensor on the device. Both time the same number of iterations after a short warm-up.
Goal: ours >= 1.5x the baseline on the same device.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from PIL import Image

from diffusion_stepper.core.devices import make_generator, resolve_device
from diffusion_stepper.core.mnist.data import load_mnist
from diffusion_stepper.core.mnist.recipes import recipe
from diffusion_stepper.core.mnist.training import LossEvent, train

WARMUP = 5


class PerItemMnist(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        picture = Image.fromarray(self.images[index], mode="L")
        tensor = torch.from_numpy(np.asarray(picture, dtype=np.float32) / 255.0).unsqueeze(0)
        return tensor, int(self.labels[index])


def baseline(config, split, device, iterations):
    model = config.build_model().to(device)
    objective = config.build_objective()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = make_generator(0, device)
    loader = torch.utils.data.DataLoader(
        PerItemMnist(split.images.numpy(), split.labels.numpy()), batch_size=config.batch_size, shuffle=True
    )
    done, begin = 0, None
    while done < iterations + WARMUP:
        for x, _labels in loader:
            if done == WARMUP:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                begin = time.perf_counter()
            x = x.to(device)
            loss = objective.training_loss(model, x, None, generator)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            if done == iterations + WARMUP:
                break
    loss.item()
    return iterations * config.batch_size / (time.perf_counter() - begin)


def ours(config, split, iterations, out_dir):
    config.limit = (iterations + WARMUP) * config.batch_size
    config.log_every = 1
    config.epoch_samples = 0
    begin = None
    for event in train(config, split, out_dir):
        if isinstance(event, LossEvent):
            if event.iteration == WARMUP:
                begin = time.perf_counter()
            if event.iteration == iterations + WARMUP:
                return iterations * config.batch_size / (time.perf_counter() - begin)
    raise RuntimeError("training ended early")


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--data-dir", help="another copy of MNIST (default: the bundled one)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    split = load_mnist("train", args.data_dir)
    config = recipe("time", "ddpm")
    config.hidden, config.batch_size, config.device = args.hidden, args.batch_size, str(device)
    base = baseline(config, split, device, args.iterations)
    with tempfile.TemporaryDirectory() as out_dir:
        mine = ours(config, split, args.iterations, out_dir)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    )
    print(f"device: {name}, torch {torch.__version__}")
    print(f"time UNet D={args.hidden}, batch {args.batch_size}, {args.iterations} iterations after {WARMUP} warm-up")
    print(
        f"baseline (per-item Dataset + DataLoader): {base:.0f} img/s   ours: {mine:.0f} img/s   ratio: "
        f"{mine / base:.2f} (goal >= 1.5)"
    )


if __name__ == "__main__":
    main()
