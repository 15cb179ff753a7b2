"""Training runs that go wrong, for the Train tab's tests. The app trains in a child process, so a
fault is planted there: each function here is what the child runs in place of `train_on_mnist`
(`TrainingController.train_items`), picklable because it is a module-level function."""

from __future__ import annotations

import os
import signal

import torch

from diffusion_stepper.core.diffusion.objectives import FlowObjective
from diffusion_stepper.core.mnist.training import EpochEvent, train_on_mnist


def diverging_at_the_third_iteration(config, out_dir, data_dir=None, resume_from=None):
    original = FlowObjective.training_loss
    calls = []

    def diverging(self, net, x, cond, generator):
        calls.append(1)
        loss = original(self, net, x, cond, generator)
        return loss * float("nan") if len(calls) == 3 else loss

    FlowObjective.training_loss = diverging  # in the child only
    yield from train_on_mnist(config, out_dir, data_dir, resume_from)


def out_of_memory(config, out_dir, data_dir=None, resume_from=None):
    def no_memory(self, net, x, cond, generator):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    FlowObjective.training_loss = no_memory
    yield from train_on_mnist(config, out_dir, data_dir, resume_from)


def killed_after_the_first_epoch(config, out_dir, data_dir=None, resume_from=None):
    """As the kernel's out-of-memory killer would: no exception, no last word."""
    for event in train_on_mnist(config, out_dir, data_dir, resume_from):
        yield event
        if isinstance(event, EpochEvent):
            os.kill(os.getpid(), signal.SIGKILL)
