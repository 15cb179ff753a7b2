"""Screenshots of interactive pages made from real runs, as a student sees them in Chromium:
`python -m tests.browser.page_screenshots [OUT_DIR]` (default resources/screenshots) writes
page-mnist.png (the default MNIST run, 50 steps), page-compared.png (a sampler race) and page-2d.png
(the exact field of 8 Gaussians) at 1920×1080 and 1366×768, and the pages beside them in a temporary
folder. It samples with the bundled models, so it takes a minute on a laptop CPU."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from diffusion_stepper.core import cli
from diffusion_stepper.core.formats.trajectory_file import load_trajectory
from diffusion_stepper.core.run_names import default_run_name
from tests.browser.chromium import missing_browser, open_page, start_chromium, wait_until_drawn

SIZES = ((1920, 1080), (1366, 768))
RACE = ("samplers-ddpm", "samplers-ddim-eta0", "samplers-dpm++2m-sde", "samplers-heun")


def make_pages(folder: Path) -> dict[str, tuple[Path, int]]:
    """Each page and the slider position its screenshot shows."""
    from diffusion_stepper.core.exports.html_page import write_html_page

    def sample(*argv) -> None:
        assert cli.main([str(a) for a in argv]) == 0

    sample("sample", "mnist", "--steps", 50, "--out", folder / "mnist.npz")
    sample("experiment", "mnist", "samplers", "--out-dir", folder / "race")
    sample("sample", "toy2d", "--exact", "8-gaussians", "--steps", 50, "--out", folder / "toy.npz")
    mnist = load_trajectory(folder / "mnist.npz")
    race = [load_trajectory(folder / "race" / f"{name}.npz") for name in RACE]
    toy = load_trajectory(folder / "toy.npz")
    return {
        "page-mnist": (write_html_page([(default_run_name(mnist.run_meta), mnist)], folder / "mnist.html"), 30),
        "page-compared": (write_html_page([(default_run_name(t.run_meta), t) for t in race], folder / "race.html"), 6),
        "page-2d": (write_html_page([(default_run_name(toy.run_meta), toy)], folder / "toy.html"), 38),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", nargs="?", default="resources/screenshots")
    args = parser.parse_args(argv)
    reason = missing_browser()
    if reason:
        print(f"cannot take the screenshots: {reason}", file=sys.stderr)
        return 1
    pages = make_pages(Path(tempfile.mkdtemp(prefix="pages-")))
    driver = start_chromium()
    try:
        for width, height in SIZES:
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            for name, (page, position) in pages.items():
                open_page(driver, page)
                driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT * position)
                wait_until_drawn(driver, position)
                out = Path(args.out_dir) / f"{width}x{height}" / f"{name}.png"
                out.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(out))
                print(f"wrote {out}")
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
