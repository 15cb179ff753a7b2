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


def test_2d_experiments_use_the_trained_model_where_it_suits_and_say_when_the_exact_field_stands_in(tmp_path):
    """Issue 30 §3: the README's promise; no experiment refuses the dock's model."""
    from diffusion_stepper.core.toy2d.checkpoints import save_toy2d_checkpoint
    from diffusion_stepper.core.toy2d.experiments import Toy2DExperimentOptions, toy2d_experiment_requests
    from diffusion_stepper.core.toy2d.training import Toy2DConfig, Toy2DTrained, train_toy2d

    config = Toy2DConfig(dataset="8-gaussians", objective="flow", iterations=2, batch_size=16, hidden=8, depth=1)
    trained = [event for event in train_toy2d(config) if isinstance(event, Toy2DTrained)][0]
    save_toy2d_checkpoint(tmp_path / "flow-model", trained)
    options = Toy2DExperimentOptions(checkpoint=str(tmp_path / "flow-model"), dataset="8-gaussians")
    few = toy2d_experiment_requests("few-steps", options)
    assert all(request.source.checkpoint for request in few)  # a flow experiment on the flow model
    ode_sde = toy2d_experiment_requests("ode-vs-sde", options)
    assert all(request.source.checkpoint is None and request.source.objective == "ddpm" for request in ode_sde)
    assert all("uses the exact ddpm field instead" in request.settings.note for request in ode_sde)
    same = toy2d_experiment_requests("same-budget", options)
    assert len(same) == 3 and all(request.source.checkpoint is None for request in same)
