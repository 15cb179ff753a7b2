"""The allocator setting the launcher makes before any work (core/allocator.py)."""

import subprocess
import sys

import pytest

from diffusion_stepper.core.allocator import keep_freed_memory_for_reuse


@pytest.mark.slow  # samples in two processes of their own
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is Linux's")
def test_free_pages_inside_the_heap_go_back_to_the_system():
    """Many small blocks freed in the middle of the heap (as spilled frames leave them) stay
    resident until `release_free_memory` hands their pages back."""
    code = (
        "import ctypes\n"
        "from diffusion_stepper.core.allocator import keep_freed_memory_for_reuse, release_free_memory\n"
        "def rss():\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS'))\n"
        "keep_freed_memory_for_reuse()\n"
        "libc = ctypes.CDLL('libc.so.6')\n"
        "libc.malloc.restype = ctypes.c_void_p\n"
        "libc.free.argtypes = [ctypes.c_void_p]\n"
        "blocks = [libc.malloc(32768) for _ in range(8000)]\n"
        "for block in blocks:\n"
        "    ctypes.memset(block, 1, 32768)\n"
        "for block in blocks[:-1]:\n"  # the last keeps the heap's top in use: nothing is trimmed from the end
        "    libc.free(block)\n"
        "before = rss()\n"
        "assert release_free_memory()\n"
        "print(before - rss())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert int(done.stdout) > 100_000  # kB: most of the 250 MB freed came back
