"""The interactive page (core.exports.html_page): one file with everything in it, the exact pixels and
numbers of each frame, the compared runs on the session's own timeline, within the size goal; and
`export --html` from the command line. tests/browser/ opens such pages in Chromium."""

import re

import numpy as np
import pytest
import torch

from diffusion_stepper.core import cli
from diffusion_stepper.core.diffusion.equations import frame_caption, step_equation
from diffusion_stepper.core.exports.html_page import PageOptions, html_page_items, suggested_every, write_html_page
from diffusion_stepper.core.formats.pictures import shown_tiles
from diffusion_stepper.core.formats.trajectory_file import load_trajectory, save_trajectory
from diffusion_stepper.core.frames import Frame, Trajectory
from diffusion_stepper.core.session import DONE, Session
from diffusion_stepper.core.timeline import ALIGN_NFE, ALIGN_TIME
from diffusion_stepper.core.toy2d.render import ParticleViewOptions, render_particles
from tests.cli_running import run_cli
from tests.page_reading import page_data, stored_picture


def strip_of(trajectory: Trajectory, index: int, name: str) -> np.ndarray:
    """What a page should hold for one panel of one frame: the batch side by side."""
    tiles = shown_tiles(trajectory, trajectory[index], name)
    return np.concatenate(list(tiles), axis=1)


@pytest.fixture(scope="module")
def cfg_run(tmp_path_factory):
    """A class-conditioned DDPM run with CFG's parts as extras: tiny untrained model, 6 steps."""
    from tests.conftest import write_tiny_checkpoint

    folder = tmp_path_factory.mktemp("page")
    checkpoint = write_tiny_checkpoint(folder / "model", "class", "ddpm")
    path = folder / "cfg.npz"
    argv = ["sample", "mnist", "--checkpoint", checkpoint, "--steps", "6", "--classes", "0-3", "--out", path]
    assert cli.main([str(a) for a in argv]) == 0
    return path


def test_a_page_holds_every_frame_s_exact_pixels_and_numbers(tmp_path, cfg_run):
    trajectory = load_trajectory(cfg_run)
    page = write_html_page([("my run", trajectory)], tmp_path / "run.html")
    data = page_data(page)
    (run,) = data["runs"]
    names = [panel["name"] for panel in run["panels"]]
    assert names == ["x_t", "x0_hat", "eps_hat", "eps_cond", "eps_uncond", "eps_gap"]
    assert [panel["main"] for panel in run["panels"]] == [True, True, True, False, False, False]
    assert run["count"] == 4 and run["tile"] == [28, 28] and len(run["frames"]) == len(trajectory) == 7
    for index in range(len(trajectory)):
        for panel, name in enumerate(names):
            assert np.array_equal(stored_picture(run, panel, index), strip_of(trajectory, index, name)), (name, index)
        numbers = run["frames"][index]
        assert numbers["equation"] == step_equation(trajectory.run_meta, trajectory[index], trajectory.frames)
        assert numbers["caption"] == frame_caption(trajectory.run_meta, trajectory[index], len(trajectory))
        assert len(numbers["histograms"]["x_t"]) == len(data["histogram_edges"]) - 1
    # CFG's parts are stored as differences (from each other, or from the step before): smaller, yet exact
    assert any(isinstance(stored, dict) for panel in run["panels"][3:5] for stored in panel["frames"])
    settings = dict(run["settings"])
    assert settings["model"] == trajectory.meta["model"] and settings["γ (guidance scale)"] == "5"
    assert settings["steps"] == "6" and settings["seed"] == "0" and settings["sampler"]
    assert run["schedule"]["curves"][0]["label"] == "ᾱ_t"
    noise_theory = {frame["histograms"]["noise_theory"] for frame in run["frames"][:-1]}
    assert len(noise_theory) == 1  # N(0, 1), stored once for all the steps
    assert run["curves"][noise_theory.pop()]["label"] == "N(0, 1): the true ε"


def test_a_page_is_one_file_that_needs_no_network(tmp_path, cfg_run):
    trajectory = load_trajectory(cfg_run)
    trajectory.meta["model"] = 'evil</script><script>alert("x")</script><!--'
    page = write_html_page([("name with </script> in it", trajectory)], tmp_path / "run.html")
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"https?://|<link|@import|\ssrc=", text)  # nothing fetched: no URL, stylesheet or script file
    assert text.count("<script") == 2 and text.count("</script>") == 2  # the data and the code, and nothing else
    data = page_data(page)
    assert data["runs"][0]["settings"][0] == ("model", trajectory.meta["model"]) or data["runs"][0]["settings"][0] == [
        "model",
        trajectory.meta["model"],
    ]
    assert "<title>name with &lt;/script&gt; in it</title>" in text


def test_the_default_mnist_run_makes_a_page_under_2_mb(tmp_path, capsys):
    """The bundled class model, 50 steps (51 frames) of ten digits, with CFG's three extras."""
    run_file = tmp_path / "default.npz"
    code, _, err = run_cli(capsys, "sample", "mnist", "--steps", 50, "--out", run_file)
    assert code == 0, err
    trajectory = load_trajectory(run_file)
    assert len(trajectory) == 51 and trajectory[0].x_t.shape[0] == 10 and len(trajectory.extra_names()) == 3
    page = tmp_path / "default.html"
    code, out, err = run_cli(capsys, "export", run_file, "--html", page)
    assert code == 0, err
    assert page.stat().st_size <= 2_000_000, page.stat().st_size
    assert f"wrote {page}" in out


def test_compared_runs_share_the_sessions_timeline(tmp_path, cfg_run, capsys):
    long_run = load_trajectory(cfg_run)  # 7 frames of DDPM
    short_file = tmp_path / "short.npz"
    code, _, err = run_cli(
        capsys, "sample", "mnist", "--checkpoint", long_run.meta["checkpoint"], "--steps", 2, "--classes", "0-3",
        "--sampler", "heun", "--out", short_file,
    )  # fmt: skip
    assert code == 0, err
    short_run = load_trajectory(short_file)
    page = tmp_path / "both.html"
    code, out, err = run_cli(capsys, "export", cfg_run, short_file, "--html", page)
    assert code == 0 and "2 runs" in out, err
    data = page_data(page)
    assert [run["difference"] for run in data["runs"]] == ["DDPM · 6 steps", "Heun (ODE) · 2 steps"]
    assert data["title"] == "2 runs compared: DDPM · 6 steps vs Heun (ODE) · 2 steps"

    session = Session()
    runs = [session.add_run(t.meta, len(t), frames=list(t.frames), state=DONE) for t in (long_run, short_run)]
    session.active_id, session.compared_ids = runs[0].id, [run.id for run in runs]
    for align in (ALIGN_TIME, ALIGN_NFE):
        session.set_align(align)
        expected = []
        for position in range(session.timeline_length):
            shown = [session.frame_index(run, position) for run in runs]
            if not expected or shown != expected[-1]:
                expected.append(shown)
        assert data["timelines"][align] == expected
    assert data["timelines"][ALIGN_NFE] != data["timelines"][ALIGN_TIME]  # Heun spends two evaluations a step
    assert data["runs"][1]["convergence"]["nfe"][-1] == short_run[-1].coeffs["nfe"]


def long_trajectory(num_frames: int) -> Trajectory:
    frames = [
        Frame(
            index=i,
            t=float(num_frames - 1 - i),
            x_t=torch.full((2, 1, 8, 8), i / num_frames),
            x0_hat=torch.zeros(2, 1, 8, 8),
            eps_hat=torch.zeros(2, 1, 8, 8),
        )
        for i in range(num_frames)
    ]
    meta = {"algorithm": "ddpm", "model": "long", "checkpoint": "", "seed": 0, "params": {"steps": num_frames - 1}}
    meta["value_range"] = [0.0, 1.0]
    return Trajectory(meta, frames)


def test_a_long_run_is_offered_every_kth_frame_and_keeps_its_own_step_numbers(tmp_path, capsys):
    assert suggested_every(51) == 1 and suggested_every(301) == 3 and suggested_every(1001) == 10
    run_file = save_trajectory(long_trajectory(301), tmp_path / "long.npz")
    code, _, err = run_cli(capsys, "export", run_file, "--html", tmp_path / "all.html")
    assert code == 0 and "--every 3 keeps 101" in err
    assert len(page_data(tmp_path / "all.html")["runs"][0]["frames"]) == 301
    code, _, err = run_cli(capsys, "export", run_file, "--html", tmp_path / "thin.html", "--every", 3)
    assert code == 0 and "--every" not in err
    (run,) = page_data(tmp_path / "thin.html")["runs"]
    assert len(run["frames"]) == 101 and run["length"] == 301
    assert [frame["index"] for frame in run["frames"][:3]] == [0, 3, 6] and run["frames"][-1]["index"] == 300
    assert run["frames"][1]["caption"].startswith("step 3/300")
    assert np.array_equal(stored_picture(run, 0, 1)[0, 0], [round(255 * 3 / 301)] * 3)  # frame 3's own pixels


def test_a_2d_run_shows_its_particle_view(tmp_path, capsys):
    run_file = tmp_path / "toy.npz"
    argv = ["sample", "toy2d", "--exact", "8-gaussians", "--num", 300, "--steps", 6, "--out", run_file]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    trajectory = load_trajectory(run_file)
    view = ParticleViewOptions(field="noise", paths=False, size=480)
    page = write_html_page([("toy", trajectory)], tmp_path / "toy.html", PageOptions(particle_view=view))
    (run,) = page_data(page)["runs"]
    assert run["kind"] == "particles" and [panel["name"] for panel in run["panels"]] == ["particles"]
    assert "noise" in run["panels"][0]["title"]
    for index in (0, 3, 6):
        assert np.array_equal(stored_picture(run, 0, index), render_particles(trajectory, index, view))


def test_an_if_run_page_shows_its_extras(tmp_path, capsys, tiny_if):
    run_file = tmp_path / "if.npz"
    argv = ["sample", "if", "--prompt", tiny_if.prompts[1], "--steps", 3, *tiny_if.stage1_flags, "--out", run_file]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    trajectory = load_trajectory(run_file)
    page = tmp_path / "if.html"
    code, _, err = run_cli(capsys, "export", run_file, "--html", page)
    assert code == 0, err
    (run,) = page_data(page)["runs"]
    assert "eps_cond" in [panel["name"] for panel in run["panels"]]
    assert dict(run["settings"])["prompts"] == tiny_if.prompts[1]
    x_t = [panel["name"] for panel in run["panels"]].index("x_t")
    assert np.array_equal(stored_picture(run, x_t, 2), strip_of(trajectory, 2, "x_t"))  # RGB, in [-1, 1]


def test_bad_page_requests_fail_in_one_line_and_write_nothing(tmp_path, capsys, cfg_run):
    out = tmp_path / "page.html"
    cases = [
        (["--fps", 5], "--fps is for pictures and animations"),
        (["--panel", "x_t"], "--panel is for pictures"),
        (["--every", 0], "--every"),
    ]
    for flags, fragment in cases:
        code, _, err = run_cli(capsys, "export", cfg_run, "--html", out, *flags)
        assert code != 0 and len(err.strip().splitlines()) == 1 and fragment in err, err
    code, _, err = run_cli(capsys, "export", cfg_run, cfg_run, "--gif", tmp_path / "x.gif")
    assert code == 1 and "several runs share one --html page" in err
    code, _, err = run_cli(capsys, "export", cfg_run, "--gif", tmp_path / "x.gif", "--title", "a")
    assert code == 1 and "--title is for --html" in err
    foreign = tmp_path / "foreign.npz"
    foreign.write_bytes(b"not a zip")
    code, _, err = run_cli(capsys, "export", cfg_run, foreign, "--html", out)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    toy_file = tmp_path / "toy.npz"
    assert (
        run_cli(capsys, "sample", "toy2d", "--exact", "8-gaussians", "--num", 50, "--steps", 2, "--out", toy_file)[0]
        == 0
    )
    code, _, err = run_cli(capsys, "export", cfg_run, toy_file, "--html", out)
    assert code == 1 and "2D runs with 2D runs" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".page.html*"))
    with pytest.raises(ValueError, match="no run"):
        html_page_items([], out)


def test_stopping_a_page_early_writes_nothing(tmp_path, cfg_run):
    items = html_page_items([("run", load_trajectory(cfg_run))], tmp_path / "page.html")
    assert next(items) == (1, 7)
    items.close()  # the app's Cancel
    assert list(tmp_path.iterdir()) == []
