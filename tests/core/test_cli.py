"""Every CLI command end to end on tiny models, and the bad inputs that must fail in one line."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusion_stepper.core import cli
from diffusion_stepper.core.formats.layout import GRID_PADDING
from diffusion_stepper.core.formats.trajectory_file import load_trajectory
from diffusion_stepper.core.mnist.bundled import BUNDLED_NAMES
from diffusion_stepper.core.mnist.data import DATA_ENV_VAR
from diffusion_stepper.core.mnist.recipes import preset_config


def run(capsys, *argv):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_then_resume_on_real_mnist(tmp_path, capsys, mnist_dir):
    out = tmp_path / "run"
    common = ["--hidden", 4, "--limit", 64, "--batch-size", 32, "--epoch-samples", 10, "--epoch-sample-steps", 2]
    code, stdout, _ = run(
        capsys,
        "train",
        "mnist",
        "--model",
        "class",
        "--objective",
        "flow",
        "--epochs",
        1,
        *common,
        "--data-dir",
        mnist_dir,
        "--out",
        out,
    )
    assert code == 0
    assert "epoch 1/1" in stdout
    assert {p.name for p in out.iterdir()} >= {"epoch-001.json", "epoch-001.safetensors", "epoch-001-samples.png"}
    with Image.open(out / "epoch-001-samples.png") as grid:
        assert grid.size == (10 * 28 + 11 * GRID_PADDING, 28 + 2 * GRID_PADDING)  # one of each digit in a row
    code, stdout, _ = run(
        capsys,
        "train",
        "mnist",
        "--resume",
        out / "epoch-001.json",
        "--epochs",
        2,
        "--data-dir",
        mnist_dir,
        "--out",
        out,
    )
    assert code == 0 and "epoch 2/2" in stdout and (out / "epoch-002.json").is_file()
    # keep training: two more epochs on a schedule of their own, after the run has ended
    code, stdout, _ = run(
        capsys, "train", "mnist", "--resume", out, "--epochs", "+2", "--data-dir", mnist_dir, "--out", out
    )
    assert code == 0 and "epoch 3/4" in stdout and "epoch 4/4" in stdout
    sidecar = json.loads((out / "epoch-004.json").read_text())
    assert sidecar["hyperparameters"]["continued_after_epoch"] == 2 and sidecar["epoch"] == 4
    code, _, err = run(capsys, "train", "mnist", "--epochs", "+2", "--out", tmp_path / "new")
    assert code != 0 and "--epochs +N adds epochs to a run" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "train", "mnist", "--resume", out, "--epochs", "+0", "--out", out)
    assert code != 0 and "--epochs" in err and len(err.strip().splitlines()) == 1


def test_quick_preset_from_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # a fresh home folder: the bundled MNIST, no --data-dir
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    out = tmp_path / "quick"
    code, stdout, err = run(capsys, "train", "mnist", "--preset", "quick", "--limit", 64, "--hidden", 4, "--out", out)
    assert code == 0, err
    assert stdout.startswith("training on MNIST bundled with the app\n")
    quick = preset_config("quick")
    last = f"epoch {quick.epochs}/{quick.epochs}"
    assert last in stdout and f"batch {64 // quick.batch_size}/" in err and "left" in err  # the Train tab's readout
    sidecar = json.loads((out / f"epoch-{quick.epochs:03d}.json").read_text())
    recipe = sidecar["hyperparameters"]
    assert (recipe["model"], recipe["objective"], recipe["limit"], recipe["hidden"]) == ("class", "flow", 64, 4)
    for name in ("batch_size", "lr", "lr_schedule", "ema_decay", "epoch_sample_steps"):  # the preset's, kept
        assert recipe[name] == getattr(quick, name), name
    assert sidecar["objective"] == {"name": "flow", "num_ts": quick.num_ts}
    assert (out / f"epoch-{quick.epochs:03d}-samples.png").is_file()


@pytest.mark.parametrize(
    "kind, extra, frames, noise",
    [
        ("class-ddpm", ["--classes", "3,8", "--per-class", 2, "--steps", 5, "--guidance", 3], 6, "eps_hat"),
        ("class-flow", ["--steps", 4], 5, "v_hat"),
        ("time-ddpm", ["--num", 3], 21, "eps_hat"),  # the tiny model's T = 20
        ("time-flow", ["--num", 2], 9, "v_hat"),  # and num_ts = 8
        ("single-step", ["--num", 4], 2, "eps_hat"),
    ],
)
def test_sample_writes_a_trajectory(tmp_path, capsys, tiny_checkpoints, kind, extra, frames, noise):
    out = tmp_path / "run.npz"
    code, stdout, err = run(capsys, "sample", "mnist", "--checkpoint", tiny_checkpoints[kind], *extra, "--out", out)
    assert code == 0, err
    trajectory = load_trajectory(out)
    assert len(trajectory) == frames and trajectory.noise_field == noise
    assert f"{frames} frames" in stdout
    if kind == "class-ddpm":
        assert trajectory.labels.tolist() == [3, 8, 3, 8]
        assert trajectory.meta["params"]["guidance"] == 3.0


def test_keep_every_stores_every_kth_frame_and_the_last(tmp_path, capsys, tiny_checkpoints):
    full, thin = tmp_path / "full.npz", tmp_path / "thin.npz"
    common = ["sample", "mnist", "--checkpoint", tiny_checkpoints["class-ddpm"], "--steps", 10, "--seed", 4]
    assert run(capsys, *common, "--out", full)[0] == 0
    code, stdout, err = run(capsys, *common, "--keep-every", 4, "--out", thin)
    assert code == 0, err
    full_run, thin_run = load_trajectory(full), load_trajectory(thin)
    assert [frame.t for frame in thin_run] == [full_run[i].t for i in (0, 4, 8, 10)]
    assert [frame.index for frame in thin_run] == [0, 1, 2, 3]
    for kept, original in zip(thin_run, (0, 4, 8, 10)):
        assert np.array_equal(kept.x_t.numpy(), full_run[original].x_t.numpy())
        assert kept.coeffs == full_run[original].coeffs  # each kept step keeps its own update numbers


def test_single_step_denoises_noisy_test_digits(tmp_path, capsys, tiny_checkpoints, mnist_dir):
    out = tmp_path / "denoise.npz"
    code, _, err = run(
        capsys,
        "sample",
        "mnist",
        "--checkpoint",
        tiny_checkpoints["single-step"],
        "--noisy-test",
        "--num",
        3,
        "--sigma",
        0.8,
        "--data-dir",
        mnist_dir,
        "--out",
        out,
    )
    assert code == 0, err
    trajectory = load_trajectory(out)
    assert trajectory[0].t == pytest.approx(0.8) and trajectory.meta["params"]["source"] == "noised test digits"


def test_export_gif_and_contact_sheet(tmp_path, capsys, tiny_checkpoints):
    run_file = tmp_path / "run.npz"
    run(capsys, "sample", "mnist", "--checkpoint", tiny_checkpoints["class-ddpm"], "--steps", 10, "--out", run_file)
    gif = tmp_path / "run.gif"
    code, _, err = run(
        capsys, "export", run_file, "--gif", gif, "--panel", "eps_hat", "--every", 3, "--scale", 2, "--fps", 20
    )
    assert code == 0, err
    with Image.open(gif) as image:
        assert image.n_frames == 5  # 0, 3, 6, 9, 10
    sheet = tmp_path / "sheet.png"
    code, _, err = run(capsys, "export", run_file, "--png-grid", sheet, "--steps-shown", "0,5,10")
    assert code == 0, err
    with Image.open(sheet) as image:
        assert image.mode == "RGB" and np.asarray(image).std() > 0


def test_models_lists_the_bundled_checkpoints(capsys):
    code, stdout, _ = run(capsys, "models")
    assert code == 0
    for name in BUNDLED_NAMES:
        assert name in stdout
    rows = {line.split()[0]: line for line in stdout.splitlines()[1:]}
    # the defaults a user does not see: the model's own sampler, steps and clipping, from its sidecar
    from diffusion_stepper.core.diffusion.rules.catalogue import EPS_SAMPLERS
    from diffusion_stepper.core.mnist.checkpoints import load_checkpoint

    ddpm = load_checkpoint("mnist-class-ddpm")
    shown = f"{EPS_SAMPLERS[ddpm.default_sampler].title}, {ddpm.default_steps} strided steps, x̂0 clipped to [0, 1]"
    assert ddpm.default_x0_clip == "static" and shown in rows["mnist-class-ddpm"]
    assert "one jump" in rows["mnist-single-step"]


def test_bundle_writes_a_half_precision_copy(tmp_path, capsys, tiny_checkpoints):
    code, stdout, err = run(
        capsys, "bundle", tiny_checkpoints["class-flow"], "--name", "mnist-class-flow", "--dest", tmp_path
    )
    assert code == 0, err
    from safetensors.torch import load_file

    from diffusion_stepper.core.mnist.checkpoints import load_checkpoint, read_sidecar

    sidecar = read_sidecar(tmp_path / "mnist-class-flow.json")
    assert "training_state" not in sidecar and sidecar["weights_dtype"] == "float16"
    assert all(
        v.dtype.is_floating_point is False or str(v.dtype) == "torch.float16"
        for v in load_file(tmp_path / "mnist-class-flow.safetensors").values()
    )
    assert load_checkpoint(tmp_path / "mnist-class-flow.json").is_class_conditioned


def test_bundle_steps_become_the_models_default(tmp_path, capsys, tiny_checkpoints):
    code, _, err = run(
        capsys, "bundle", tiny_checkpoints["class-ddpm"], "--name", "mnist-class-ddpm", "--dest", tmp_path, "--steps", 5
    )
    assert code == 0, err
    out = tmp_path / "run.npz"
    assert run(capsys, "sample", "mnist", "--checkpoint", tmp_path / "mnist-class-ddpm.json", "--out", out)[0] == 0
    trajectory = load_trajectory(out)
    assert [frame.t for frame in trajectory] == [20, 16, 12, 8, 4, 0]  # 5 strided steps of the tiny T = 20 chain
    assert trajectory.meta["params"]["steps"] == 5
    code, _, err = run(
        capsys,
        "bundle",
        tiny_checkpoints["class-ddpm"],
        "--name",
        "mnist-class-ddpm",
        "--dest",
        tmp_path,
        "--steps",
        50,
    )
    assert code == 1 and "at most 20" in err


def test_bundle_sampler_becomes_the_models_default(tmp_path, capsys, tiny_checkpoints):
    bundle = ["bundle", tiny_checkpoints["class-ddpm"], "--name", "mnist-class-ddpm", "--dest", tmp_path]
    code, _, err = run(capsys, *bundle, "--sampler", "dpm++2m", "--steps", 4)
    assert code == 0, err
    sidecar = tmp_path / "mnist-class-ddpm.json"
    out = tmp_path / "run.npz"
    assert run(capsys, "sample", "mnist", "--checkpoint", sidecar, "--out", out)[0] == 0
    own = load_trajectory(out)
    assert own.meta["params"]["sampler"] == "dpm++2m" and len(own) == 5
    # the same run as asking for the sampler by name: the default only fills in what was not said
    assert run(capsys, "sample", "mnist", "--checkpoint", sidecar, "--sampler", "dpm++2m", "--out", out)[0] == 0
    assert np.array_equal(load_trajectory(out).final_sample.numpy(), own.final_sample.numpy())
    assert run(capsys, "sample", "mnist", "--checkpoint", sidecar, "--sampler", "ddpm", "--out", out)[0] == 0
    assert load_trajectory(out).meta["params"]["sampler"] == "ddpm"
    expect_one_line_error(capsys, [*bundle, "--sampler", "midpoint"], "does not suit ddpm")
    # a sidecar naming a sampler its objective cannot use is refused when loaded, in one line
    text = json.loads(sidecar.read_text())
    text["sampling"]["sampler"] = "midpoint"
    sidecar.write_text(json.dumps(text))
    expect_one_line_error(capsys, ["sample", "mnist", "--checkpoint", sidecar, "--out", out], "sampling.sampler")


def expect_one_line_error(capsys, argv, fragment):
    code, _, err = run(capsys, *argv)
    assert code not in (0, None)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and fragment in lines[0]


def test_bad_inputs_fail_in_one_line(tmp_path, capsys, tiny_checkpoints):
    out = ["--out", tmp_path / "x.npz"]
    class_model = tiny_checkpoints["class-ddpm"]
    expect_one_line_error(
        capsys, ["sample", "mnist", "--checkpoint", "mnist-nonsense", *out], "unknown model 'mnist-nonsense'"
    )
    expect_one_line_error(
        capsys,
        ["sample", "mnist", "--checkpoint", class_model, "--guidance", -1, *out],
        "--guidance: must be between 0 and 100",
    )
    expect_one_line_error(
        capsys, ["sample", "mnist", "--checkpoint", class_model, "--steps", 0, *out], "--steps: must be between 1 and"
    )
    expect_one_line_error(
        capsys, ["sample", "mnist", "--checkpoint", class_model, "--steps", -4, *out], "10000, got -4"
    )
    expect_one_line_error(
        capsys, ["sample", "mnist", "--checkpoint", tmp_path / "nope" / "m.safetensors", *out], "no such file"
    )
    expect_one_line_error(capsys, ["export", tmp_path / "missing.npz", "--gif", tmp_path / "a.gif"], "no such file")
    # Checkpoints of the wrong kind.
    trajectory = tmp_path / "run.npz"
    run(capsys, "sample", "mnist", "--checkpoint", class_model, "--steps", 2, "--out", trajectory)
    expect_one_line_error(
        capsys, ["sample", "mnist", "--checkpoint", trajectory, *out], "not a diffusion-stepper checkpoint"
    )
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"model_type": "bert"}')
    expect_one_line_error(
        capsys, ["sample", "mnist", "--checkpoint", foreign, *out], "not a diffusion-stepper MNIST checkpoint"
    )
    time_model = tiny_checkpoints["time-ddpm"]
    expect_one_line_error(
        capsys,
        ["sample", "mnist", "--checkpoint", time_model, "--guidance", 5, *out],
        "needs a class-conditioned model",
    )
    expect_one_line_error(
        capsys, ["sample", "mnist", "--checkpoint", time_model, "--sigma", 0.3, *out], "use it with the single-step"
    )
    # Usage errors from argparse are one line too.
    expect_one_line_error(
        capsys,
        ["sample", "mnist", "--checkpoint", class_model, "--per-class", 0, *out],
        "--per-class: must be between 1 and",
    )
    expect_one_line_error(capsys, ["train", "mnist", "--model", "unet9000", "--out", tmp_path], "invalid choice")
    # A panel the run does not have is refused before any rendering (no progress bar on stderr).
    expect_one_line_error(
        capsys, ["export", trajectory, "--gif", tmp_path / "c.gif", "--panel", "x0"], "unknown panel 'x0'"
    )
    # A corrupt trajectory given to export.
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04garbage")
    expect_one_line_error(capsys, ["export", corrupt, "--gif", tmp_path / "b.gif"], "corrupt.npz")
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.slow  # the console script in processes of its own
def test_installed_console_script(tmp_path):
    beside_python = Path(sys.executable).parent / "diffusion-stepper"
    script = str(beside_python) if beside_python.is_file() else shutil.which("diffusion-stepper")
    assert script, "the diffusion-stepper script is not installed: run the README's pip install first"
    result = subprocess.run([script, "models"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in BUNDLED_NAMES)
    result = subprocess.run(
        [script, "sample", "mnist", "--checkpoint", "no-such-model", "--out", tmp_path / "x.npz"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("diffusion-stepper: error: unknown model")
    reader, writer = os.pipe()
    os.close(reader)  # a reader that has gone away, as in `diffusion-stepper models | head -0`
    try:
        result = subprocess.run([script, "models"], stdout=writer, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(writer)
    assert result.returncode == 1 and result.stderr == ""


def test_export_for_slides_writes_full_hd_frames(tmp_path, capsys, tiny_checkpoints):
    import av

    run_file = tmp_path / "run.npz"
    run(capsys, "sample", "mnist", "--checkpoint", tiny_checkpoints["class-ddpm"], "--steps", 3, "--out", run_file)
    code, _, err = run(capsys, "export", run_file, "--mp4", tmp_path / "talk.mp4", "--for-slides")
    assert code == 0, err
    with av.open(str(tmp_path / "talk.mp4")) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (1920, 1080)
    code, _, err = run(
        capsys,
        "export",
        run_file,
        "--gif",
        tmp_path / "square.gif",
        "--aspect",
        "1:1",
        "--width",
        600,
        "--layout",
        "stacked",
    )
    assert code == 0, err
    with Image.open(tmp_path / "square.gif") as gif:
        assert gif.size == (600, 600)
    expect_one_line_error(
        capsys, ["export", run_file, "--gif", tmp_path / "w.gif", "--width", 600], "--width goes with"
    )


def test_export_mp4_and_inspect(tmp_path, capsys, tiny_checkpoints):
    import av

    run_file = tmp_path / "run.npz"
    code, _, err = run(
        capsys,
        "sample",
        "mnist",
        "--checkpoint",
        tiny_checkpoints["class-ddpm"],
        "--classes",
        "0-2",
        "--steps",
        6,
        "--guidance",
        2,
        "--out",
        run_file,
    )
    assert code == 0, err
    movie = tmp_path / "run.mp4"
    code, _, err = run(
        capsys, "export", run_file, "--mp4", movie, "--panel", "x_t,x0_hat", "--fps", 7, "--frames", "2:5"
    )
    assert code == 0, err
    with av.open(str(movie)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 4 + 6  # frames 2..5, then 1 s held at 7 fps
    code, stdout, err = run(capsys, "inspect", run_file, "--step", "1,6")
    assert code == 0, err
    trajectory = load_trajectory(run_file)
    assert trajectory.labels.tolist() == [0, 1, 2]
    assert f"{trajectory[1].coeffs['coef_x0']:.4f}·x̂₀" in stdout and "γ = 2" in stdout
    assert "final sample" in stdout
    expect_one_line_error(capsys, ["inspect", run_file, "--step", "9"], "outside this run's frames 0-6")


def test_sample_if_writes_trajectories_that_export_and_inspect(tmp_path, capsys, tiny_if):
    common = tiny_if.stage1_flags
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 30, 3), dtype=np.uint8)).save(image)
    code, stdout, _ = run(
        capsys, "sample", "if", "--prompt", tiny_if.prompts[1], "--steps", 4, *common, "--out", tmp_path / "s.npz"
    )
    assert code == 0 and "5 frames" in stdout
    trajectory = load_trajectory(tmp_path / "s.npz")
    assert trajectory.value_range == (-1.0, 1.0) and trajectory.meta["algorithm"] == "ddpm+cfg"
    assert trajectory.meta["prompts"] == [tiny_if.prompts[1]] and "eps_cond" in trajectory.extra_names()
    code, stdout, _ = run(
        capsys,
        "sample",
        "if",
        "--task",
        "sdedit",
        "--image",
        image,
        "--i-start",
        1,
        3,
        "--stride",
        200,
        *common,
        "--out",
        tmp_path / "sd.npz",
    )
    assert code == 0 and "note: image centre-cropped from 30x24" in stdout
    assert len(load_trajectory(tmp_path / "sd-i1.npz")) == 6 and len(load_trajectory(tmp_path / "sd-i3.npz")) == 4
    code, stdout, _ = run(capsys, "export", tmp_path / "s.npz", "--gif", tmp_path / "s.gif", "--panel", "x_t,eps_cond")
    assert code == 0 and Image.open(tmp_path / "s.gif").n_frames == 5
    code, stdout, _ = run(capsys, "inspect", tmp_path / "s.npz", "--step", 0)
    assert code == 0 and "dynamic thresholding" in stdout and "σ learned per pixel" in stdout
    code, _, stderr = run(capsys, "export", tmp_path / "s.npz", "--gif", tmp_path / "turn.gif", "--anagram-turn")
    assert code == 1 and "for visual anagram runs" in stderr and not (tmp_path / "turn.gif").exists()
    code, _, _ = run(
        capsys,
        "sample",
        "if",
        "--task",
        "anagram",
        "--prompt",
        tiny_if.prompts[1],
        "--prompt2",
        tiny_if.prompts[2],
        "--views",
        "identity",
        "flip",
        "--stride",
        300,
        *common,
        "--out",
        tmp_path / "a.npz",
    )
    code, _, _ = run(capsys, "export", tmp_path / "a.npz", "--gif", tmp_path / "turn.gif", "--anagram-turn")
    assert code == 0 and Image.open(tmp_path / "turn.gif").n_frames == 24


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--task", "inpaint", "--image", "IMAGE"], "needs a mask"),
        (["--task", "anagram", "--prompt", "a"], "one --prompt per view"),
        (["--task", "sdedit"], "starts from an image"),
        (["--prompt", "a unicorn"], "no embedding for the prompt 'a unicorn'"),
        (
            ["--task", "hybrid", "--prompt", "a", "--prompt2", "b", "--blur-kernel", "41"],
            "the blur kernel must be odd and at most 31",
        ),
        (["--task", "blur", "--image", "IMAGE", "--blur-kernel", "4"], "the blur kernel must be odd"),
    ],
)
def test_sample_if_bad_requests_fail_in_one_line(tmp_path, capsys, tiny_if, extra, message):
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    extra = [str(image) if item == "IMAGE" else item for item in extra]
    code, _, stderr = run(
        capsys,
        "sample",
        "if",
        *extra,
        *tiny_if.stage1_flags,
        "--out",
        tmp_path / "x.npz",
    )
    assert code == 1 and message in stderr and stderr.count("\n") == 1
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "mnist", "--lr", "nan"],
        ["train", "mnist", "--ema-decay", "inf"],
        ["sample", "mnist", "--guidance", "nan"],
        ["sample", "mnist", "--guidance=-inf"],
        ["sample", "if", "--guidance", "nan"],
    ],
    ids=" ".join,
)
def test_a_number_that_is_not_finite_is_refused_before_any_work(tmp_path, capsys, argv):
    out = tmp_path / "out.npz"
    expect_one_line_error(capsys, [*argv, "--out", out], "expected a finite number")
    assert not out.exists()
