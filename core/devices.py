"""Which torch device a run uses: a CUDA GPU, else Apple's GPU (MPS), else the CPU, unless the
user says otherwise."""

from __future__ import annotations

import torch

from diffusion_stepper.core.errors import UserFacingError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
GPU_TYPES = ("cuda", "mps")  # the devices that run IF in float16 and count as "a GPU"


def mps_available() -> bool:
    """Apple's Metal GPU, on a Mac with a torch built for it."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserFacingError(
                f"device {name} was asked for, but this machine has no CUDA device: choose the CPU device "
                "(--device cpu) instead"
            )
        return torch.device(name)
    if name == "mps":
        if not mps_available():
            raise UserFacingError(
                "device mps was asked for, but this machine has no Apple GPU that torch can use (MPS needs a "
                "Mac with Apple silicon or an AMD GPU, macOS 12.3 or later): choose --device cpu instead"
            )
        return torch.device("mps")
    raise UserFacingError(f"unknown device {name!r}; use one of {', '.join(DEVICE_CHOICES)}")


def is_gpu(device: torch.device | str) -> bool:
    return torch.device(device).type in GPU_TYPES


def make_generator(seed: int, device: torch.device | str) -> torch.Generator:
    """The one source of randomness for a run: every draw in core takes this generator."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator
