"""The command line says what the app does (issue 30 §5): the defaults its help names are the ones
it uses, and a flag it would ignore is refused."""

from __future__ import annotations

from diffusion_stepper.core.diffusion.solvers import sampler_title
from diffusion_stepper.core.mnist.guidance_tradeoff import FAST_SAMPLERS
from tests.cli_running import run_cli


def help_text(capsys, *argv) -> str:
    code, out, _ = run_cli(capsys, *argv, "--help")
    assert code == 0
    return " ".join(out.split()).replace("- ", "-")  # argparse wraps lines, also after a hyphen


def test_sample_mnist_names_the_models_own_sampler_as_its_default(capsys):
    text = help_text(capsys, "sample", "mnist")
    assert "default: the model's own" in text and "ddpm for DDPM-trained" not in text


def test_the_tradeoff_help_names_the_samplers_it_runs(capsys):
    text = help_text(capsys, "experiment", "mnist")
    for objective, (name, steps) in FAST_SAMPLERS.items():
        assert f"{sampler_title(name, objective == 'flow')}, {steps} steps" in text


def test_the_top_level_help_lists_every_sample_target(capsys):
    text = help_text(capsys)
    assert "mnist, DeepFloyd IF: if, or the 2D lab: toy2d" in text


def test_a_slide_export_refuses_a_zoom_it_would_ignore(tmp_path, capsys, tiny_checkpoints):
    run = tmp_path / "run.npz"
    code, _, err = run_cli(capsys, "sample", "mnist", "--checkpoint", tiny_checkpoints["time-flow"], "--out", run)
    assert code == 0, err
    for sizing in (["--for-slides"], ["--aspect", "16:9"]):
        code, _, err = run_cli(capsys, "export", run, "--gif", tmp_path / "a.gif", *sizing, "--scale", 8)
        assert code == 1 and "--scale is for a free layout's zoom" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a.gif").exists()


def test_opening_a_file_that_is_not_a_run_says_what_it_is_and_what_to_do(tmp_path, capsys, tiny_checkpoints):
    import json

    from PIL import Image

    sidecar = tiny_checkpoints["time-flow"]
    Image.new("RGB", (8, 8)).save(tmp_path / "frame.gif")
    Image.new("RGB", (8, 8)).save(tmp_path / "frame.png")
    (tmp_path / "page.html").write_text("<!DOCTYPE html><html></html>")
    expected = {
        sidecar: "a model checkpoint, not a run: add it as a model",
        sidecar.with_suffix(".safetensors"): "a model checkpoint, not a run: add it as a model",
        tmp_path / "frame.gif": "a GIF animation (an export), not a run",
        tmp_path / "frame.png": "a PNG picture, not a run",
        tmp_path / "page.html": "an interactive page (an export)",
    }
    assert json.loads(sidecar.read_text())["format"].endswith("-checkpoint")
    for path, says in expected.items():
        code, _, err = run_cli(capsys, "inspect", path)
        assert code == 1 and says in err and len(err.strip().splitlines()) == 1, err
