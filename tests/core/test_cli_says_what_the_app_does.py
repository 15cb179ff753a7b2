"""The command line says what the app does (issue 30 §5): the defaults its help names are the ones
it uses, and a flag it would ignore is refused."""

from __future__ import annotations

from diffusion_stepper.core.diffusion.rules.catalogue import sampler_title
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
    assert "mnist, DeepFloyd IF: if, the 2D lab: toy2d, or a diffusers DDPM/DDIM folder: diffusers" in text


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
    from diffusion_stepper.core.toy2d.experiments import TOY2D_EXPERIMENTS, Toy2DExperimentOptions
    from diffusion_stepper.core.toy2d.training import Toy2DConfig, Toy2DTrained, train_toy2d

    config = Toy2DConfig(dataset="8-gaussians", objective="flow", iterations=2, batch_size=16, hidden=8, depth=1)
    trained = [event for event in train_toy2d(config) if isinstance(event, Toy2DTrained)][0]
    save_toy2d_checkpoint(tmp_path / "flow-model", trained)
    options = Toy2DExperimentOptions(checkpoint=str(tmp_path / "flow-model"), dataset="8-gaussians")
    few = TOY2D_EXPERIMENTS.requests("few-steps", options)
    assert all(request.source.checkpoint for request in few)  # a flow experiment on the flow model
    ode_sde = TOY2D_EXPERIMENTS.requests("ode-vs-sde", options)
    assert all(request.source.checkpoint is None and request.source.objective == "ddpm" for request in ode_sde)
    assert all("uses the exact ddpm field instead" in request.settings.note for request in ode_sde)
    same = TOY2D_EXPERIMENTS.requests("same-budget", options)
    assert len(same) == 3 and all(request.source.checkpoint is None for request in same)


# --- train: each kind its own help (issue 30 §5) ---------------------------------------------------

TRAIN_KINDS = ("mnist", "mnist-judge", "toy2d")
# A value each train flag parses with (None: a switch), to give a flag to a kind that lacks it
TRAIN_FLAG_VALUES = {
    **dict.fromkeys(("--epochs", "--hidden", "--batch-size", "--limit", "--log-every", "--iterations"), "8"),
    **dict.fromkeys(("--epoch-samples", "--epoch-sample-steps", "--seed"), "4"),
    **dict.fromkeys(("--lr", "--ema-decay", "--sigma", "--p-uncond"), "0.5"),
    **dict.fromkeys(("--pure-noise", "--classes"), None),
    "--model": "class",
    "--objective": "flow",
    "--preset": "quick",
    "--lr-schedule": "constant",
    "--device": "cpu",
    "--data-dir": "d",
    "--resume": "x.json",
    "--dataset": "moons",
}


def help_flags(text: str) -> set[str]:
    import re

    return set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", text)) - {"--help"}


def test_train_help_lists_the_kinds_and_sends_to_each_kinds_own_help(capsys):
    text = help_text(capsys, "train")
    assert help_flags(text) == set()  # no kind's flags here
    for kind in TRAIN_KINDS:
        assert f" {kind} " in text
    assert "diffusion-stepper train KIND --help" in text


def test_each_train_kind_lists_only_its_own_flags(capsys):
    flags = {kind: help_flags(help_text(capsys, "train", kind)) for kind in TRAIN_KINDS}
    assert flags["mnist-judge"] == {"--epochs", "--batch-size", "--lr", "--seed", "--data-dir", "--out"}
    assert flags["toy2d"] == {
        *("--dataset", "--objective", "--classes", "--p-uncond", "--iterations", "--hidden", "--batch-size"),
        *("--lr", "--seed", "--out"),
    }
    assert {"--model", "--preset", "--resume", "--device", "--sigma", "--limit"} <= flags["mnist"]
    assert not flags["mnist"] & {"--dataset", "--classes", "--iterations"}


def test_a_flag_another_kinds_help_lists_is_refused_in_one_line_and_its_own_are_not():
    """What each kind's help shows and what it takes agree: its own flags pass the kind check, a flag
    only another kind's help shows is refused naming that kind ("--preset is for train mnist")."""
    import contextlib
    import io

    from diffusion_stepper.core.cli import build_parser, command_module
    from diffusion_stepper.core.cli.common import refuse_unused_flags
    from diffusion_stepper.core.errors import UserFacingError

    def helps(kind):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            build_parser().parse_args(["train", kind, "--help"])
        return help_flags(out.getvalue())

    shown = {kind: helps(kind) for kind in TRAIN_KINDS}
    for kind in TRAIN_KINDS:
        for flag in set().union(*shown.values()) - {"--out"}:
            value = TRAIN_FLAG_VALUES[flag]
            args = build_parser().parse_args(["train", kind, flag, *([] if value is None else [value]), "--out", "o"])
            try:
                refuse_unused_flags(args, command_module("train").flag_scopes(args))
                refusal = ""
            except UserFacingError as exc:
                refusal = str(exc)
            owners = [other for other in TRAIN_KINDS if flag in shown[other]]
            if flag in shown[kind]:
                assert "is for train" not in refusal, (kind, refusal)
            else:
                assert refusal == f"{flag} is for train {' and '.join(owners)}; leave it out", (kind, refusal)


def test_the_quick_presets_time_in_train_help_is_the_one_the_bench_measured(capsys):
    """bench/RESULTS.md's wall times of `train mnist --preset quick`, launch to exit, as a range."""
    import re
    from pathlib import Path

    results = (Path(__file__).parents[2] / "bench" / "RESULTS.md").read_text()
    section = results.split("## Quick training preset")[1].split("\n## ")[0]
    table = section.split("| goal |")[1].split("\n\n")[0]  # the whole-process runs
    walls = [float(w) for w in re.findall(r"\*\*(\d+(?:\.\d+)?) s\*\*", table)]
    assert len(walls) >= 2
    text = help_text(capsys, "train", "mnist")
    assert f"{min(walls):.0f}–{max(walls):.0f} s from the command line" in text
    # and the accuracy over the sampling seeds the bench judged, worst to best
    shares = [int(share) for share in re.findall(r"(\d+)%", table.split("worst of seeds 0–4:")[-1].split(")")[0])]
    assert len(shares) == 5
    assert f"{min(shares)}–{max(shares)}% of its digits read right over five sampling seeds" in text
