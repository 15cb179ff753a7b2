"""Pages made from tiny real runs, and one headless Chromium for all the browser tests (skipped,
saying why, where Chromium or Selenium is missing)."""

from pathlib import Path

import pytest

from diffusion_stepper.core import cli
from tests.browser.chromium import missing_browser, start_chromium


@pytest.fixture(scope="session")
def chromium():
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    driver = start_chromium()
    yield driver
    driver.quit()


def cli_ok(*argv) -> None:
    assert cli.main([str(a) for a in argv]) == 0


@pytest.fixture(scope="session")
def run_files(tmp_path_factory) -> dict[str, Path]:
    """A CFG run of a tiny class model (7 frames, 4 digits), a 3-step Heun run of it, and a 2D run."""
    from tests.conftest import write_tiny_checkpoint

    folder = tmp_path_factory.mktemp("browser")
    checkpoint = write_tiny_checkpoint(folder / "model", "class", "ddpm")
    files = {name: folder / f"{name}.npz" for name in ("cfg", "heun", "toy")}
    common = ["--checkpoint", checkpoint, "--classes", "0-3"]
    cli_ok("sample", "mnist", *common, "--steps", 6, "--out", files["cfg"])
    cli_ok("sample", "mnist", *common, "--steps", 3, "--sampler", "heun", "--out", files["heun"])
    cli_ok("sample", "toy2d", "--exact", "8-gaussians", "--num", 400, "--steps", 8, "--out", files["toy"])
    return files
