"""The viewer's Qt-free state: runs, the shared timeline aligned by normalized time, playback."""

import torch

from diffusion_stepper.core.frames import Frame
from diffusion_stepper.core.run_meta import RunMeta
from diffusion_stepper.core.session import CANCELLED, DONE, FRAMES, LOADED, POSITION, RUNNING, Session


def frames(count: int) -> list[Frame]:
    return [
        Frame(index=i, t=float(count - 1 - i), x_t=torch.full((1, 1, 2, 2), float(i)), x0_hat=torch.zeros(1, 1, 2, 2))
        for i in range(count)
    ]


def loaded(session: Session, count: int, name: str = "run"):
    return session.add_run({"algorithm": "ddpm"}, count, frames=frames(count), state=LOADED, name=name)


def test_live_run_follows_the_newest_frame_and_marks_the_rest_pending():
    session = Session()
    events = []
    session.subscribe(events.append)
    run = session.add_run({"algorithm": "ddpm"}, expected_frames=5)
    for frame in frames(3):
        session.append_frame(run.id, frame)
    assert session.timeline_length == 5  # the whole run, before it exists
    assert session.position == 2 and session.produced_limit == 2
    assert FRAMES in events and POSITION in events
    session.seek(4)
    view = session.view(run)
    assert view.pending and view.frame is None and view.index == 4
    session.seek(1)  # the user scrubbed: the position stays put as frames arrive
    session.append_frame(run.id, frames(5)[3])
    assert session.position == 1
    session.last()  # End follows the live run again
    session.append_frame(run.id, frames(5)[4])
    assert session.position == 4


def test_cancelled_run_shrinks_to_its_frames_and_late_frames_are_dropped():
    session = Session()
    run = session.add_run({"algorithm": "ddpm"}, expected_frames=10)
    for frame in frames(4):
        session.append_frame(run.id, frame)
    session.finish_run(run.id, CANCELLED)
    session.append_frame(run.id, frames(5)[4])
    assert run.produced == 4 and run.length == 4 and session.timeline_length == 4
    assert not session.view(run).pending


def test_runs_of_different_lengths_align_by_normalized_time():
    session = Session()
    short = loaded(session, 11, "short")  # 10 steps
    long = loaded(session, 51, "long")  # 50 steps
    session.set_compared(short.id, True)
    session.set_compared(long.id, True)
    assert session.timeline_length == 51
    session.seek(25)  # halfway
    assert session.frame_index(long) == 25 and session.frame_index(short) == 5
    session.seek(50)
    assert session.frame_index(short) == 10
    session.set_active(short.id)  # the fraction is kept when the timeline changes
    assert session.fraction == 1.0


def test_playback_follows_the_clock_and_drops_frames_when_drawing_lags():
    session = Session()
    loaded(session, 100)
    session.first()
    session.set_fps(10)
    session.set_playing(True)
    session.playback_tick(0.0)  # anchors the clock
    session.playback_tick(0.35)
    assert session.position == 3
    session.playback_tick(2.0)  # a slow redraw: jump to where the clock is, not one step on
    assert session.position == 20


def test_playback_loops_or_stops_at_the_end():
    session = Session()
    loaded(session, 5)
    session.set_fps(10)
    session.seek(3)
    session.set_loop(False)
    session.set_playing(True)
    session.playback_tick(0.0)
    session.playback_tick(1.0)
    assert session.position == 4 and not session.playing
    session.set_loop(True)
    session.set_playing(True)  # at the end: starts over
    assert session.position == 0
    session.playback_tick(10.0)
    session.playback_tick(10.45)
    session.playback_tick(10.55)
    assert session.playing and session.position == 0  # wrapped around


def test_playback_waits_at_pending_frames():
    session = Session()
    run = session.add_run({"algorithm": "ddpm"}, expected_frames=20)
    for frame in frames(3):
        session.append_frame(run.id, frame)
    session.first()
    session.set_playing(True)
    session.playback_tick(0.0)
    session.playback_tick(5.0)
    assert session.position == 2 and session.playing


def test_removing_the_active_run_activates_another():
    session = Session()
    first = loaded(session, 3, "a")
    second = loaded(session, 3, "b")
    session.set_compared(second.id, True)
    session.remove_run(second.id)
    assert session.active_id == first.id and session.compared_ids == []
    session.finish_run(first.id, DONE)
    assert first.state == DONE and RUNNING != DONE


def test_removing_a_run_can_be_undone_and_brings_it_back_as_it_was():
    import pytest

    from diffusion_stepper.core.errors import UserFacingError

    session = Session()
    first, second = loaded(session, 4, "first"), loaded(session, 7, "second")
    session.set_compared(first.id, True)
    session.set_compared(second.id, True)
    assert session.remove_run_undoably(first.id) is first
    assert session.runs == [second] and session.compared_ids == [second.id]
    session.remove_run_undoably(second.id)
    assert session.runs == [] and session.active is None
    assert session.undo_remove() is second and session.undo_remove() is first
    assert session.active is first and {run.id for run in session.runs} == {first.id, second.id}
    assert sorted(session.compared_ids) == sorted([first.id, second.id])  # both were compared before
    assert session.undo_remove() is None  # nothing more to undo
    live = session.add_run({"algorithm": "ddpm"}, expected_frames=5)
    with pytest.raises(UserFacingError, match="cancel the run"):
        session.remove_run_undoably(live.id)
    with pytest.raises(UserFacingError, match="still sampling"):
        session.finished_active_run("export")
    session.finish_run(live.id, CANCELLED)  # before its first frame: nothing to export or save
    with pytest.raises(UserFacingError, match="stopped before its first frame"):
        session.finished_active_run("export")
    with pytest.raises(UserFacingError, match="nothing to save"):
        Session().finished_active_run("save")


def test_repeated_runs_get_numbered_names_and_compared_runs_say_what_differs():
    from diffusion_stepper.core.run_names import run_differences

    session = Session()
    meta = {"algorithm": "ddpm+cfg", "model": "mnist-class-ddpm", "seed": 0, "params": {"guidance": 5.0, "steps": 50}}
    names = [session.add_run(meta, 3).name for _ in range(3)]
    assert names[1] == names[0] + " (2)" and names[2] == names[0] + " (3)"
    sweep = [{**meta, "params": {**meta["params"], "guidance": scale}} for scale in (0.0, 5.0, 10.0)]
    assert run_differences([RunMeta.of(each) for each in sweep]) == ["γ = 0", "γ = 5", "γ = 10"]
    other = {**meta, "model": "mnist-class-flow", "algorithm": "flow+cfg", "params": {"guidance": 5.0}}
    meta, other = RunMeta.of(meta), RunMeta.of(other)
    assert run_differences([meta, other]) == ["mnist-class-ddpm · ddpm+cfg · 50 steps", "mnist-class-flow · flow+cfg"]
    assert run_differences([meta]) == [""] and run_differences([meta, meta]) == ["", ""]


def _finished_run(session, fill: float, frames: int = 4, size: int = 16):
    from diffusion_stepper.core.frames import Frame

    made = [
        Frame(
            index=index,
            t=float(frames - 1 - index),
            x_t=torch.full((2, 1, size, size), fill + index),
            x0_hat=torch.full((2, 1, size, size), -fill),
            eps_hat=torch.randn(2, 1, size, size, generator=torch.Generator().manual_seed(index)),
            coeffs={"alpha_bar_t": 0.5, "nfe": float(index)},
            extras={"eps_cond": torch.full((2, 1, size, size), fill * 2)},
        )
        for index in range(frames)
    ]
    meta = {"algorithm": "ddpm", "model": f"m{fill}", "seed": 0, "params": {}, "value_range": [0.0, 1.0]}
    return session.add_run(meta, frames, torch.tensor([0, 1]), frames=made, state=DONE)


def test_runs_off_screen_go_to_disk_past_the_budget_and_come_back_exactly():
    session = Session()
    one_run = 4 * 4 * 2 * 16 * 16 * 4  # 4 frames of 4 pictures [2, 1, 16, 16] float32
    session.off_screen_bytes = 2 * one_run  # two runs off screen stay in memory
    runs = [_finished_run(session, fill=float(number)) for number in range(5)]

    def original(run_number: int, index: int) -> torch.Tensor:
        return torch.full((2, 1, 16, 16), float(run_number + index))

    # the last is active; of the four off screen, the two shown longest ago went to disk
    assert [run.spilled is not None for run in runs] == [True, True, False, False, False]
    assert all(run.produced == 4 and run.trajectory.frames == [] for run in runs[:2])
    assert all(run.spilled.exists() for run in runs[:2])
    session.set_compared(runs[0].id, True)  # shown again: its frames come back, exactly
    assert runs[0].spilled is None and runs[0].produced == 4 and len(runs[0].trajectory.frames) == 4
    for frame in runs[0].trajectory.frames:
        assert torch.equal(frame.x_t, original(0, frame.index)) and frame.coeffs["nfe"] == frame.index
        assert torch.equal(frame.extras["eps_cond"], torch.full((2, 1, 16, 16), 0.0))
    assert runs[2].spilled is None  # runs 2 and 3 off screen: within the budget
    session.set_active(runs[1].id)  # the last run goes off screen: the one shown longest ago makes room
    assert session.view(runs[1]).frame is not None and torch.equal(runs[1].trajectory.frames[3].x_t, original(1, 3))
    assert [run.spilled is not None for run in runs] == [False, False, True, False, False]
    held = sum(run.frame_bytes for run in session.runs if not session.on_screen(run))
    assert held <= session.off_screen_bytes


def test_removed_runs_spill_and_undo_brings_them_back_and_old_undo_is_let_go():
    from diffusion_stepper.core.session import UNDO_DEPTH

    session = Session()
    session.off_screen_bytes = 0  # everything off screen goes to disk
    runs = [_finished_run(session, fill=float(number)) for number in range(UNDO_DEPTH + 2)]
    first_file = runs[0].spilled
    assert first_file is not None and first_file.exists()
    for run in runs[:-1]:
        session.remove_run_undoably(run.id)
    assert len(session.removed) == UNDO_DEPTH
    assert not first_file.exists()  # past the undo depth: let go, file and all
    brought = session.undo_remove()
    assert brought is runs[-2] and brought.spilled is None and brought.produced == 4
    assert torch.equal(brought.trajectory.frames[2].x_t, torch.full((2, 1, 16, 16), float(UNDO_DEPTH) + 2))
    session.close()


def test_a_disk_that_refuses_the_frames_keeps_them_in_memory(monkeypatch):
    session = Session()
    session.off_screen_bytes = 0

    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", refuse)
    runs = [_finished_run(session, fill=float(number)) for number in range(3)]
    assert all(run.spilled is None and run.produced == 4 for run in runs)
    session.set_active(runs[0].id)
    assert session.view(runs[0]).frame is not None
