"""The viewer's state, free of Qt: the runs, where the shared timeline stands, and playback.

Widgets subscribe to a `Session` and change it only through its methods, never each other
(see DESIGN.md, "Workers and the GUI"). Listeners are called with one of the event names below,
on whatever thread called the method; the GUI only calls it from its own thread.

The timeline is shared by the active run and the runs picked for comparison. Runs of different
lengths are aligned by normalized time: at position p of a timeline of P positions, a run of F
frames shows frame round(p / (P - 1) * (F - 1)). Aligned by model evaluations instead (NFE, the
sampler race), position p is the budget spent: each run shows its last frame reached within p
evaluations, so a two-evaluation Heun step holds its frame for two positions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.frames import Frame, Trajectory
from diffusion_stepper.core.run_names import default_run_name
from diffusion_stepper.core.run_store import FrameStore, FrameStoreError
from diffusion_stepper.core.timeline import (
    ALIGN_TIME,
    Track,
    check_align,
    frame_index,
    position_of,
    timeline_length,
)
from diffusion_stepper.core.toy2d.render import ParticleViewOptions

# Event names passed to listeners.
RUNS = "runs"  # a run was added, removed, renamed, finished, or the active/compared set changed
FRAMES = "frames"  # a run received frames (the timeline grew)
POSITION = "position"  # the timeline position moved
PLAYBACK = "playback"  # play/pause, fps or loop changed
PARTICLE_VIEW = "particle-view"  # what the 2D pictures show changed

# How the shared timeline aligns runs of different lengths.

# Run states.
RUNNING, DONE, CANCELLED, FAILED, LOADED = "running", "done", "cancelled", "failed", "loaded"

MIN_FPS, MAX_FPS = 0.5, 60.0

# Memory: the frames of runs off screen (neither active nor compared) stay in memory up to this
# many bytes; past it the runs shown longest ago keep their frames in a temporary file instead, and
# get them back when shown again (a default Generate is about 4 MB, an IF stage II run hundreds).
OFF_SCREEN_FRAMES_BYTES = 384 * 2**20
UNDO_DEPTH = 20  # removed runs that Undo can bring back; older ones are let go

Listener = Callable[[str], None]


@dataclass
class Run:
    id: int
    name: str
    trajectory: Trajectory
    expected_frames: int  # how many frames the run will have when complete
    state: str = RUNNING
    error: str | None = None
    path: Path | None = None  # where it was loaded from or last saved to
    spilled: Path | None = None  # while off screen: the temporary file its frames wait in (see Session)
    spilled_frames: int = 0  # how many frames it had when they went to disk
    last_shown: int = 0  # when it was last on screen, in the session's clock of shows

    @property
    def produced(self) -> int:
        return self.spilled_frames if self.spilled is not None else len(self.trajectory)

    @property
    def frame_bytes(self) -> int:
        """Bytes its frames hold in memory (0 while they are on disk)."""
        return sum(frame.nbytes for frame in self.trajectory.frames)

    @property
    def length(self) -> int:
        """The run's length on the timeline: what it will have, or what it has if it stopped early."""
        return self.expected_frames if self.state == RUNNING else max(self.produced, 1)

    @property
    def is_complete(self) -> bool:
        return self.state != RUNNING

    @property
    def track(self) -> Track:
        """The run as the timeline lines it up (core.timeline)."""
        return Track(self.trajectory, self.length)


@dataclass
class FrameView:
    """What a run shows at a timeline position."""

    run: Run
    index: int  # the frame the position maps to
    frame: Frame | None  # None while that frame is still pending
    pending: bool


@dataclass
class Session:
    runs: list[Run] = field(default_factory=list)
    active_id: int | None = None
    compared_ids: list[int] = field(default_factory=list)
    position: int = 0
    follow_live: bool = True  # while a run samples, the position follows its newest frame
    playing: bool = False
    fps: float = 10.0
    loop: bool = True
    align: str = ALIGN_TIME  # how runs of different lengths line up on the timeline
    # what every 2D picture shows (the Step and Compare views, and exports): one choice for all
    particle_view: ParticleViewOptions = field(default_factory=ParticleViewOptions)
    _listeners: list[Listener] = field(default_factory=list, repr=False)
    removed: list[tuple[Run, bool]] = field(default_factory=list, repr=False)  # (run, was compared), for undo
    _next_id: int = 1
    _play_anchor: tuple[float, int] | None = None  # (clock, position) when playback (re)started
    off_screen_bytes: int = OFF_SCREEN_FRAMES_BYTES  # see OFF_SCREEN_FRAMES_BYTES
    _shows: int = 0  # the clock of Run.last_shown
    _frame_store: FrameStore = field(default_factory=FrameStore, repr=False, compare=False)  # spilled runs' frames

    # --- subscription ---------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: str) -> None:
        for listener in list(self._listeners):
            listener(event)

    def particle_view_changed(self) -> None:
        """Say that `particle_view` was edited, so every 2D picture is drawn again."""
        self._emit(PARTICLE_VIEW)

    # --- runs -----------------------------------------------------------------------------------

    def add_run(
        self,
        meta: dict,
        expected_frames: int,
        labels: torch.Tensor | None = None,
        name: str | None = None,
        frames: list[Frame] | None = None,
        state: str = RUNNING,
        path: Path | None = None,
        data: torch.Tensor | None = None,
    ) -> Run:
        """Add a run (empty while sampling, or complete when loaded) and make it the active one."""
        trajectory = Trajectory(meta=meta, frames=list(frames or []), labels=labels, data=data)
        run = Run(
            id=self._next_id,
            name=name or self._unique_name(default_run_name(trajectory.run_meta)),
            trajectory=trajectory,
            expected_frames=max(1, expected_frames),
            state=state,
            path=path,
        )
        self._next_id += 1
        self.runs.append(run)
        self.active_id = run.id
        self._shown(run)
        self.follow_live = state == RUNNING
        self.position = 0 if state == RUNNING else self.position
        self._clamp_position()
        self._keep_off_screen_frames_within_budget()
        self._emit(RUNS)
        self._emit(POSITION)
        return run

    def _unique_name(self, name: str) -> str:
        """`name`, or `name (2)`, `name (3)`, ... when runs of that name are in the list already
        (the same Generate twice makes two rows that say which is which)."""
        taken = {run.name for run in self.runs}
        number, unique = 1, name
        while unique in taken:
            number += 1
            unique = f"{name} ({number})"
        return unique

    def run(self, run_id: int | None) -> Run | None:
        return next((run for run in self.runs if run.id == run_id), None)

    @property
    def active(self) -> Run | None:
        return self.run(self.active_id)

    def append_frame(self, run_id: int, frame: Frame) -> None:
        run = self.run(run_id)
        if run is None or run.state != RUNNING:
            return  # a frame that arrives after cancel or removal is dropped
        run.trajectory.frames.append(frame)
        self._emit(FRAMES)
        if self.follow_live and run.id == self.active_id:
            self._set_position(self.position_of(run, run.produced - 1))

    def finish_run(self, run_id: int, state: str = DONE, error: str | None = None) -> None:
        run = self.run(run_id)
        if run is None:
            return
        run.state, run.error = state, error
        if state == FAILED and run.produced == 0:
            self.remove_run(run_id)
            return
        self._clamp_position()
        self._keep_off_screen_frames_within_budget()
        self._emit(RUNS)
        self._emit(POSITION)

    def remove_run(self, run_id: int) -> None:
        run = self.run(run_id)
        if run is None:
            return
        self.runs.remove(run)
        if run_id in self.compared_ids:
            self.compared_ids.remove(run_id)
        if self.active_id == run_id:
            self.active_id = self.runs[-1].id if self.runs else None
            if self.active is not None:
                self._bring_back(self.active)
                self._shown(self.active)
        if not any(removed is run for removed, _ in self.removed):
            self._let_go(run)
        self._clamp_position()
        self._emit(RUNS)
        self._emit(POSITION)

    def remove_run_undoably(self, run_id: int) -> Run:
        """Remove a finished run so that `undo_remove` can bring it back; a run still sampling is
        refused with a UserFacingError (cancel it first)."""
        run = self.run(run_id)
        if run is None:
            raise UserFacingError("no run to remove")
        if run.state == RUNNING:
            raise UserFacingError("cancel the run (Esc) before removing it")
        self.removed.append((run, run_id in self.compared_ids))
        while len(self.removed) > UNDO_DEPTH:
            self._let_go(self.removed.pop(0)[0])
        self.remove_run(run_id)
        self._keep_off_screen_frames_within_budget()
        return run

    def undo_remove(self) -> Run | None:
        """Bring back the run removed last, active and compared as before; None if there is none."""
        if not self.removed:
            return None
        run, compared = self.removed.pop()
        self._bring_back(run)
        self.runs.append(run)
        self.active_id = run.id
        self._shown(run)
        self.follow_live = False
        if compared:
            self.compared_ids.append(run.id)
        self._clamp_position()
        self._emit(RUNS)
        self._emit(POSITION)
        return run

    def finished_active_run(self, verb: str) -> Run:
        """The active run, for saving or exporting it; a UserFacingError if there is none or it
        is still sampling. `verb` says what the user was about to do."""
        run = self.active
        if run is None:
            raise UserFacingError(f"nothing to {verb}: generate or open a run first")
        if run.state == RUNNING:
            raise UserFacingError(f"the run is still sampling: wait for it or cancel it (Esc) before you {verb} it")
        if run.produced == 0:
            raise UserFacingError(f"nothing to {verb}: {run.name} was stopped before its first frame")
        return run

    def rename_run(self, run_id: int, name: str) -> None:
        run = self.run(run_id)
        if run is not None and name.strip():
            run.name = name.strip()
            self._emit(RUNS)

    def set_active(self, run_id: int) -> None:
        if self.run(run_id) is None or run_id == self.active_id:
            return
        fraction = self.fraction
        self._bring_back(self.run(run_id))
        self._shown(self.run(run_id))
        self.active_id = run_id
        self._keep_off_screen_frames_within_budget()
        self.follow_live = False
        self.position = round(fraction * (self.timeline_length - 1))
        self._emit(RUNS)
        self._emit(POSITION)

    def set_compared(self, run_id: int, compared: bool) -> None:
        if self.run(run_id) is None or (run_id in self.compared_ids) == compared:
            return
        fraction = self.fraction
        if compared:
            self._bring_back(self.run(run_id))
            self._shown(self.run(run_id))
            self.compared_ids.append(run_id)
        else:
            self.compared_ids.remove(run_id)
            self._shown(self.run(run_id))  # it was on screen until now
        self._keep_off_screen_frames_within_budget()
        self.position = round(fraction * (self.timeline_length - 1))
        self._emit(RUNS)
        self._emit(POSITION)

    @property
    def compared(self) -> list[Run]:
        """The runs shown side by side: those picked for comparison, in the order picked."""
        return [run for run in (self.run(run_id) for run_id in self.compared_ids) if run is not None]

    @property
    def timeline_runs(self) -> list[Run]:
        runs = [self.active] if self.active is not None else []
        return runs + [run for run in self.compared if run.id != self.active_id]

    # --- memory: the frames of runs off screen ---------------------------------------------------

    def _shown(self, run: Run | None) -> None:
        if run is not None:
            self._shows += 1
            run.last_shown = self._shows

    def on_screen(self, run: Run) -> bool:
        return run.id == self.active_id or run.id in self.compared_ids or run.state == RUNNING

    def _keep_off_screen_frames_within_budget(self) -> None:
        """Move the frames of the runs shown longest ago to disk until those off screen hold at
        most `off_screen_bytes`. The user sees no difference but a short load when one is shown
        again (`_bring_back`); a disk that cannot take them leaves everything in memory."""
        candidates = [run for run in self.runs if not self.on_screen(run) and run.spilled is None]
        candidates += [run for run, _ in self.removed if run.spilled is None]
        held = sum(run.frame_bytes for run in candidates)
        for run in sorted(candidates, key=lambda run: run.last_shown):
            if held <= self.off_screen_bytes or not self._frame_store.usable:
                return
            size = run.frame_bytes
            path = self._frame_store.put(f"run-{run.id}", run.trajectory.frames) if size else None
            if path is not None:
                run.spilled, run.spilled_frames = path, len(run.trajectory.frames)
                run.trajectory.frames = []
                held -= size

    def _bring_back(self, run: Run | None) -> None:
        """Read a spilled run's frames back into memory (a run whose file is gone becomes failed)."""
        if run is None or run.spilled is None:
            return
        path, run.spilled = run.spilled, None
        try:
            run.trajectory.frames = self._frame_store.take(path)
        except FrameStoreError as exc:
            run.trajectory.frames = []
            run.state, run.error = FAILED, str(exc)
        run.spilled_frames = 0

    def _let_go(self, run: Run) -> None:
        """A run that no Undo can bring back: its file on disk goes too."""
        self._frame_store.discard(run.spilled)

    def close(self) -> None:
        """Remove the temporary files of spilled runs (also done at exit)."""
        self._frame_store.close()

    # --- the shared timeline --------------------------------------------------------------------

    @property
    def timeline_length(self) -> int:
        return timeline_length([run.track for run in self.timeline_runs], self.align)

    def set_align(self, align: str) -> None:
        """Align the timeline's runs by normalized time (ALIGN_TIME) or by model evaluations (ALIGN_NFE)."""
        check_align(align)
        if align == self.align:
            return
        shown = self.frame_index(self.active) if self.active is not None else 0
        self.align = align
        # keep the active run on the frame it showed
        self.position = self.position_of(self.active, shown) if self.active is not None else 0
        self._clamp_position()
        self._emit(FRAMES)
        self._emit(POSITION)

    @property
    def fraction(self) -> float:
        """Normalized time: 0 at the first frame, 1 at the last."""
        length = self.timeline_length
        return self.position / (length - 1) if length > 1 else 0.0

    def frame_index(self, run: Run, position: int | None = None) -> int:
        """The frame of `run` shown at a timeline position (aligned by normalized time or NFE)."""
        position = self.position if position is None else position
        return frame_index(run.track, position, self.timeline_length, self.align)

    def position_of(self, run: Run, index: int) -> int:
        """The first timeline position that shows frame `index` of `run`."""
        return position_of(run.track, index, self.timeline_length, self.align)

    def view(self, run: Run) -> FrameView:
        index = self.frame_index(run)
        frame = run.trajectory.frames[index] if index < run.produced else None
        return FrameView(run, index, frame, pending=frame is None)

    @property
    def produced_limit(self) -> int:
        """The last position whose frames exist for every run on the timeline."""
        limit = self.timeline_length - 1
        for run in self.timeline_runs:
            if run.produced < run.length:
                limit = min(limit, self.position_of(run, run.produced - 1) if run.produced else 0)
        return limit

    def seek(self, position: int) -> None:
        """Move the timeline (the user scrubbed); clamps to the timeline and stops following live."""
        self.follow_live = False
        self._set_position(position)
        if self.playing:
            self._play_anchor = None  # playback continues from here

    def step(self, delta: int) -> None:
        self.seek(self.position + delta)

    def first(self) -> None:
        self.seek(0)

    def last(self) -> None:
        """Jump to the last frame; while a run samples, follow its newest frame from now on."""
        self.seek(self.timeline_length - 1)
        self.follow_live = any(run.state == RUNNING for run in self.timeline_runs)

    def _set_position(self, position: int) -> None:
        position = max(0, min(int(position), self.timeline_length - 1))
        if position != self.position:
            self.position = position
            self._emit(POSITION)

    def _clamp_position(self) -> None:
        self.position = max(0, min(self.position, self.timeline_length - 1))

    # --- playback -------------------------------------------------------------------------------

    def set_playing(self, playing: bool) -> None:
        if playing == self.playing:
            return
        self.playing = playing
        self._play_anchor = None
        if playing:
            self.follow_live = False
            if self.position >= self.timeline_length - 1:
                self._set_position(0)  # play from the start after reaching the end
        self._emit(PLAYBACK)

    def toggle_playing(self) -> None:
        self.set_playing(not self.playing)

    def set_fps(self, fps: float) -> None:
        fps = max(MIN_FPS, min(MAX_FPS, float(fps)))
        if fps != self.fps:
            self.fps = fps
            self._play_anchor = None
            self._emit(PLAYBACK)

    def set_loop(self, loop: bool) -> None:
        if loop != self.loop:
            self.loop = bool(loop)
            self._emit(PLAYBACK)

    def playback_tick(self, now: float) -> None:
        """Advance playback to where the clock says it should be (seconds, any monotonic clock).

        The position comes from elapsed time, not from counting ticks, so frames are dropped when
        drawing lags rather than slowing the animation. Playback waits at frames still pending.
        """
        if not self.playing:
            return
        if self._play_anchor is None:
            self._play_anchor = (now, self.position)
            return
        start_time, start_position = self._play_anchor
        target = start_position + int((now - start_time) * self.fps)
        last = self.timeline_length - 1
        if target > last and self.produced_limit >= last:  # reached the end of a complete timeline
            if self.loop and last > 0:
                self._play_anchor = (now, 0)
                self._set_position(0)
            else:
                self._set_position(last)
                self.set_playing(False)
            return
        self._set_position(min(target, self.produced_limit))
