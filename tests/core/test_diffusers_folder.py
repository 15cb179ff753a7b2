"""Any diffusers unconditional DDPM/DDIM folder (core.own_model): our loop against diffusers' own
DDPMPipeline and DDIMPipeline, every ε sampler's updates, every folder we refuse, and the command.

All on tiny UNet2DModel pipelines built and saved here (tests/diffusers_folders.py); nothing is
downloaded. The pipelines' output is compared as they map it, (x/2 + 0.5).clamp(0, 1).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_stepper.core import cli
from diffusion_stepper.core.diffusion.equations import step_equation
from diffusion_stepper.core.diffusion.rules.catalogue import EPS_SAMPLERS
from diffusion_stepper.core.diffusion.step_check import check_step
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.formats.trajectory_file import load_trajectory
from diffusion_stepper.core.own_model.diffusers_folder import diffusers_folder_of, read_folder
from diffusion_stepper.core.own_model.diffusers_sampling import DiffusersSampleRequest
from tests.cli_running import run_cli
from tests.diffusers_folders import save_tiny_pipeline

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

TOLERANCE = 1e-4
# name: (scheduler class, its config, DDIM steps, DDPM steps)
CONFIGS = {
    # DDPMScheduler's defaults: clip_sample on, "leading" spacing, ε, fixed_small (β̃)
    "default": ("DDPMScheduler", {}, 7, 20),
    # v, no clip, fixed_large (β) whose noise the last step (from t = 1) still adds; 50/7 is no
    # whole stride, so DDIM's t − T//N is not the next timestep
    "trailing-v": (
        "DDPMScheduler",
        dict(
            num_train_timesteps=50,
            timestep_spacing="trailing",
            prediction_type="v_prediction",
            clip_sample=False,
            variance_type="fixed_large",
        ),
        7,
        20,
    ),
    # x̂₀ predicted, thresholded, steps_offset 1, and DDIM's final ᾱ = ᾱ_0
    "ddim-sample": (
        "DDIMScheduler",
        dict(
            prediction_type="sample",
            thresholding=True,
            sample_max_value=1.5,
            steps_offset=1,
            set_alpha_to_one=False,
        ),
        10,
        10,
    ),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusers")
    return {name: save_tiny_pipeline(root / name, cls, **config) for name, (cls, config, _, _) in CONFIGS.items()}


def frames_of(request: DiffusersSampleRequest):
    run = request.start()
    frames = list(run.frames)
    assert len(frames) == run.num_frames
    return run, frames


def as_pipelines_give_it(frames) -> np.ndarray:
    return (frames[-1].x_t / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def reference(
    folder, sampler: str, steps: int, seed: int, num: int, eta: float = 0.0
) -> tuple[np.ndarray, torch.Tensor]:
    """The pipeline's images, and its last x before the pipeline clamps it to [0, 1] (where a third of
    a random model's pixels saturate, so the images alone would hide a difference there)."""
    import diffusers
    from diffusers import DDIMPipeline, DDPMPipeline, DDPMScheduler, UNet2DModel

    unet = UNet2DModel.from_pretrained(folder / "unet")
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    if sampler == "ddim":  # DDIMPipeline makes a DDIMScheduler of the folder's scheduler itself
        scheduler = getattr(diffusers, config["_class_name"]).from_config(config)
        pipeline, extra = DDIMPipeline(unet=unet, scheduler=scheduler), {"eta": eta}
    else:
        pipeline, extra = DDPMPipeline(unet=unet, scheduler=DDPMScheduler.from_config(config)), {}
    pipeline.set_progress_bar_config(disable=True)
    raw = []
    step = pipeline.scheduler.step

    def keeping_the_result(*args, **kwargs):
        result = step(*args, **kwargs)
        raw[:] = [result.prev_sample]
        return result

    pipeline.scheduler.step = keeping_the_result
    generator = torch.Generator().manual_seed(seed)
    images = pipeline(batch_size=num, generator=generator, num_inference_steps=steps, output_type="np", **extra).images
    return images, raw[0]


def assert_equal_to(frames, expected: tuple[np.ndarray, torch.Tensor], label: str) -> None:
    """The images as the pipeline gives them, and the raw final x, each within TOLERANCE."""
    images, raw = expected
    shown = float(np.abs(as_pipelines_give_it(frames) - images).max())
    raw_difference = float((frames[-1].x_t - raw).abs().max() / max(1.0, float(raw.abs().max())))
    print(f"{label}: max |Δ| = {shown:.1e} on the images, {raw_difference:.1e} on the raw x (relative)")
    assert shown <= TOLERANCE and raw_difference <= TOLERANCE


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_a_run_equals_the_diffusers_pipeline(folders, name, sampler):
    _, _, ddim_steps, ddpm_steps = CONFIGS[name]
    steps = ddim_steps if sampler == "ddim" else ddpm_steps
    run, frames = frames_of(DiffusersSampleRequest(str(folders[name]), sampler=sampler, steps=steps, seed=3, num=3))
    assert_equal_to(frames, reference(folders[name], sampler, steps, 3, 3), f"{name} {sampler}")
    assert run.meta["params"]["timesteps"] == [int(frame.t) for frame in frames[:-1]]


def test_ddim_with_eta_equals_the_pipeline_too(folders):
    run, frames = frames_of(DiffusersSampleRequest(str(folders["default"]), sampler="ddim", steps=5, eta=0.7, seed=1))
    assert_equal_to(frames, reference(folders["default"], "ddim", 5, 1, 4, eta=0.7), "default ddim η = 0.7")
    assert run.meta["params"]["eta"] == 0.7


@pytest.mark.parametrize("sampler", EPS_SAMPLERS)
def test_every_sampler_gives_finite_frames_whose_updates_check_out(folders, sampler):
    for name in ("default", "trailing-v"):
        run, frames = frames_of(DiffusersSampleRequest(str(folders[name]), sampler=sampler, steps=7, num=2))
        assert frames[0].x_t.shape == (2, 3, 32, 32) and frames[-1].t == -1
        for frame in frames:
            assert all(torch.isfinite(image).all() for image in (frame.x_t, frame.x0_hat, frame.eps_hat))
        for index in range(len(frames) - 1):
            check = check_step(frames, index)
            assert check is not None and check.holds(), (name, index, frames[index].update.formula)
        assert run.meta["params"]["sampler"] == sampler


def test_ddim_says_where_its_step_lands_when_that_is_not_the_next_timestep(folders):
    run, frames = frames_of(DiffusersSampleRequest(str(folders["trailing-v"]), sampler="ddim", steps=7, num=1))
    moved = [frame for frame in frames[:-1] if "t_target" in frame.coeffs]
    assert moved, "50 steps over 7 is no whole stride: some step lands off the next timestep"
    for frame in moved:
        assert frame.coeffs["t_target"] == frame.t - 50 // 7 and "DDIMScheduler" in frame.update.formula
    lines = step_equation(run.run_meta, moved[0], frames)  # what the equation panel and inspect print
    assert any("the model predicts v" in line for line in lines)
    assert any("check: these numbers give the next x_t" in line for line in lines)


def test_the_run_records_what_the_app_and_theory_read(folders):
    folder = folders["default"]
    run, frames = frames_of(DiffusersSampleRequest(str(folder), steps=4, num=2, seed=7))
    meta = run.run_meta
    assert (meta.family, meta.model, meta.checkpoint, meta.seed) == ("ddpm", "default", str(folder), 7)
    assert (meta.sampler, meta.steps, meta.num_samples, meta.source) == ("ddpm", 4, 2, "pure noise")
    assert meta.value_range == (-1.0, 1.0) and meta.x0_clip == "static" and len(meta.alpha_bars) == 1000
    assert meta.params["variance_type"] == "fixed_small" and meta.params["prediction_type"] == "epsilon"
    assert frames[0].coeffs["alpha_bar_t"] == pytest.approx(meta.alpha_bars[int(frames[0].t)])


def test_defaults_follow_the_pipelines(folders):
    from diffusion_stepper.core.own_model.diffusers_sampling import plan_run

    ddpm, ddim = read_folder(folders["trailing-v"]), read_folder(folders["ddim-sample"])
    assert plan_run(ddpm, None, None, None, None) == plan_run(ddpm, "ddpm", 50, None, 4)  # T steps, as DDPMPipeline
    assert plan_run(ddim, None, None, None, None) == plan_run(ddim, "ddim", 50, 0.0, 4)
    assert plan_run(ddpm, "heun", None, None, None).steps == 50  # 50, at most T
    assert ddim.describe() == "3×32×32, DDIMScheduler (sample, T = 1000)"


def test_the_flat_layout_and_a_cached_hub_id_sample_the_same(folders, tmp_path, monkeypatch):
    import huggingface_hub.constants

    flat = tmp_path / "flat"
    shutil.copytree(folders["default"] / "unet", flat)
    shutil.copy(folders["default"] / "scheduler" / "scheduler_config.json", flat)
    snapshot = tmp_path / "hub" / "models--someone--tiny-ddpm" / "snapshots" / ("a" * 40)
    shutil.copytree(folders["default"], snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    finals = []
    for source in (folders["default"], flat, "someone/tiny-ddpm"):
        run, frames = frames_of(DiffusersSampleRequest(str(source), sampler="ddim", steps=3, num=1))
        finals.append(frames[-1].x_t)
    assert run.meta["model"] == "someone/tiny-ddpm"
    torch.testing.assert_close(finals[0], finals[1], rtol=0, atol=0)
    torch.testing.assert_close(finals[0], finals[2], rtol=0, atol=0)
    with pytest.raises(UserFacingError, match="someone/other is not in the Hugging Face cache"):
        DiffusersSampleRequest("someone/other").start()


def test_a_folder_saved_in_fp16_alone_samples_in_float32(folders, tmp_path):
    from diffusers import UNet2DModel

    folder = shutil.copytree(folders["default"], tmp_path / "fp16")
    UNet2DModel.from_pretrained(folder / "unet").half().save_pretrained(folder / "unet", variant="fp16")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    assert read_folder(folder).weights_variant == "fp16"
    _, frames = frames_of(DiffusersSampleRequest(str(folder), sampler="ddim", steps=2, num=1))
    assert frames[-1].x_t.dtype == torch.float32 and torch.isfinite(frames[-1].x_t).all()


def test_a_file_in_the_folder_names_the_folder(folders):
    folder = folders["default"]
    for path in (folder, folder / "model_index.json", folder / "unet" / "diffusion_pytorch_model.safetensors"):
        assert diffusers_folder_of(path) == folder
    assert diffusers_folder_of(folder.parent) is None


def edit_json(path, **changes):
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


BAD_FOLDERS = {
    "no unet": (lambda f: shutil.rmtree(f / "unet"), "is not a diffusers DDPM/DDIM folder: it needs unet/"),
    "no scheduler": (lambda f: shutil.rmtree(f / "scheduler"), "has no scheduler/scheduler_config.json"),
    "not a UNet2DModel": (lambda f: edit_json(f / "unet/config.json", _class_name="VQModel"), "not a UNet2DModel"),
    "conditional": (
        lambda f: edit_json(f / "unet/config.json", _class_name="UNet2DConditionModel"),
        "a conditional UNet (UNet2DConditionModel",
    ),
    "class embeddings": (lambda f: edit_json(f / "unet/config.json", num_class_embeds=10), "class-conditioned"),
    "learned variance": (lambda f: edit_json(f / "unet/config.json", out_channels=6), "6 channels out for 3 in"),
    "latent": (lambda f: edit_json(f / "unet/config.json", in_channels=4, out_channels=4), "needs its VAE"),
    "too small": (lambda f: edit_json(f / "unet/config.json", sample_size=16), "sample_size 16 px"),
    "other scheduler": (
        lambda f: edit_json(f / "scheduler/scheduler_config.json", _class_name="PNDMScheduler"),
        "only DDPMScheduler and DDIMScheduler",
    ),
    "learned_range": (
        lambda f: edit_json(f / "scheduler/scheduler_config.json", variance_type="learned_range"),
        "variance_type 'learned_range' is not supported here",
    ),
    "spacing": (
        lambda f: edit_json(f / "scheduler/scheduler_config.json", timestep_spacing="karras"),
        "timestep_spacing 'karras' is not supported",
    ),
    "zero snr": (
        lambda f: edit_json(f / "scheduler/scheduler_config.json", rescale_betas_zero_snr=True),
        "rescale_betas_zero_snr is not supported",
    ),
    "broken json": (lambda f: (f / "unet/config.json").write_text("{"), "unreadable config"),
    "pickle only": (
        lambda f: (f / "unet/diffusion_pytorch_model.safetensors").rename(f / "unet/diffusion_pytorch_model.bin"),
        "only as a PyTorch pickle (diffusion_pytorch_model.bin)",
    ),
    "no weights": (lambda f: (f / "unet/diffusion_pytorch_model.safetensors").unlink(), "has no weights"),
}


@pytest.mark.parametrize("case", BAD_FOLDERS)
def test_every_bad_folder_is_one_line_saying_what_is_wrong(folders, tmp_path, case):
    folder = shutil.copytree(folders["default"], tmp_path / "copy")
    spoil, says = BAD_FOLDERS[case]
    spoil(folder)
    with pytest.raises(UserFacingError) as error:
        DiffusersSampleRequest(str(folder)).start()
    assert says in str(error.value) and "\n" not in str(error.value)


def test_bad_choices_are_refused_before_loading(folders, tmp_path):
    folder = str(folders["trailing-v"])
    for request, says in (
        (DiffusersSampleRequest(folder, steps=51), "steps must be between 1 and T = 50"),
        (DiffusersSampleRequest(folder, sampler="ddpm", eta=0.5), "--eta is DDIM's noise scale"),
        (DiffusersSampleRequest(folder, sampler="midpoint"), "the 'midpoint' sampler does not suit"),
        (DiffusersSampleRequest(str(tmp_path / "missing")), "no such folder"),
    ):
        with pytest.raises(UserFacingError, match=says):
            request.start()


def test_sample_diffusers_then_inspect_and_export(folders, tmp_path, capsys):
    run_file = tmp_path / "run.npz"
    flags = ["--model-dir", folders["default"], "--sampler", "ddim", "--steps", 4, "--num", 2, "--device", "cpu"]
    code, out, err = run_cli(capsys, "sample", "diffusers", *flags, "--out", run_file)
    assert code == 0, err
    assert "5 frames of 2 images (default, ddim)" in out
    trajectory = load_trajectory(run_file)
    assert trajectory[0].x_t.shape == (2, 3, 32, 32) and trajectory.run_meta.family == "ddpm"
    code, out, err = run_cli(capsys, "inspect", run_file, "--step", 1)
    assert code == 0 and "check: these numbers give the next x_t" in out, err
    gif = tmp_path / "run.gif"
    code, _, err = run_cli(capsys, "export", run_file, "--gif", gif, "--panel", "x_t,x0_hat")
    assert code == 0, err
    with Image.open(gif) as picture:
        assert picture.n_frames == 5 and picture.convert("RGB").getextrema() != ((0, 0),) * 3
    code, _, err = run_cli(capsys, "sample", "diffusers", *flags, "--eta", 2, "--out", run_file)
    assert code == 2 and len(err.strip().splitlines()) == 1


@pytest.mark.slow  # a process of its own (diffusers' import, a few training steps)
def test_the_example_trainer_writes_a_folder_sample_diffusers_reads(tmp_path, capsys):
    """examples/tiny_diffusers_ddpm.py, the README screenshot's model, at two iterations."""
    script = Path(__file__).resolve().parents[2] / "examples" / "tiny_diffusers_ddpm.py"
    folder = tmp_path / "discs"
    result = subprocess.run(
        [sys.executable, str(script), "--out", str(folder), "--iterations", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "iteration 2/2" in result.stdout and (folder / "unet" / "diffusion_pytorch_model.safetensors").exists()
    out = tmp_path / "discs.npz"
    assert (
        cli.main(["sample", "diffusers", "--model-dir", str(folder), "--steps", "3", "--num", "2", "--out", str(out)])
        == 0
    )
    run = load_trajectory(out)
    assert run.final_sample.shape == (2, 3, 32, 32) and run.run_meta.model == "discs"
