"""The part A experiments of CS180 as runs: each turns one set of IF settings (model, prompts,
image, mask, seed, γ, ...) into the requests of the course's figure.

The app's Experiments ▸ Part A menu and `diffusion-stepper experiment if NAME` read this one
registry (a `core.experiments.Experiments`, as every family's), so every one-click figure can be
made (and saved) headless too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from diffusion_stepper.core.deepfloyd_if.sampling import DEFAULT_GUIDANCE, DEFAULT_STRIDE
from diffusion_stepper.core.deepfloyd_if.tasks import DEFAULT_TIMESTEPS, IFRequest
from diffusion_stepper.core.diffusion.rules.catalogue import IF_SAMPLERS
from diffusion_stepper.core.experiments import Experiment, Experiments

DENOISERS_T = 690  # the comparison of 1.2-1.4 at one noise level: t = 690 is i_start 10 of the stride-30 chain
DENOISERS_I_START = 10


def _forward(settings: IFRequest) -> list[IFRequest]:
    return [dataclasses.replace(settings.for_task("forward"), t=list(DEFAULT_TIMESTEPS))]


def _denoisers(settings: IFRequest) -> list[IFRequest]:
    """Blur, one step and iterative denoising from one noise level; the UNet's without CFG, as in the course."""
    without_cfg = {"no_cfg": True, "guidance": None}
    return [
        dataclasses.replace(settings.for_task("blur"), t=[DENOISERS_T]),
        dataclasses.replace(settings.for_task("one-step"), t=[DENOISERS_T], **without_cfg),
        dataclasses.replace(
            settings.for_task("iterative"),
            stride=DEFAULT_STRIDE,
            steps=None,
            i_start=[DENOISERS_I_START],
            **without_cfg,
        ),
    ]


def _cfg(settings: IFRequest) -> list[IFRequest]:
    """1.5 against 1.6: the same seed, without and with guidance."""
    sample = settings.for_task("sample")
    return [
        dataclasses.replace(sample, no_cfg=True, guidance=None),
        dataclasses.replace(sample, no_cfg=False, guidance=settings.guidance or DEFAULT_GUIDANCE),
    ]


def _course_strip(task: str) -> Callable[[IFRequest], list[IFRequest]]:
    """The course's strip: i_start 1, 3, 5, 7, 10, 20 of the stride-30 chain, one run each."""
    return lambda settings: dataclasses.replace(
        settings.for_task(task), i_start=None, stride=DEFAULT_STRIDE, steps=None
    ).expand()


def _plain(task: str) -> Callable[[IFRequest], list[IFRequest]]:
    """The task with the settings as they are."""
    return lambda settings: settings.for_task(task).expand()


RACE_STEPS = 20  # IF's samplers all evaluate once a step, so equal steps are equal NFE


def _samplers(settings: IFRequest) -> list[IFRequest]:
    """IF's samplers from the same noise and prompt at equal NFE: DDPM, DDIM η = 0, DPM-Solver++(2M).
    The chain is the scheduler's own `set_timesteps(N)` (N = the settings' steps, default 20)."""
    sample = dataclasses.replace(settings.for_task("sample"), stride=None, steps=settings.steps or RACE_STEPS)
    return [dataclasses.replace(sample, sampler=name, eta=0.0 if name == "ddim" else None) for name in IF_SAMPLERS]


PART_A_EXPERIMENTS = Experiments(
    "part A experiment",
    (
        Experiment("forward", "Forward process at t = 250, 500, 750", _forward),
        Experiment("denoisers", "Blur vs one-step vs iterative denoising (PSNR)", _denoisers, compare=True),
        Experiment("cfg", "Sampling without and with CFG", _cfg, compare=True),
        Experiment("sdedit", "SDEdit strip, i_start = 1, 3, 5, 7, 10, 20", _course_strip("sdedit"), compare=True),
        Experiment("inpaint", "Inpainting with the mask", _plain("inpaint")),
        Experiment(
            "text-i2i", "Text-conditional image-to-image, i_start = 1 … 20", _course_strip("text-i2i"), compare=True
        ),
        Experiment("anagram", "Visual anagram", _plain("anagram")),
        Experiment("hybrid", "Hybrid image", _plain("hybrid")),
        Experiment("samplers", "Samplers race: DDPM, DDIM, DPM-Solver++", _samplers, compare=True, race=True),
    ),
)
