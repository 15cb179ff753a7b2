"""Interactive pages (issue 19): how large and how quick, against baselines in the same run.

    python bench/html_page.py [--steps 50,300]

Samples the default MNIST run (the bundled class DDPM model, digits 0–9, 50 steps: 51 frames with
CFG's three extras) and a 300-step run of it (301 frames; `--steps` sets both counts), then for each:
  size    the page as built (pictures stored whole or as lossless differences, whichever is
          smaller) against the same page with every picture whole (the baseline); goal for the
          default run: <= 2 MB
  time    seconds to build the page, against exporting the same frames as a GIF (side by side, 4x)
and for the 301-frame run the page of every 3rd frame that the CLI and the app offer. Where
Chromium is installed (tests/browser), each page is then opened headless at 1600×1000 and scrubbed
through every position with the slider, each drawn before the next: seconds to open, and positions
drawn per second (the first pass decodes each picture; a second pass finds most in the cache).
Prints rows for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import date
from functools import partial
from pathlib import Path

import torch

from diffusion_stepper.core import cli
from diffusion_stepper.core.exports import html_page
from diffusion_stepper.core.exports.animation import write_animation
from diffusion_stepper.core.formats.trajectory_file import load_trajectory


def timed(work) -> tuple[float, int]:
    """(seconds, bytes written) of work(), which returns the path it wrote."""
    started = time.perf_counter()
    path = work()
    return time.perf_counter() - started, Path(path).stat().st_size


SCRUB = """
const done = arguments[arguments.length - 1];
const slider = document.getElementById("slider");
const last = Number(slider.max);
const started = performance.now();
let position = 0;
function next() {
  if (position > last) return done((last + 1) / ((performance.now() - started) / 1000));
  slider.value = String(position);
  slider.dispatchEvent(new Event("input"));
  const wanted = String(position);
  (function wait() {
    if (document.body.dataset.drawn === wanted) { position += 1; next(); } else { requestAnimationFrame(wait); }
  })();
}
next();
"""


def browser_figures(pages: list[Path]) -> list[str]:
    """Per page: seconds to open, and positions per second scrubbed twice through (first, second)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.browser
    from tests.browser.chromium import missing_browser, open_page, start_chromium

    if missing_browser():
        return [f"not measured: {missing_browser()}"] * len(pages)
    driver = start_chromium(1600, 1000)
    driver.set_script_timeout(600)
    rows = []
    try:
        for page in pages:
            started = time.perf_counter()
            open_page(driver, page, timeout=120)
            opened = time.perf_counter() - started
            first, second = (driver.execute_async_script(SCRUB) for _ in range(2))
            rows.append(f"opens in {opened:.1f} s, scrubs at {first:.0f} / {second:.0f} positions/s")
    finally:
        driver.quit()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="50,300", help="steps of the default run and of the long run")
    args = parser.parse_args()
    counts = [int(steps) for steps in args.steps.split(",") if steps]
    if len(counts) != 2 or min(counts) < 1:
        parser.error("--steps takes two step counts, e.g. 50,300")
    with tempfile.TemporaryDirectory(prefix="bench-page-") as folder:
        measure(Path(folder), *counts)


def measure(folder: Path, default_steps: int, long_steps: int) -> None:
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    built = html_page.encode_pictures

    def whole(strips, differences=True):  # the baseline: every picture stored whole
        return built(strips, differences=False)

    print(
        "| date | machine | run | frames | page (as built) | page, every picture whole | size ratio | "
        "build | GIF of the same frames | time ratio |"
    )
    kept_pages: list[Path] = []
    for steps, every in ((default_steps, 1), (long_steps, 1), (long_steps, 3)):
        run_file = folder / f"run-{steps}.npz"
        if not run_file.exists():
            assert cli.main(["sample", "mnist", "--steps", str(steps), "--out", str(run_file)]) == 0
        trajectory = load_trajectory(run_file)
        runs = [("run", trajectory)]
        options = html_page.PageOptions(every=every)
        seconds, size = timed(partial(html_page.write_html_page, runs, folder / "page.html", options))
        html_page.encode_pictures = whole
        try:
            _, whole_size = timed(partial(html_page.write_html_page, runs, folder / "whole.html", options))
        finally:
            html_page.encode_pictures = built
        gif_seconds, _ = timed(
            partial(write_animation, trajectory, folder / "run.gif", "side-by-side", every=every, scale=4)
        )
        kept = html_page.kept_frame_count(len(trajectory), every)
        kept_pages.append(folder / f"page-{steps}-{every}.html")
        (folder / "page.html").rename(kept_pages[-1])
        print(
            f"| {date.today()} | {machine} | class DDPM, 10 digits, {steps} steps"
            f"{f', every {every}' if every > 1 else ''} | {kept} | {size / 1e6:.2f} MB | {whole_size / 1e6:.2f} MB | "
            f"{size / whole_size:.2f} | {seconds:.1f} s | {gif_seconds:.1f} s | {seconds / gif_seconds:.2f} |"
        )

    print("In Chromium (headless, 1600×1000), the same pages in order:")
    for page, figures in zip(kept_pages, browser_figures(kept_pages)):
        print(f"- {page.name}: {figures}")


if __name__ == "__main__":
    main()
