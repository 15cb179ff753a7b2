"""The bad inputs that still got through (issue 28 §7), one test per class of fault: every one ends
in one line and a non-zero exit (or does the right thing), never a traceback, a wrong exit 0, a
file the app then refuses, gigabytes of memory, a checkpoint that no longer loads, or a Ctrl+C
that is not the one "interrupted" line and exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_stepper.core.errors import CheckpointError, TrajectoryFileError, UserFacingError
from diffusion_stepper.core.formats.trajectory_file import load_trajectory, save_trajectory
from tests.cli_running import run_cli
from tests.conftest import write_tiny_checkpoint
from tests.core.test_bad_input_fuzz import write_members

LONG_NAME = "n" * 300  # longer than any file system's NAME_MAX (255)


def one_line_refusal(code, err: str, fragment: str = "", codes=(1, 2)) -> None:
    """The command ended with one "error" line on stderr (progress bars aside), no traceback."""
    assert code in codes, (code, err)
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]
    assert len(lines) == 1 and lines[0].startswith("diffusion-stepper: error: "), err
    assert "Traceback" not in err and fragment in lines[0], err


def members_of(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A small MNIST run (the tiny class DDPM model, 3 steps) and a small 2D run (the exact field)."""
    folder = tmp_path_factory.mktemp("runs")
    checkpoint = write_tiny_checkpoint(folder / "model", "class", "ddpm")
    from diffusion_stepper.core import cli

    image_run, points_run = folder / "digits.npz", folder / "points.npz"
    assert cli.main(["sample", "mnist", "--checkpoint", str(checkpoint), "--steps", "3", "--out", str(image_run)]) == 0
    argv = ["sample", "toy2d", "--exact", "8-gaussians", "--num", "20", "--steps", "2", "--out", str(points_run)]
    assert cli.main(argv) == 0
    return {"digits": image_run, "points": points_run, "checkpoint": checkpoint}


# --- tracebacks ---------------------------------------------------------------------------------


def test_a_path_the_file_system_refuses_is_one_line(tmp_path, capsys, runs):
    long = tmp_path / LONG_NAME
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cases = [
        (["sample", "mnist", "--checkpoint", f"{long}.json", "--out", tmp_path / "r.npz"], "File name too long"),
        (["sample", "mnist", "--checkpoint", long, "--out", tmp_path / "r.npz"], "File name too long"),
        (["sample", "toy2d", "--checkpoint", long, "--out", tmp_path / "r.npz"], "File name too long"),
        (["inspect", f"{long}.npz"], "File name too long"),
        (["export", f"{long}.npz", "--gif", tmp_path / "a.gif"], "File name too long"),
        (["bundle", f"{long}.json", "--name", "mnist-class-flow", "--dest", tmp_path / "b"], "File name too long"),
        (["train", "toy2d", "--dataset", f"{long}.json", "--out", tmp_path / "t"], "File name too long"),
        (["bundle", runs["checkpoint"], "--name", "mnist-class-ddpm", "--dest", a_file], "is a file"),
        (["bundle", runs["checkpoint"], "--name", "mnist-class-ddpm", "--dest", "/proc/x"], "--dest"),
        (["download", "mnist", "--data-dir", a_file], "is a file"),  # refused before any download
        (["download", "mnist", "--data-dir", "/proc/x/mnist"], "--data-dir"),
    ]
    for argv, fragment in cases:
        code, _, err = run_cli(capsys, *argv)
        one_line_refusal(code, err, fragment)


def test_a_file_system_error_nothing_checked_for_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    def refused(request):
        raise OSError(36, "File name too long", str(tmp_path / LONG_NAME))

    monkeypatch.setattr("diffusion_stepper.core.mnist.sampling.start_sampling", refused)
    code, _, err = run_cli(capsys, "sample", "mnist", "--out", tmp_path / "r.npz")
    one_line_refusal(code, err, "cannot use it (File name too long)")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["export", "{digits}", "--html", ""], "--html is empty"),
        (["export", "{digits}", "--gif", ""], "--gif is empty"),
        (["export", "{digits}", "--gif", "{tmp}/a.gif", "--panel", ""], "--panel is empty"),
        (["export", "{digits}", "--html", "{tmp}/a.html", "--title", "  "], "--title is empty"),
        (["sample", "toy2d", "--exact", "8-gaussians", "--out", ""], "--out is empty"),
        (["experiment", "toy2d", "forward", "--out-dir", ""], "--out-dir is empty"),
        (["inspect", ""], "argument is empty"),
    ],
)
def test_an_empty_value_is_refused_whatever_the_flag(tmp_path, capsys, runs, argv, fragment):
    argv = [arg.format(digits=runs["digits"], tmp=tmp_path) for arg in argv]
    code, _, err = run_cli(capsys, *argv)
    one_line_refusal(code, err, fragment)
    assert not list(tmp_path.iterdir())  # nothing written, in the current folder either


def test_text_that_is_not_utf8_is_refused_in_one_line(tmp_path, capsys, runs):
    undecodable = os.fsdecode(b"caf\xe9")  # what Python makes of Latin-1 bytes in argv: a lone surrogate
    for argv in (
        ["export", runs["digits"], "--html", tmp_path / "a.html", "--title", undecodable],
        ["inspect", tmp_path / f"{undecodable}.npz"],
    ):
        code, _, err = run_cli(capsys, *argv)
        one_line_refusal(code, err, "not UTF-8")
        assert "\\udce9" in err
    assert not (tmp_path / "a.html").exists()


def console(command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f"{sys.executable} -m diffusion_stepper.visualizer {command}"],
        capture_output=True,
        text=True,
        timeout=180,
        **kwargs,
    )


@pytest.mark.slow  # the command in processes of its own
def test_a_closed_or_full_stdout_ends_in_one_line():
    closed = console("models >&-")
    one_line_refusal(closed.returncode, closed.stderr, "standard output is closed")
    if os.path.exists("/dev/full"):
        full = console("models > /dev/full")
        one_line_refusal(full.returncode, full.stderr, "No space left on device")


def test_an_eta_no_sampler_uses_is_refused_before_sampling(tmp_path, capsys, tiny_checkpoints):
    out = tmp_path / "r.npz"
    cases = [
        (["sample", "toy2d", "--exact", "8-gaussians", "--sampler", "ddpm", "--eta", "0.5"], "sampler has none"),
        (["sample", "toy2d", "--exact", "8-gaussians", "--objective", "flow", "--eta", "0.5"], "no DDIM sampler"),
        (["sample", "mnist", "--checkpoint", tiny_checkpoints["class-flow"], "--eta", "0.5"], "no DDIM sampler"),
    ]
    for argv, fragment in cases:
        code, _, err = run_cli(capsys, *argv, "--out", out)
        one_line_refusal(code, err, fragment)
        assert "%|" not in err and not out.exists()  # refused before the progress bar


def test_a_2d_shaped_run_without_its_settings_is_refused_by_the_loader(tmp_path, capsys, runs):
    members = members_of(runs["points"])
    meta = json.loads(str(members["meta"]))
    del meta["params"]["toy2d"]
    plain = {key: value for key, value in members.items() if not key.startswith("extra_")}
    meta["extras"] = {}
    path = write_members(tmp_path / "no-settings.npz", {**plain, "meta": np.asarray(json.dumps(meta))})
    with pytest.raises(TrajectoryFileError, match="1 \\(grey\\) or 3"):
        load_trajectory(path)
    code, _, err = run_cli(capsys, "export", path, "--html", tmp_path / "page.html")
    one_line_refusal(code, err, "params.toy2d")
    four = members_of(runs["digits"])  # an image run of four-channel pictures: no export draws those
    four = {key: np.repeat(value, 4, axis=2) if value.ndim == 5 else value for key, value in four.items()}
    with pytest.raises(TrajectoryFileError, match="has 4 channels"):
        load_trajectory(write_members(tmp_path / "four.npz", four))


# --- accepted with exit 0, but wrong ------------------------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e30])
def test_pictures_with_nan_or_absurd_values_are_refused_at_load(tmp_path, capsys, runs, value):
    members = members_of(runs["digits"])
    for name in ("x_t", "eps_hat"):
        broken = {**members, name: members[name].copy()}
        broken[name][1, 0, 0, 3, 3] = value
        path = write_members(tmp_path / f"{name}.npz", broken)
        with pytest.raises(TrajectoryFileError, match=f"{name} holds NaN, infinite or absurd values"):
            load_trajectory(path)
        for argv in (["inspect", path, "--judge"], ["export", path, "--html", tmp_path / "page.html"]):
            code, _, err = run_cli(capsys, *argv)
            one_line_refusal(code, err, "at frame 1")
    assert not (tmp_path / "page.html").exists()


def test_a_run_that_would_not_read_back_is_not_written(tmp_path, runs):
    trajectory = load_trajectory(runs["digits"])
    trajectory.frames[-1].x_t = trajectory.frames[-1].x_t * float("nan")  # a sampler that diverged
    with pytest.raises(UserFacingError, match="not written, as it would not open again: x_t holds NaN"):
        save_trajectory(trajectory, tmp_path / "diverged.npz")
    points = load_trajectory(runs["points"])
    points.meta["params"]["toy2d"]["dataset"] = "d" * 300
    with pytest.raises(UserFacingError, match="not written.*toy2d.dataset"):
        save_trajectory(points, tmp_path / "long-name.npz")
    assert not list(tmp_path.iterdir())


def test_an_output_that_is_one_of_the_inputs_is_refused_when_sampling(tmp_path, capsys, tiny_checkpoints):
    sidecar = tiny_checkpoints["class-ddpm"]
    drawing = tmp_path / "drawing.json"
    drawing.write_text(json.dumps({"points": [[0.1 * i, 0.05 * i] for i in range(20)]}))
    before = {path: path.read_bytes() for path in (sidecar, sidecar.with_suffix(".safetensors"), drawing)}
    for argv in (
        ["sample", "mnist", "--checkpoint", sidecar, "--out", sidecar],
        ["sample", "mnist", "--checkpoint", sidecar, "--out", sidecar.with_suffix(".safetensors")],
        ["sample", "toy2d", "--exact", drawing, "--out", drawing],
        ["sample", "if", "--task", "forward", "--image", drawing, "--out", drawing],
    ):
        code, _, err = run_cli(capsys, *argv)
        one_line_refusal(code, err, "is also an input of this command")
    assert all(path.read_bytes() == data for path, data in before.items())


def test_an_os_error_without_a_file_name_keeps_its_words(tmp_path, capsys, monkeypatch):
    def truncated(request):
        raise OSError("image file is truncated (3 bytes not processed)")

    monkeypatch.setattr("diffusion_stepper.core.mnist.sampling.start_sampling", truncated)
    code, _, err = run_cli(capsys, "sample", "mnist", "--out", tmp_path / "r.npz")
    one_line_refusal(code, err, "image file is truncated")
    assert "cannot write the output" not in err


def test_an_output_that_is_one_of_the_inputs_is_refused_for_every_export(tmp_path, capsys, runs):
    run = tmp_path / "run.npz"
    run.write_bytes(runs["digits"].read_bytes())
    link = tmp_path / "link.png"
    link.symlink_to(run)
    for argv in (
        ["export", run, "--html", run],
        ["export", runs["digits"], run, "--html", tmp_path / "." / "run.npz"],
        ["export", run, "--gif", run],
        ["export", run, "--mp4", run],
        ["export", run, "--png-grid", link],
    ):
        code, _, err = run_cli(capsys, *argv)
        one_line_refusal(code, err, "is also an input of this command")
    assert run.read_bytes() == runs["digits"].read_bytes()


def test_guidance_is_bounded_wherever_it_is_accepted(tmp_path, capsys, tiny_checkpoints, runs):
    from diffusion_stepper.core.deepfloyd_if.tasks import IFRequest, prepare
    from diffusion_stepper.core.diffusion.sampling import ClassifierFreeGuidance
    from diffusion_stepper.core.mnist.sampling import SampleRequest, start_sampling
    from diffusion_stepper.core.toy2d.datasets import DATASETS
    from diffusion_stepper.core.toy2d.runs import Toy2DSettings, Toy2DSource, toy2d_run
    from diffusion_stepper.core.toy2d.training import make_objective

    out = tmp_path / "r.npz"
    for argv in (
        ["sample", "mnist", "--checkpoint", tiny_checkpoints["class-ddpm"], "--guidance", "1e308"],
        ["sample", "toy2d", "--exact", "8-gaussians", "--class", "1", "--guidance", "1e308"],
    ):
        code, _, err = run_cli(capsys, *argv, "--out", out)
        one_line_refusal(code, err, "must be between 0 and 100")
    cond = torch.ones(1, 2)
    with pytest.raises(UserFacingError, match="between 0 and 100"):
        ClassifierFreeGuidance(lambda x, t, c: x, cond, cond, 1e308)
    with pytest.raises(UserFacingError, match="between 0 and 100"):
        start_sampling(SampleRequest(str(tiny_checkpoints["class-ddpm"]), guidance=1e308, steps=2))
    source = Toy2DSource.exact(DATASETS["8-gaussians"], make_objective("ddpm"))
    with pytest.raises(UserFacingError, match="between 0 and 100"):
        toy2d_run(source, Toy2DSettings(count=10, steps=2, label=1, guidance=1e308))
    with pytest.raises(UserFacingError, match="between 0 and 100"):
        prepare(IFRequest(task="sample", prompt=["a"], guidance=1e308))
    members = members_of(runs["digits"])
    meta = json.loads(str(members["meta"]))
    meta["params"]["guidance"] = 1e308
    with pytest.raises(TrajectoryFileError, match="params.guidance"):
        load_trajectory(write_members(tmp_path / "g.npz", {**members, "meta": np.asarray(json.dumps(meta))}))
    assert not out.exists()


def test_budgets_beyond_the_models_chain_are_refused(tiny_checkpoints):
    from diffusion_stepper.core.mnist.sampler_quality import QualityRequest, quality_plan

    checkpoint = str(tiny_checkpoints["class-ddpm"])  # the tiny model's chain: T = 20
    assert len(quality_plan(QualityRequest(checkpoint, budgets=[5, 20])).points) > 0
    with pytest.raises(UserFacingError, match="NFE budget 21 is more than .* T = 20"):
        quality_plan(QualityRequest(checkpoint, budgets=[5, 21]))


def test_a_flow_sidecar_asking_for_clipping_is_refused_when_loaded(tiny_checkpoints):
    from diffusion_stepper.core.mnist.checkpoints import load_checkpoint

    sidecar = tiny_checkpoints["class-flow"]
    document = json.loads(sidecar.read_text())
    document["sampling"] = {"x0_clip": "static"}
    sidecar.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match=r"sampling.x0_clip.*this model is flow"):
        load_checkpoint(sidecar)


# --- flags silently ignored -------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "mnist", "--resume", "x.json", "--epochs", "3", "--device", "cpu", "--data-dir", "d"],
        ["train", "mnist", "--model", "class", "--p-uncond", "0.2", "--ema-decay", "0.99", "--epoch-samples", "4"],
        ["train", "mnist", "--preset", "quick", "--hidden", "8"],
        ["train", "toy2d", "--dataset", "moons", "--classes", "--p-uncond", "0.1", "--iterations", "10"],
        ["train", "mnist-judge", "--epochs", "1", "--data-dir", "d"],
        ["sample", "mnist", "--noisy-test", "--data-dir", "d"],
        ["sample", "toy2d", "--exact", "moons", "--objective", "flow", "--class", "1", "--guidance", "3"],
        ["sample", "if", "--task", "hybrid", "--prompt", "a", "--prompt2", "b", "--blur-kernel", "9"],
        ["sample", "if", "--task", "anagram", "--prompt", "a", "--prompt2", "b", "--prompt3", "c"],
        ["sample", "if", "--task", "upscale", "--noise-level", "3", "--prompt", "a"],
        ["sample", "if", "--task", "inpaint", "--mask", "m.png", "--image", "i.png", "--eta", "0.5"],
        ["experiment", "mnist", "guidance-tradeoff", "--guidances", "0,1", "--per-class", "2", "--sampler", "ddim"],
        ["experiment", "mnist", "sampler-quality", "--budgets", "5,10", "--per-class", "2", "--guidance", "3"],
        ["experiment", "mnist", "epochs", "--run-dir", "r", "--epochs", "1,2"],
        ["inspect", "run.npz", "--judge", "--data-dir", "d"],
        ["export", "run.npz", "--html", "p.html", "--every", "2", "--title", "t"],
        ["export", "run.npz", "--png-grid", "p.png", "--steps-shown", "0,1"],
    ],
)
def test_a_flag_that_does_something_here_is_accepted(argv):
    """The other side of the refusals below: every flag in these does something for what is asked."""
    from diffusion_stepper.core.cli import build_parser, command_module
    from diffusion_stepper.core.cli.common import refuse_unused_flags

    if argv[0] in ("train", "sample"):
        argv = [*argv, "--out", "o"]
    elif argv[0] == "experiment":
        argv = [*argv, "--out-dir", "o"]
    args = build_parser().parse_args(argv)
    refuse_unused_flags(args, command_module(args.command).flag_scopes(args))


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "toy2d", "--dataset", "moons", "--preset", "quick"], "--preset is for train mnist"),
        (["train", "toy2d", "--dataset", "moons", "--model", "class"], "--model is for train mnist"),
        (["train", "toy2d", "--dataset", "moons", "--data-dir", "x"], "--data-dir is for train mnist and mnist-judge"),
        (["train", "toy2d", "--dataset", "moons", "--ema-decay", "0"], "--ema-decay is for train mnist"),
        (["train", "toy2d", "--dataset", "moons", "--p-uncond", "0.2"], "--p-uncond is for class-conditioned"),
        (["train", "mnist-judge", "--hidden", "8"], "--hidden is for train mnist and toy2d"),
        (["train", "mnist", "--model", "time", "--p-uncond", "0.2"], "--p-uncond is for class-conditioned"),
        (["train", "mnist", "--resume", "x.json", "--hidden", "8"], "--hidden is for a new run"),
        (["sample", "toy2d", "--exact", "8-gaussians", "--guidance", "3"], "--guidance is for --class"),
        (["sample", "toy2d", "--checkpoint", "x", "--objective", "flow"], "--objective is for --exact"),
        (["sample", "mnist", "--data-dir", "x"], "--data-dir is for --noisy-test"),
        (["sample", "if", "--task", "forward", "--eta", "0.5"], "--eta is for the tasks that walk a chain"),
        (["sample", "if", "--task", "blur", "--steps", "5"], "--steps is for the tasks that walk a chain"),
        (["sample", "if", "--task", "sample", "--mask", "m.png"], "--mask is for --task inpaint"),
        (["sample", "if", "--task", "sample", "--noise-level", "3"], "--noise-level is for --task upscale"),
        (["sample", "if", "--task", "forward", "--prompt", "a"], "--prompt is for the tasks that run the model"),
        (["experiment", "mnist", "samplers", "--budgets", "5,10"], "--budgets is for sampler-quality"),
        (["experiment", "mnist", "guidance-tradeoff", "--nfe", "5"], "--nfe is for the sampler races"),
        (["experiment", "mnist", "guidance-tradeoff", "--guidance", "2"], "--guidance is for samplers"),
        (["experiment", "mnist", "samplers", "--steps", "5"], "--steps is for guidance-sweep"),
        (["experiment", "mnist", "noising", "--run-dir", "x"], "--run-dir is for the epochs experiment"),
        (["experiment", "toy2d", "forward", "--checkpoint", "x", "--dataset", "y"], "--dataset is for the exact"),
        (["inspect", "{digits}", "--data-dir", "x"], "--data-dir is for --judge"),
        (["export", "{digits}", "--png-grid", "{tmp}/a.png", "--every", "2"], "--every is for animations"),
        (["export", "{digits}", "--gif", "{tmp}/a.gif", "--steps-shown", "0,1"], "--steps-shown is for --png-grid"),
        (["export", "{digits}", "--png-grid", "{tmp}/a.png", "--fps", "5"], "--fps is for animations"),
    ],
)
def test_a_flag_that_does_nothing_here_is_refused(tmp_path, capsys, runs, argv, fragment):
    argv = [arg.format(digits=runs["digits"], tmp=tmp_path) for arg in argv]
    out = ["--out-dir", tmp_path / "o"] if argv[0] == "experiment" else ["--out", tmp_path / "o"]
    if argv[0] in ("inspect", "export"):
        out = []
    code, _, err = run_cli(capsys, *argv, *out)
    one_line_refusal(code, err, fragment, codes=(1,))
    assert "%|" not in err and not list(tmp_path.iterdir())  # refused before any work


def test_per_class_for_a_model_without_classes_is_refused(tmp_path, capsys, tiny_checkpoints):
    argv = ["sample", "mnist", "--checkpoint", tiny_checkpoints["time-flow"], "--per-class", 2, "--out", tmp_path / "r"]
    code, _, err = run_cli(capsys, *argv)
    one_line_refusal(code, err, "--per-class needs a class-conditioned model")


# --- written, then refused --------------------------------------------------------------------


def test_a_name_longer_than_the_loader_takes_is_refused_before_any_work(tmp_path, capsys):
    from diffusion_stepper.core.limits import NAME_CHARS
    from diffusion_stepper.core.toy2d.drawn import save_drawn

    points = torch.tensor([[0.0, 0.0], [1.0, 0.5], [-1.0, 0.5], [0.5, -1.0]])
    too_long = save_drawn(tmp_path / ("d" * (NAME_CHARS + 1) + ".json"), points)
    for argv in (
        ["sample", "toy2d", "--exact", too_long, "--num", 10, "--steps", 2, "--out", tmp_path / "r.npz"],
        ["train", "toy2d", "--dataset", too_long, "--iterations", 2, "--out", tmp_path / "model"],
    ):
        code, _, err = run_cli(capsys, *argv)
        one_line_refusal(code, err, f"at most {NAME_CHARS} characters")
        assert "%|" not in err
    longest = save_drawn(tmp_path / ("d" * NAME_CHARS + ".json"), points)  # the longest name is written and read
    code, _, err = run_cli(
        capsys, "sample", "toy2d", "--exact", longest, "--num", 10, "--steps", 2, "--out", tmp_path / "r.npz"
    )
    assert code == 0, err
    assert load_trajectory(tmp_path / "r.npz").meta["params"]["toy2d"]["dataset"] == "d" * NAME_CHARS


# --- memory ------------------------------------------------------------------------------------


def test_the_exact_field_of_a_large_drawing_is_computed_in_pieces(monkeypatch):
    from diffusion_stepper.core.toy2d import mixture as mixture_module
    from diffusion_stepper.core.toy2d.drawn import drawn_mixture

    generator = torch.Generator().manual_seed(0)
    mixture = drawn_mixture(torch.rand(300, 2, generator=generator) * 4 - 2)
    x = torch.randn(1000, 2, generator=generator, dtype=torch.float64)
    whole = mixture.posterior_means(x, 0.6, 0.8), mixture.score(x, 0.6, 0.8), mixture.log_density(x, 0.6, 0.8)
    monkeypatch.setattr(mixture_module, "TABLE_ENTRIES", 300 * 7)  # 7 rows a piece
    pieces = mixture.posterior_means(x, 0.6, 0.8), mixture.score(x, 0.6, 0.8), mixture.log_density(x, 0.6, 0.8)
    for a, b in zip([*whole[0], *whole[1:]], [*pieces[0], *pieces[1:]]):
        assert torch.allclose(a, b)


def peak_memory_mb(argv: list) -> tuple[int, str, float]:
    """The console script's main in a fresh Python: its exit code, stderr and peak memory in MB."""
    script = (
        "import resource, sys\n"
        "from diffusion_stepper.visualizer.launcher import main\n"
        f"code = main({[str(a) for a in argv]!r})\n"
        "sys.stderr.write('PEAK %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    lines = result.stderr.strip().splitlines()
    return result.returncode, "\n".join(lines[:-1]), int(lines[-1].split()[1]) / 1024


@pytest.mark.slow  # measured in processes of their own
def test_sampling_the_exact_field_of_the_largest_drawing_stays_small(tmp_path):
    from diffusion_stepper.core.limits import DRAWN_POINTS
    from diffusion_stepper.core.toy2d.drawn import save_drawn

    runs = {}
    for points in (20, DRAWN_POINTS[1]):  # a small drawing is the baseline: imports and the run itself
        drawing = save_drawn(tmp_path / f"{points}.json", torch.rand(points, 2) * 4 - 2)  # the largest is 100 kB
        out = tmp_path / f"r-{points}.npz"
        runs[points] = ["sample", "toy2d", "--exact", drawing, "--num", 5000, "--steps", 2, "--out", out]
    with ThreadPoolExecutor(2) as pool:  # side by side: each process measures its own peak
        outcomes = dict(zip(runs, pool.map(peak_memory_mb, runs.values())))
    peaks = {}
    for points, (code, err, peak) in outcomes.items():
        assert code == 0, err
        peaks[points] = peak
    # the whole tables took 1.3 GB more than the baseline (1.6 GB in all)
    assert peaks[DRAWN_POINTS[1]] - peaks[20] < 300, peaks


def test_a_page_too_large_for_memory_is_refused_before_any_picture(tmp_path, capsys, runs, monkeypatch):
    rendered = []
    monkeypatch.setattr("diffusion_stepper.core.exports.render.render_particles", lambda *a: rendered.append(1))
    monkeypatch.setattr("diffusion_stepper.core.limits.available_memory_bytes", lambda: 1_000_000)
    code, _, err = run_cli(capsys, "export", runs["points"], "--html", tmp_path / "p.html")
    one_line_refusal(code, err, "--every K")
    assert "memory" in err and not rendered
    monkeypatch.setattr("diffusion_stepper.core.exports.html_page.PAGE_PICTURE_BYTES", 1_000)
    monkeypatch.setattr("diffusion_stepper.core.limits.available_memory_bytes", lambda: 10**12)
    code, _, err = run_cli(capsys, "export", runs["points"], "--html", tmp_path / "p.html")
    one_line_refusal(code, err, "a browser opens")
    assert not rendered and not (tmp_path / "p.html").exists()


def test_a_picture_is_sized_from_its_header_before_it_is_decoded(tmp_path, monkeypatch):
    from diffusion_stepper.core.deepfloyd_if import images

    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((120, 200), np.uint16)).save(path)  # 16-bit grey
    monkeypatch.setattr(images, "MAX_PIXELS", 20_000)
    with pytest.raises(UserFacingError, match=r"200x120 pixels .* more than the 0.02"):
        images.load_image(path, 64)
    monkeypatch.setattr(images, "MAX_PIXELS", 10**6)
    monkeypatch.setattr("diffusion_stepper.core.limits.available_memory_bytes", lambda: 100_000)
    with pytest.raises(UserFacingError, match="memory"):
        images.load_image(path, 64)
    monkeypatch.setattr("diffusion_stepper.core.limits.available_memory_bytes", lambda: 10**10)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # Pillow would warn of a bomb here
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = images.load_image(path, 64)
        assert images.picture_size(path) == (200, 120)
    assert loaded.tensor.shape == (1, 3, 64, 64) and any("16-bit" in note for note in loaded.notes)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "toy2d", "--dataset", "moons", "--batch-size", 65536, "--hidden", 1024],
        ["train", "mnist", "--model", "time", "--batch-size", 4096, "--hidden", 64, "--device", "cpu"],
    ],
)
def test_training_beyond_the_memory_free_is_refused_up_front(tmp_path, capsys, monkeypatch, mnist_dir, argv):
    monkeypatch.setattr("diffusion_stepper.core.limits.available_memory_bytes", lambda: 1_000_000_000)
    data = ["--data-dir", mnist_dir] if "mnist" in argv else []
    code, _, err = run_cli(capsys, *argv, *data, "--out", tmp_path / "m")
    one_line_refusal(code, err, "use a smaller --batch-size or --hidden")
    assert "%|" not in err and not list((tmp_path / "m").glob("*.json"))


@pytest.mark.slow  # measured in processes of their own
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_the_training_memory_estimate_holds_what_a_step_really_uses():
    """The estimate against the process's real peak over one training step (its peak resident
    memory less what it held before the step), in a fresh process."""
    probe = """
import resource, sys, torch
from diffusion_stepper.core.mnist.recipes import TrainConfig
config = TrainConfig(model="class", objective="flow", epochs=1, hidden=32, batch_size=128, lr=1e-3)
model = config.build_model()
optimizer = torch.optim.Adam(model.parameters())
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()  # resident now
x, t = torch.randn(128, 1, 28, 28), torch.rand(128, 1)
c = torch.nn.functional.one_hot(torch.arange(128) % 10, 10).float()
model(x, t=t, c=c).square().mean().backward()
optimizer.step()
used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
print(config.memory_estimate() / used)
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr
    ratio = float(result.stdout)
    assert 1.0 <= ratio <= 2.0, f"the estimate is {ratio:.2f}x the measured peak"


# --- lost output -------------------------------------------------------------------------------


def test_weights_and_sidecar_change_together_whenever_the_writer_dies(tmp_path, monkeypatch):
    from diffusion_stepper.core import atomic
    from diffusion_stepper.core.toy2d.checkpoints import load_toy2d_checkpoint, save_toy2d_checkpoint
    from diffusion_stepper.core.toy2d.training import Toy2DConfig, Toy2DTrained, train_toy2d

    def trained(hidden: int, seed: int = 0) -> Toy2DTrained:
        config = Toy2DConfig(iterations=2, batch_size=16, hidden=hidden, depth=1, seed=seed)
        return [event for event in train_toy2d(config) if isinstance(event, Toy2DTrained)][0]

    old, new = trained(8), trained(16)
    real_replace = os.replace
    outcomes = []
    for dies_at in range(10):  # at each rename the save makes, until one save makes fewer
        folder = tmp_path / f"dies-{dies_at}"
        save_toy2d_checkpoint(folder, old)
        calls = []

        def replace_then_die(source, target, dies_at=dies_at, calls=calls):
            calls.append(target)
            if len(calls) > dies_at:
                raise KeyboardInterrupt  # as SIGKILL would stop it here (its temporary files are then cleared)
            real_replace(source, target)

        monkeypatch.setattr(atomic.os, "replace", replace_then_die)
        try:
            save_toy2d_checkpoint(folder, new)
            finished = True
        except KeyboardInterrupt:
            finished = False
        monkeypatch.setattr(atomic.os, "replace", real_replace)
        outcomes.append(load_toy2d_checkpoint(folder).model.hidden)  # old or new, whole: never none, never mixed
        if finished:
            break
        save_toy2d_checkpoint(folder, new)  # the next write completes it
        assert load_toy2d_checkpoint(folder).model.hidden == 16
        assert not list(folder.glob("*.previous.*")) and not list(folder.glob(".*partial"))
    assert outcomes[0] == 8 and outcomes[-1] == 16 and set(outcomes) == {8, 16} and len(outcomes) >= 3, outcomes

    # an old sidecar beside new weights, however they came together, is refused in one line
    save_toy2d_checkpoint(tmp_path / "a", old)
    save_toy2d_checkpoint(tmp_path / "b", trained(8, seed=1))  # the same shapes, other weights
    (tmp_path / "b" / "toy2d.safetensors").replace(tmp_path / "a" / "toy2d.safetensors")
    with pytest.raises(CheckpointError, match="not the one it was saved with"):
        load_toy2d_checkpoint(tmp_path / "a")


def save_epoch_with_training_state(folder: Path, seed: int) -> Path:
    """Epoch 1 of a tiny time-conditioned DDPM run, with a training state that records `seed`."""
    state = {"generator": torch.arange(8, dtype=torch.uint8) + seed}
    return write_tiny_checkpoint(folder, "time", "ddpm", seed=seed, training_state=state)


def test_an_epoch_saved_again_keeps_weights_and_training_state_whole_whenever_the_writer_dies(tmp_path, monkeypatch):
    from diffusion_stepper.core import atomic
    from diffusion_stepper.core.mnist.checkpoints import load_checkpoint, load_training_state

    save = save_epoch_with_training_state
    real_replace = os.replace
    seen = []
    for dies_at in range(10):
        folder = tmp_path / f"dies-{dies_at}"
        save(folder, seed=1)
        calls = []

        def replace_then_die(source, target, dies_at=dies_at, calls=calls):
            calls.append(target)
            if len(calls) > dies_at:
                raise KeyboardInterrupt
            real_replace(source, target)

        monkeypatch.setattr(atomic.os, "replace", replace_then_die)
        try:
            save(folder, seed=2)
            finished = True
        except KeyboardInterrupt:
            finished = False
        monkeypatch.setattr(atomic.os, "replace", real_replace)
        sidecar = folder / "epoch-001.json"
        load_checkpoint(sidecar)  # the weights match their record
        _, state = load_training_state(sidecar)  # and so does the training state, of the same save
        seen.append((json.loads(sidecar.read_text())["hyperparameters"]["seed"], int(state["generator"][0])))
        if finished:
            break
    assert seen[0] == (1, 1) and seen[-1] == (2, 2) and all(seed == first for seed, first in seen), seen


def test_sampling_a_checkpoint_does_not_need_its_training_state(tmp_path):
    """The state beside a checkpoint is for resuming; deleting it to save disk leaves a model to sample."""
    from diffusion_stepper.core.mnist.checkpoints import load_checkpoint, load_training_state

    sidecar = save_epoch_with_training_state(tmp_path / "run", seed=1)
    (tmp_path / "run" / json.loads(sidecar.read_text())["training_state"]).unlink()
    with pytest.raises(CheckpointError, match="no such file"):
        load_training_state(sidecar)
    assert load_checkpoint(sidecar).model is not None


def test_an_mnist_checkpoint_is_checked_against_its_record_too(tmp_path, tiny_checkpoints):
    from diffusion_stepper.core.mnist.checkpoints import load_checkpoint

    sidecar = tiny_checkpoints["class-ddpm"]
    document = json.loads(sidecar.read_text())
    assert len(document["weights_sha256"]) == 64 and document["weights_bytes"] > 0
    weights = sidecar.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(CheckpointError, match="weights file epoch-001.safetensors is not the one"):
        load_checkpoint(sidecar)


# --- Ctrl+C ------------------------------------------------------------------------------------


def interrupted_training(tmp_path: Path, delay: float | None) -> subprocess.CompletedProcess:
    """`train toy2d` sent SIGINT after `delay` seconds (None: once its progress bar shows)."""
    argv = [sys.executable, "-m", "diffusion_stepper.visualizer", "train", "toy2d", "--dataset", "moons"]
    argv += ["--iterations", "1000000", "--out", str(tmp_path / "model")]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if delay is None:
        os.set_blocking(process.stderr.fileno(), False)
        seen, deadline = b"", time.monotonic() + 120
        while b"it/s" not in seen and b"s/it" not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
            seen += process.stderr.read() or b""
    else:
        time.sleep(delay)
        seen = b""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(argv, process.returncode, out.decode(), (seen + (err or b"")).decode())


@pytest.mark.slow  # the command in a process of its own
@pytest.mark.parametrize("delay", [0.3, 1.0, None])
def test_ctrl_c_at_any_moment_ends_with_the_interrupted_line_and_130(tmp_path, delay):
    result = interrupted_training(tmp_path, delay)
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines() if line.strip() and "it]" not in line]
    assert result.returncode == 130, result.stderr
    assert lines[-1] == "diffusion-stepper: interrupted" and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "model" / "toy2d.json").exists()


def test_a_ctrl_c_that_some_code_swallowed_still_ends_the_command(capsys, monkeypatch):
    def swallowing(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here
        except KeyboardInterrupt:
            pass  # as a library's `except BaseException` or a C++ callback would
        return 0

    monkeypatch.setattr("diffusion_stepper.core.cli.models.run", swallowing)
    code, _, err = run_cli(capsys, "models")
    assert code == 130 and err == "diffusion-stepper: interrupted\n"

    def broken_after_interrupt(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass
        raise ImportError("cannot load module more than once per process")  # an import cut in half

    monkeypatch.setattr("diffusion_stepper.core.cli.models.run", broken_after_interrupt)
    code, _, err = run_cli(capsys, "models")
    assert code == 130 and err == "diffusion-stepper: interrupted\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is the test's again


# --- a refusal is one line ----------------------------------------------------------------------


def test_a_path_holding_a_newline_or_an_escape_is_one_line(tmp_path, capsys):
    strange = tmp_path / "two\nlines\x1b[31m.npz"
    for make in (None, lambda: strange.write_bytes(b"not a trajectory")):
        if make:
            make()
        code, _, err = run_cli(capsys, "inspect", strange)
        one_line_refusal(code, err, "two\\nlines\\x1b[31m.npz")
    assert str(UserFacingError("a\nb\r\u2028c\x00")) == "a\\nb\\r\\u2028c\\x00"


def test_a_legacy_pickle_embeddings_file_is_refused_without_torchs_warnings(tmp_path):
    from diffusion_stepper.core.deepfloyd_if.embeddings import PromptEmbeddings

    path = tmp_path / "legacy.pth"
    torch.save({"a prompt": torch.zeros(1, 77, 8), "extra": Path("x")}, path, _use_new_zipfile_serialization=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UserFacingError) as raised:
            PromptEmbeddings.from_file(path)
    assert not caught, [str(warning.message) for warning in caught]
    assert "\n" not in str(raised.value) and "not a prompt-embeddings file" in str(raised.value)
