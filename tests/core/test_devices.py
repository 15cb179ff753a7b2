"""The device a run gets: a CUDA GPU, else Apple's GPU (MPS), else the CPU; with availability mocked,
since no machine here has either."""

import pytest
import torch

from diffusion_stepper.core import cli
from diffusion_stepper.core.deepfloyd_if.models import load_if_stage
from diffusion_stepper.core.devices import DEVICE_CHOICES, is_gpu, resolve_device
from diffusion_stepper.core.errors import UserFacingError


@pytest.fixture
def machine(monkeypatch):
    """Say which GPUs this machine has: machine(cuda=..., mps=...)."""

    def have(cuda: bool = False, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return have


@pytest.mark.parametrize(
    "cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")], ids=str
)
def test_auto_takes_cuda_then_mps_then_the_cpu(machine, cuda, mps, expected):
    machine(cuda=cuda, mps=mps)
    assert resolve_device("auto").type == expected


def test_mps_is_a_choice_everywhere_a_device_is(machine):
    machine(mps=True)
    assert "mps" in DEVICE_CHOICES and resolve_device("mps").type == "mps" and is_gpu("mps")
    assert is_gpu("cuda:0") and not is_gpu("cpu")


def test_asking_for_mps_without_it_says_what_to_do(machine):
    machine(cuda=True)
    with pytest.raises(UserFacingError, match="no Apple GPU.*choose --device cpu instead") as info:
        resolve_device("mps")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("command", [["train", "mnist"], ["sample", "mnist"]])
def test_the_cli_takes_mps_and_refuses_it_in_one_line_where_there_is_none(machine, command, tmp_path, capsys):
    machine()
    assert cli.main([*command, "--device", "mps", "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("diffusion-stepper: error: device mps was asked for") and "\n" not in error


def test_if_counts_mps_as_a_gpu_and_needs_no_allow_cpu_there(machine, tmp_path):
    machine()
    with pytest.raises(UserFacingError, match="needs a GPU, CUDA or Apple's MPS"):
        load_if_stage(model_dir=tmp_path, device="cpu")
    machine(mps=True)
    with pytest.raises(UserFacingError, match="is not an IF stage folder"):  # past the GPU check
        load_if_stage(model_dir=tmp_path, device="mps")
