"""The shared timeline's arithmetic: runs of different lengths on one slider, lined up by
normalized time (the same fraction of each run) or by model evaluations spent (NFE).

Pure functions of each run's frames and length, so the Compare view (through `core.session`) and
the exported page (`core.exports.html_page`) line runs up the same way."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from diffusion_stepper.core.diffusion.rules.catalogue import evaluations_before
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.run_meta import RunMeta

ALIGN_TIME, ALIGN_NFE = "time", "nfe"
ALIGNMENTS = (ALIGN_TIME, ALIGN_NFE)


@dataclass(frozen=True)
class Track:
    """One run on the timeline: its frames so far and the length it will have."""

    trajectory: Trajectory
    length: int

    def evaluations(self, index: int) -> int:
        """Model evaluations spent to reach frame `index`: the frame's own count once it exists,
        else what the run's sampler will have spent (one per step for runs that say nothing)."""
        frames = self.trajectory.frames
        if index < len(frames) and "nfe" in frames[index].coeffs:
            return int(frames[index].coeffs["nfe"])
        meta = self._run_meta
        return evaluations_before(meta.sampler, index, self.length - 1, meta.family == "flow")

    @cached_property
    def _run_meta(self) -> RunMeta:
        """Read once per track: `evaluations` runs inside bisections."""
        return self.trajectory.run_meta

    @property
    def total_evaluations(self) -> int:
        return self.evaluations(self.length - 1)

    def frame_within(self, evaluations: int) -> int:
        """The last frame reached within `evaluations` model evaluations."""
        low, high = 0, self.length - 1
        while low < high:  # the counts grow with the frame index: bisect
            middle = (low + high + 1) // 2
            if self.evaluations(middle) <= evaluations:
                low = middle
            else:
                high = middle - 1
        return low


def check_align(align: str) -> None:
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be {ALIGN_TIME!r} or {ALIGN_NFE!r}, got {align!r}")


def timeline_length(tracks: Sequence[Track], align: str) -> int:
    """The slider's positions: the longest run's frames, or its evaluations + 1."""
    if align == ALIGN_NFE:
        return max((track.total_evaluations + 1 for track in tracks), default=1)
    return max((track.length for track in tracks), default=1)


def frame_index(track: Track, position: int, length: int, align: str) -> int:
    """The frame of `track` shown at a position of a timeline `length` long."""
    if align == ALIGN_NFE:
        return track.frame_within(position)
    if length <= 1 or track.length <= 1:
        return 0
    return min(track.length - 1, round(position / (length - 1) * (track.length - 1)))


def position_of(track: Track, index: int, length: int, align: str) -> int:
    """The first position of a timeline `length` long that shows frame `index` of `track`."""
    if align == ALIGN_NFE:
        return track.evaluations(index)
    if track.length <= 1:
        return 0
    return math.ceil((index - 0.5) / (track.length - 1) * (length - 1)) if index > 0 else 0
