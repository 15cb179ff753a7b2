"""The interactive page in a real browser: the slider, the keys and Play show the right step's
pixels and numbers, compared runs move on one slider, and a 2D run shows its particle view."""

import numpy as np
import pytest
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from diffusion_stepper.core.diffusion.equations import frame_caption, step_equation
from diffusion_stepper.core.exports.html_page import PageOptions, write_html_page
from diffusion_stepper.core.formats.palette import css_colour, run_colour
from diffusion_stepper.core.formats.pictures import shown_tiles
from diffusion_stepper.core.formats.trajectory_file import load_trajectory
from diffusion_stepper.core.toy2d.render import ParticleViewOptions, render_particles
from tests.browser.chromium import browser_log, canvas_pixels, drawn_position, open_page, wait_for, wait_until_drawn
from tests.page_reading import grid_picture, page_data

pytestmark = pytest.mark.slow  # a real browser (Chromium), and pages made in processes of their own


def panel_canvas(driver, run: int, panel: str):
    return driver.find_element(By.CSS_SELECTOR, f'canvas[data-run="{run}"][data-panel="{panel}"]')


def expected_grid(trajectory, index: int, name: str, canvas_width: int) -> np.ndarray:
    """Frame `index` of a panel as page.js lays it out in a canvas of that width."""
    tiles = shown_tiles(trajectory, trajectory[index], name)
    columns = (canvas_width - 1) // (tiles.shape[2] + 1)
    return grid_picture(np.concatenate(list(tiles), axis=1), len(tiles), columns)


def assert_shows_frame(driver, trajectory, index: int) -> None:
    """Every image panel holds frame `index`'s exact pixels, and the side panel its equation."""
    for name in ("x_t", "x0_hat", "eps_hat", "eps_cond"):
        canvas = panel_canvas(driver, 0, name)
        shown = canvas_pixels(driver, canvas)
        assert np.array_equal(shown, expected_grid(trajectory, index, name, shown.shape[1])), (name, index)
    equation = driver.find_element(By.ID, "equation").text
    assert equation == "\n".join(step_equation(trajectory.run_meta, trajectory[index], trajectory.frames))
    assert driver.find_element(By.ID, "caption").text == frame_caption(trajectory.run_meta, trajectory[index], 7)


def test_the_slider_keys_and_play_show_each_steps_pixels_and_equation(chromium, run_files, tmp_path):
    trajectory = load_trajectory(run_files["cfg"])
    page = write_html_page([("cfg run", trajectory)], tmp_path / "cfg.html")
    open_page(chromium, page)
    assert drawn_position(chromium) == 0
    assert_shows_frame(chromium, trajectory, 0)
    x_t = panel_canvas(chromium, 0, "x_t")
    assert x_t.size["width"] >= 4 * int(x_t.get_attribute("width"))  # zoomed to fill the window, crisp
    assert x_t.value_of_css_property("image-rendering") == "pixelated"

    # a click two thirds along the slider's track moves it there
    slider = chromium.find_element(By.ID, "slider")
    ActionChains(chromium).move_to_element_with_offset(slider, slider.size["width"] // 6, 0).click().perform()
    wait_for(chromium, lambda: drawn_position(chromium) not in (None, 0))
    position = drawn_position(chromium)
    assert position == int(slider.get_attribute("value")) and 3 <= position <= 5
    assert_shows_frame(chromium, trajectory, position)

    body = chromium.find_element(By.TAG_NAME, "body")
    for keys, expected in ((Keys.END, 6), (Keys.ARROW_LEFT, 5), (Keys.HOME, 0), (Keys.ARROW_RIGHT, 1)):
        body.send_keys(keys)
        wait_until_drawn(chromium, expected)
    assert_shows_frame(chromium, trajectory, 1)
    assert chromium.find_element(By.ID, "position").text == "step 1/6"

    chromium.find_element(By.ID, "play").click()  # plays to the end at 10 fps, then stops
    wait_until_drawn(chromium, 6)
    wait_for(chromium, lambda: chromium.find_element(By.ID, "play").text == "▶")
    assert_shows_frame(chromium, trajectory, 6)
    settings = chromium.find_element(By.ID, "settings").text
    assert "γ (guidance scale) 5" in settings and "seed 0" in settings and "steps 6" in settings
    screenshot = tmp_path / "page.png"
    chromium.save_screenshot(str(screenshot))
    with Image.open(screenshot) as image:
        assert image.width >= 1500 and np.asarray(image.convert("L")).std() > 10
    assert not [entry for entry in browser_log(chromium) if entry.get("level") == "SEVERE"]


def test_compared_runs_move_on_one_slider_aligned_by_time_or_nfe(chromium, run_files, tmp_path):
    runs = [load_trajectory(run_files[name]) for name in ("cfg", "heun")]
    page = write_html_page([("ddpm", runs[0]), ("heun", runs[1])], tmp_path / "two.html")
    timelines = page_data(page)["timelines"]
    open_page(chromium, page)

    def assert_position(position: int, align: str) -> None:
        wait_until_drawn(chromium, position)
        for run, trajectory in enumerate(runs):
            index = timelines[align][position][run]
            shown = canvas_pixels(chromium, panel_canvas(chromium, run, "x_t"))
            assert np.array_equal(shown, expected_grid(trajectory, index, "x_t", shown.shape[1])), (align, run)
            caption = chromium.find_elements(By.CSS_SELECTOR, ".row-title .caption")[run].text
            assert caption == frame_caption(trajectory.run_meta, trajectory[index], len(trajectory))

    body = chromium.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT * 3)
    assert_position(3, "time")
    Select(chromium.find_element(By.ID, "align")).select_by_value("nfe")
    body.send_keys(Keys.END)
    assert_position(len(timelines["nfe"]) - 1, "nfe")
    # where aligning by model evaluations pairs other frames than aligning by time (Heun spends two a step)
    differing = next(p for p, shown in enumerate(timelines["nfe"]) if shown not in timelines["time"])
    body.send_keys(Keys.HOME, Keys.ARROW_RIGHT * differing)
    assert_position(differing, "nfe")
    assert chromium.find_element(By.ID, "race-box").is_displayed()


def test_a_2d_page_shows_the_particle_view_of_each_step(chromium, run_files, tmp_path):
    trajectory = load_trajectory(run_files["toy"])
    view = ParticleViewOptions(size=480)
    page = write_html_page([("toy", trajectory)], tmp_path / "toy.html", PageOptions(particle_view=view))
    open_page(chromium, page)
    chromium.find_element(By.TAG_NAME, "body").send_keys(Keys.END)
    wait_until_drawn(chromium, 8)
    shown = canvas_pixels(chromium, panel_canvas(chromium, 0, "particles"))
    assert np.array_equal(shown, grid_picture(render_particles(trajectory, 8, view), 1, 1))
    assert chromium.find_element(By.ID, "values-heading").text.lower() == "particle coordinates"


def test_a_race_page_shows_every_run_in_the_same_grid_and_the_apps_colours(chromium, tmp_path):
    """Issue 30 §4: the first run of a race was a 1×10 strip and the others 2×5 (its row also holds
    the panels' titles), and the runs' colours were the page's own, not the app's."""
    from tests.browser.conftest import cli_ok
    from tests.conftest import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "model", "class", "ddpm")
    runs = []
    for sampler in ("ddpm", "ddim", "heun", "euler", "dpm++2m", "dpm++2m-sde"):
        path = tmp_path / f"{sampler}.npz"
        cli_ok(
            "sample",
            "mnist",
            "--checkpoint",
            checkpoint,
            "--classes",
            "0-9",
            "--steps",
            2,
            "--sampler",
            sampler,
            "--out",
            path,
        )
        runs.append((sampler, load_trajectory(path)))
    page = write_html_page(runs, tmp_path / "race.html")
    colours = page_data(page)["colours"]["runs"]
    try:
        for width, height in ((1366, 768), (1920, 1080), (1280, 720), (1600, 1000)):
            chromium.set_window_size(width, height)
            open_page(chromium, page)
            for name in ("x_t", "x0_hat"):
                sizes = {
                    tuple(canvas_pixels(chromium, panel_canvas(chromium, run, name)).shape) for run in range(len(runs))
                }
                assert len(sizes) == 1, (width, height, name, sizes)
        titles = chromium.find_elements(By.CSS_SELECTOR, ".row-title")
        shown = [chromium.execute_script("return getComputedStyle(arguments[0]).color", title) for title in titles]
        assert shown == ["rgb({}, {}, {})".format(*run_colour(k)) for k in range(len(runs))]
        assert colours[: len(runs)] == [css_colour(run_colour(k)) for k in range(len(runs))]
    finally:
        chromium.set_window_size(1600, 1000)
