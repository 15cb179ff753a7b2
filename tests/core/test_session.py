"""The viewer's Qt-free state: runs, the shared timeline aligned by normalized time, playback."""

import torch

from diffusion_stepper.core.frames import Frame
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
    session.finish_run(live.id, CANCELLED)
    assert session.finished_active_run("export") is live
    with pytest.raises(UserFacingError, match="nothing to save"):
        Session().finished_active_run("save")


def test_repeated_runs_get_numbered_names_and_compared_runs_say_what_differs():
    from diffusion_stepper.core.session import run_differences

    session = Session()
    meta = {"algorithm": "ddpm+cfg", "model": "mnist-class-ddpm", "seed": 0, "params": {"guidance": 5.0, "steps": 50}}
    names = [session.add_run(meta, 3).name for _ in range(3)]
    assert names[1] == names[0] + " (2)" and names[2] == names[0] + " (3)"
    sweep = [{**meta, "params": {**meta["params"], "guidance": scale}} for scale in (0.0, 5.0, 10.0)]
    assert run_differences(sweep) == ["γ = 0", "γ = 5", "γ = 10"]
    other = {**meta, "model": "mnist-class-flow", "algorithm": "flow+cfg", "params": {"guidance": 5.0}}
    assert run_differences([meta, other]) == ["mnist-class-ddpm · ddpm+cfg · 50 steps", "mnist-class-flow · flow+cfg"]
    assert run_differences([meta]) == [""] and run_differences([meta, meta]) == ["", ""]
