"""The allocator setting the launcher makes before any work (core/allocator.py)."""

import subprocess
import sys

import pytest

from diffusion_stepper.core.allocator import keep_freed_memory_for_reuse


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")
def test_glibc_takes_the_setting_and_results_do_not_change(tmp_path):
    """The setting is accepted, and a run sampled with it is bit-identical to one without it."""
    code = (
        "import sys, torch\n"
        "if sys.argv[1] == 'kept':\n"
        "    from diffusion_stepper.core.allocator import keep_freed_memory_for_reuse\n"
        "    assert keep_freed_memory_for_reuse()\n"
        "from diffusion_stepper.core.mnist.sampling import SampleRequest, start_sampling\n"
        "run = start_sampling(SampleRequest(per_class=2, steps=3, device='cpu'))\n"
        "torch.save(list(run.frames)[-1].x_t, sys.argv[2])\n"
    )
    for setting in ("default", "kept"):
        subprocess.run([sys.executable, "-c", code, setting, str(tmp_path / setting)], check=True, timeout=300)
    import torch

    default = torch.load(tmp_path / "default", weights_only=True)
    kept = torch.load(tmp_path / "kept", weights_only=True)
    assert torch.equal(default, kept)
    assert keep_freed_memory_for_reuse() is True


def test_other_systems_are_left_alone(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory_for_reuse() is False
