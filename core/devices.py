"""Which torch device a run uses: CUDA when present, else the CPU, unless the user says otherwise."""

from __future__ import annotations

import torch

from diffusion_stepper.core.errors import UserFacingError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserFacingError(
                f"device {name} was asked for, but this machine has no CUDA device: choose the CPU device "
                "(--device cpu) instead"
            )
        return torch.device(name)
    raise UserFacingError(f"unknown device {name!r}; use one of {', '.join(DEVICE_CHOICES)}")


def make_generator(seed: int, device: torch.device | str) -> torch.Generator:
    """The one source of randomness for a run: every draw in core takes this generator."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator
