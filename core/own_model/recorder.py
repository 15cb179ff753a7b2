"""A student's own sampling loop, recorded frame by frame as the app's samplers record theirs.

    rec = FrameRecorder(objective="ddpm", value_range=(0, 1), name="my DDPM")
    for t in timesteps:                      # the student's loop, unchanged
        ...
        rec.add(t=t, x_t=x, x0_hat=x0, noise_hat=eps)
    rec.add(t=0, x_t=x)                      # the final sample: a frame with no estimates

Pictures may be torch tensors or numpy arrays, (N, C, H, W), (C, H, W) or (H, W). Other named
pictures become the frame's extras (shown as panels); named numbers become its coefficients
(`alpha_bar_t=...` puts ᾱ_t in the caption). The loop's own update rule is not known, so its
frames carry no update record: the app shows the pictures, the numbers and the histograms.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from diffusion_stepper.core.diffusion.schedules import DiscreteSchedule
from diffusion_stepper.core.diffusion.theory import CLEAN_EXTRA
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.frames import FORWARD_NOISED, IMAGE_FIELDS, Frame, Trajectory, to_cpu
from diffusion_stepper.core.limits import PICTURE_CHANNELS, SEED
from diffusion_stepper.core.own_model.model_sampling import OBJECTIVES, schedule_from, value_range_of, whole_number
from diffusion_stepper.core.run_meta import DENSITY, EXACT_EXTRAS, GRID_EXTRAS, RECORDED_SOURCE

# Names with a meaning of their own in a frame: a recorded extra must not take one
RESERVED_NAMES = {"t", "final", "nfe", FORWARD_NOISED, CLEAN_EXTRA, *IMAGE_FIELDS, *GRID_EXTRAS, *EXACT_EXTRAS, DENSITY}


class RecorderError(UserFacingError, ValueError):
    """A frame the recorder cannot keep (a wrong shape, NaN, a frame after the final one)."""


def as_images(value, name: str, where: str) -> torch.Tensor:
    """A picture as (N, C, H, W) float32 on the CPU, from a tensor or an array of 2 to 4 dimensions;
    a 3-dimensional one is (C, H, W) when it has 1 or 3 channels, else (N, H, W)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise RecorderError(f"{name} {where} must be a tensor or an array, got {type(value).__name__}")
    if value.ndim == 2:
        value = value[None, None]
    elif value.ndim == 3:
        value = value[None] if value.shape[0] in (1, 3) else value[:, None]
    if value.ndim != 4:
        raise RecorderError(f"{name} {where} must be (N, C, H, W), (C, H, W) or (H, W), got shape {tuple(value.shape)}")
    if value.shape[1] not in PICTURE_CHANNELS:
        hint = ": channels come first, (N, C, H, W)" if value.shape[-1] in PICTURE_CHANNELS else ""
        raise RecorderError(
            f"{name} {where} has {value.shape[1]} channels (shape {tuple(value.shape)}); pictures are grey (1) or "
            f"RGB (3){hint}"
        )
    images = to_cpu(value)
    if not torch.isfinite(images).all():
        raise RecorderError(f"{name} {where} holds NaN or infinite values")
    return images


def _class_labels(labels) -> torch.Tensor:
    """One class per sample, whole numbers (a list, an array or a tensor)."""
    array = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
    if array.dtype.kind not in "iu" or (array < 0).any():
        raise RecorderError(f"labels must be whole numbers from 0, one per sample, got {array.tolist()[:10]}")
    return torch.as_tensor(array, dtype=torch.int64)


class FrameRecorder:
    """Frames from the student's loop, kept on the CPU as they arrive; `trajectory` is the run."""

    def __init__(
        self,
        objective: str = "ddpm",
        value_range=(0.0, 1.0),
        name: str = "my sampler",
        *,
        schedule=None,
        labels=None,
        seed: int | None = None,
    ):
        if objective not in OBJECTIVES:
            raise RecorderError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        if objective == "flow" and schedule is not None:
            raise RecorderError("schedule= is a DDPM loop's noise schedule; a flow loop has none")
        seed = None if seed is None else whole_number(seed, "seed", SEED)
        self.objective = objective
        self.noise_field = "eps_hat" if objective == "ddpm" else "v_hat"
        self.value_range = value_range_of(value_range)
        self.name = str(name)
        self.schedule: DiscreteSchedule | None = None if schedule is None else schedule_from(schedule)
        self.labels = None if labels is None else _class_labels(labels)
        self.seed = seed
        self.frames: list[Frame] = []
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._finished = False

    def add(self, *, t, x_t, x0_hat=None, noise_hat=None, **named) -> None:
        """One step of the loop: its t, the sample x_t it started from, and the model's estimates
        at x_t. Leave out both estimates for the final sample, which ends the run. A frame refused
        (one line saying why) leaves the recorder as it was."""
        index = len(self.frames)
        where = f"at frame {index}"
        if self._finished:
            raise RecorderError(
                f"the run already ended with a frame without estimates (frame {index - 1}): add it last"
            )
        t = self._time(t, where)
        if (x0_hat is None) != (noise_hat is None):
            raise RecorderError(f"give both x0_hat and noise_hat {where}, or neither for the final sample")
        shapes: dict[str, tuple[int, ...]] = {}  # the shapes this frame sets, kept only if it is
        x_t = self._checked_shape("x_t", as_images(x_t, "x_t", where), where, shapes)
        final = x0_hat is None
        if final:
            x0_hat, noise_hat = x_t, torch.zeros_like(x_t)
        else:
            x0_hat = self._checked_shape("x_t", as_images(x0_hat, "x0_hat", where), where, shapes, "x0_hat")
            noise_hat = self._checked_shape("x_t", as_images(noise_hat, "noise_hat", where), where, shapes, "noise_hat")
        coeffs = {"t": t, **({"final": 1.0} if final else {})}
        if self.schedule is not None:
            coeffs["alpha_bar_t"] = self.schedule.alpha_bar(int(t))
        extras = {}
        for key, value in named.items():
            if key in RESERVED_NAMES:
                raise RecorderError(f"{key!r} {where} is a name the app gives its own meaning: choose another")
            if isinstance(value, numbers.Real) or (isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0):
                number = float(value)
                if not np.isfinite(number):
                    raise RecorderError(f"{key} {where} is {number}: numbers must be finite")
                coeffs[key] = number
            else:
                extras[key] = self._checked_shape(key, as_images(value, key, where), where, shapes)
        self.frames.append(
            Frame(
                index=index, t=t, x_t=x_t, x0_hat=x0_hat, coeffs=coeffs, extras=extras, **{self.noise_field: noise_hat}
            )
        )
        self._shapes.update(shapes)
        self._finished = final

    def _time(self, t, where: str) -> float:
        if isinstance(t, (torch.Tensor, np.ndarray)):
            count = t.size if isinstance(t, np.ndarray) else t.numel()
            if count == 1:
                t = t.item()
            else:
                raise RecorderError(f"t {where} must be one number, got shape {tuple(t.shape)}")
        if not isinstance(t, numbers.Real) or not np.isfinite(float(t)):
            raise RecorderError(f"t {where} must be a finite number, got {t!r}")
        t = float(t)
        if self.objective == "ddpm":
            if t != int(t):
                raise RecorderError(f"t {where} must be the integer timestep of a DDPM loop, got {t:g}")
            if self.schedule is not None and not 0 <= t <= self.schedule.T:
                raise RecorderError(f"t {where} must be in 0..{self.schedule.T} (the schedule's T), got {t:g}")
        elif not 0.0 <= t <= 1.0:
            raise RecorderError(f"t {where} must be flow time in [0, 1], got {t:g}")
        return t

    def _checked_shape(
        self, key: str, images: torch.Tensor, where: str, shapes: dict, field: str | None = None
    ) -> torch.Tensor:
        """Every picture under one name keeps the shape it first had; the estimates, x_t's."""
        expected = self._shapes.get(key) or shapes.setdefault(key, tuple(images.shape))
        if tuple(images.shape) != expected:
            raise RecorderError(
                f"{field or key} {where} has shape {tuple(images.shape)}, but {key} had {expected}: keep one shape"
            )
        return images

    @property
    def trajectory(self) -> Trajectory:
        """The recorded run, as the app, `inspect` and `export` read it."""
        if not self.frames:
            raise RecorderError("nothing recorded yet: call add(t=..., x_t=..., x0_hat=..., noise_hat=...) each step")
        num = self.frames[0].x_t.shape[0]
        if self.labels is not None and self.labels.shape[0] != num:
            raise RecorderError(f"labels gives {self.labels.shape[0]} classes for {num} samples")
        params: dict = {"steps": len(self.frames) - 1, "num_samples": num, "source": RECORDED_SOURCE}
        if self.schedule is not None:
            params["alpha_bars"] = [float(value) for value in self.schedule.alpha_bars]
        meta = {
            "algorithm": self.objective,
            "model": self.name,
            "checkpoint": None,
            "seed": self.seed,
            "params": params,
            "value_range": list(self.value_range),
        }
        return Trajectory(meta=meta, frames=list(self.frames), labels=self.labels)
