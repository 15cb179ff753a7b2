"""The IF dock's runs: its task, a part A experiment, a branch from the step on screen, and stage II
on a finished stage I run. The dock says what to run; the sampling controller runs it."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject

from diffusion_stepper.core.deepfloyd_if.experiments import PART_A_EXPERIMENTS
from diffusion_stepper.core.deepfloyd_if.tasks import BranchPoint
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.formats.trajectory_file import save_trajectory
from diffusion_stepper.core.frames import Trajectory
from diffusion_stepper.core.paths import work_folder
from diffusion_stepper.core.session import Session
from diffusion_stepper.visualizer.controllers.sampling import WHEN_SEVERAL, SamplingController


class IFRunsController(QObject):
    def __init__(self, session: Session, dock, sampling: SamplingController, parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.dock, self.sampling = session, dock, sampling

    def run(self) -> None:
        """The dock's task; an SDEdit strip (several i_start) is compared side by side."""
        self.dock.raise_()
        self.sampling.start(self.dock.requests, compare=WHEN_SEVERAL)

    def run_experiment(self, key: str) -> None:
        """A part A experiment in one click, with the dock's model, embeddings, image and seed."""
        self.dock.raise_()
        # each experiment sets its own i_start and t, so the dock's fields for those are not read
        self.sampling.start_experiment(PART_A_EXPERIMENTS, key, lambda: self.dock.settings(task="sample"))

    def branch_from_step(self) -> None:
        """Continue the active IF run from the step on screen with the dock's prompt, γ and seed, as
        a new run compared beside it."""
        run = self.session.active

        def branch_requests() -> list:
            if run is None or self.session.view(run).pending:
                raise UserFacingError(
                    "no step to branch from: run IF (Ctrl+R) or open an IF trajectory, then pick a step"
                )
            meta = run.trajectory.run_meta
            point = BranchPoint.from_run(meta, run.trajectory.frames, self.session.view(run).index, source=run.name)
            request = self.dock.requests(task=meta.task or "sample")[0]
            request.branch = point
            if meta.checkpoint and Path(meta.checkpoint).is_dir():  # the same stage I folder the run used
                request.model_dir, request.size = meta.checkpoint, None
            return [request]

        self.sampling.start(branch_requests, compare=True, also_compare=[run.id] if run else [])

    def upscale_active_run(self) -> None:
        """Stage II on the active stage I run's result, as a stepped run of its own."""

        def upscale_requests() -> list:
            run = self.session.finished_active_run("upscale")
            meta = run.trajectory.run_meta
            if meta.stage != 1:
                raise UserFacingError(
                    "upscaling takes a finished IF stage I run: run IF (Ctrl+R) or open one, then Ctrl+U"
                )
            request = self.dock.requests(task="upscale")[0]
            # stage II reads the final sample from a file, which also records where it came from
            source = Trajectory(run.trajectory.meta, [run.trajectory.frames[-1]], run.trajectory.labels)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            try:
                request.image = str(save_trajectory(source, work_folder("upscale-inputs", f"run-{run.id}-{stamp}.npz")))
            except OSError as exc:
                raise UserFacingError(f"could not write the stage II input: {exc}") from None
            request.prompt = list(meta.prompts or request.prompt)[:1]
            return [request]

        self.sampling.start(upscale_requests)
