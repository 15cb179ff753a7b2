"""The equation panel's text carries this step's own numbers."""

import pytest
import torch

from diffusion_stepper.core.diffusion.equations import frame_caption, step_equation
from diffusion_stepper.core.mnist.checkpoints import load_checkpoint
from diffusion_stepper.core.mnist.sampling import sample_mnist
from diffusion_stepper.core.parsing import format_int_list, parse_float_list, parse_int_list
from diffusion_stepper.core.run_meta import RunMeta


def frames_of(checkpoint, **kwargs):
    run = sample_mnist(load_checkpoint(checkpoint), **kwargs)
    return run.run_meta, list(run.frames)


def test_ddpm_equation_shows_the_coefficients_the_step_used(tiny_checkpoints):
    meta, frames = frames_of(tiny_checkpoints["class-ddpm"], classes=[3], steps=5, guidance=7.5)
    frame = frames[1]
    text = "\n".join(step_equation(meta, frame))
    coeffs = frame.coeffs
    assert f"{coeffs['coef_x0']:.4f}·x̂₀" in text and f"{coeffs['coef_xt']:.4f}·x_t" in text
    assert f"{coeffs['sigma']:.4f}·z" in text
    assert "γ = 7.5" in text
    assert f"t = {int(frame.t)} → t′ = {int(coeffs['t_next'])}" in text
    assert (
        frame_caption(meta, frame, len(frames)) == f"step 1/5 · t = {int(frame.t)} · ᾱ_t = {coeffs['alpha_bar_t']:.4f}"
    )
    assert "final" in step_equation(meta, frames[-1])[0]


def test_flow_and_single_step_equations(tiny_checkpoints):
    meta, frames = frames_of(tiny_checkpoints["time-flow"], num=2, steps=4)
    text = "\n".join(step_equation(meta, frames[0]))
    assert f"{frames[0].coeffs['dt']:.4f}·v̂" in text and "γ" not in text
    assert frame_caption(meta, frames[0], len(frames)) == "step 0/4 · t = 0.000"
    assert "x̂₁ = x_t + (1 − t)·v̂" in text  # flow matching's clean end is x₁, at t = 1
    assert "x_1 = the image shown (t = 1.000)" in step_equation(meta, frames[-1])
    meta, frames = frames_of(tiny_checkpoints["single-step"], num=2)
    assert "σ = 1.0000" in "\n".join(step_equation(meta, frames[0]))


def test_number_lists():
    assert parse_int_list("0-3, 7") == [0, 1, 2, 3, 7]
    assert parse_int_list("3,3,7") == [3, 3, 7]
    assert parse_float_list("0, 2.5;10") == [0.0, 2.5, 10.0]
    assert format_int_list([1, 2, 3, 5, 10, 11]) == "1-3, 5, 10, 11"
    for values in ([], [4], [1, 2, 3, 4, 5, 9], [2, 4, 6]):
        assert parse_int_list(format_int_list(values)) == values
    with pytest.raises(ValueError, match="0-9"):
        parse_int_list("a-b")
    with pytest.raises(ValueError):
        parse_int_list("5-2")
    assert torch.tensor(parse_int_list("0-9")).sum() == 45


def test_the_noising_process_is_named_and_explained_as_what_it_is(mnist_dir):
    from diffusion_stepper.core.diffusion.theory import no_schedule_reason
    from diffusion_stepper.core.mnist.experiments import SigmaSweepRequest
    from diffusion_stepper.core.run_names import default_run_name

    run = SigmaSweepRequest(None, data_dir=str(mnist_dir), device="cpu").start()
    assert default_run_name(run.run_meta).startswith("MNIST test digits · noising")
    assert "σ itself is the step" in no_schedule_reason(run.run_meta)
    assert "single-step denoiser" in no_schedule_reason(RunMeta.of({"algorithm": "single-step"}))
