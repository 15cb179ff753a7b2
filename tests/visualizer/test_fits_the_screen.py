"""The app fits a laptop projector's screen (1366x768) and a smaller one (1280x720): after each
action of a lecture every window of the app lies on the screen; in presentation mode the update
rule shows whole for every bundled model and sampler, the pictures keep their size while
stepping, a 10-digit run shows each digit at 110 px or more, a six-sampler race at 48 px or more
with its timeline on the screen; the Train tab's epoch grid shows digits of 56 px or more with
their class labels above the grid. Measured by tests/visualizer/screen_walk.py, in a process of
its own per screen."""

from __future__ import annotations

import pytest

from tests.visualizer.test_big_pictures import finish, json_lines, start_on_screen

pytestmark = pytest.mark.slow  # the window walked through a lecture, in a process of its own per screen

PROJECTOR, SMALL = (1366, 768), (1280, 720)


@pytest.fixture(scope="module")
def walks(tmp_path_factory) -> dict[tuple[int, int], list[dict]]:
    """Both walks side by side, each in a process (and a folder) of its own."""
    started = {
        screen: start_on_screen(
            tmp_path_factory.mktemp("screens"),
            *screen,
            ["-m", "tests.visualizer.screen_walk"] + ([] if every_sampler else ["--not-every-sampler"]),
        )
        for screen, every_sampler in ((PROJECTOR, True), (SMALL, False))
    }
    return {screen: json_lines(finish(process, timeout_s=600)) for screen, process in started.items()}


def checks(lines: list[dict], kind: str) -> list[dict]:
    return [line for line in lines if line["check"] == kind]


@pytest.mark.parametrize("screen", [PROJECTOR, SMALL], ids=["1366x768", "1280x720"])
def test_every_window_stays_on_the_screen_and_no_caption_covers_a_picture(walks, screen):
    fits = checks(walks[screen], "fits")
    actions = [line["after"] for line in fits]
    for expected in ("launch", "Generate", "presentation mode", "a sampler race in presentation mode", "F1"):
        assert expected in actions  # the walk really went there
    assert any(action.startswith("opening TradeoffDialog") for action in actions)
    offenders = {
        line["after"]: line["outside"] + line["overlaps"] for line in fits if line["outside"] + line["overlaps"]
    }
    assert not offenders, offenders


def test_presentation_shows_every_samplers_update_rule_whole_and_the_pictures_keep_their_size(walks):
    runs = checks(walks[PROJECTOR], "equation")
    # every bundled model was sampled, the DDPM ones with each of their six samplers, clipped or not
    assert len({run["model"] for run in runs}) >= 6 and len(runs) >= 30, [run["model"] for run in runs]
    assert {"Heun (ODE)", "DPM-Solver++(2M) SDE", "DDIM", "Midpoint"} <= {run["sampler"] for run in runs}
    for run in runs:
        where = f"{run['model']} · {run['sampler']} · {run['clip']}"
        assert run["cut_steps"] == [], f"{where}: the update rule is cut at steps {run['cut_steps']}"
        assert len(run["layouts"]) == 1, f"{where}: the pictures changed size while stepping: {run['layouts']}"
        assert min(run["layouts"][0]) >= 110, f"{where}: {run['layouts'][0]}"  # 10 digits, any sampler


def test_a_ten_digit_run_in_presentation_mode_at_1366x768(walks):
    (default,) = checks(walks[PROJECTOR], "step_f5")
    assert default["cut_steps"] == [] and len(default["layouts"]) == 1
    assert len(default["layouts"][0]) == 3 and min(default["layouts"][0]) >= 110  # x_t, x̂₀, ε̂


@pytest.mark.parametrize("screen", [PROJECTOR, SMALL], ids=["1366x768", "1280x720"])
def test_a_six_sampler_race_in_presentation_mode(walks, screen):
    (race,) = checks(walks[screen], "race_f5")
    assert race["runs"] == 6 and race["timeline_on_screen"] and race["plot_shown"] and race["headers_readable"]
    assert race["smallest_digit"] >= (48 if screen == PROJECTOR else 40), race


@pytest.mark.parametrize("screen", [PROJECTOR, SMALL], ids=["1366x768", "1280x720"])
def test_the_train_tabs_epoch_grid_reads(walks, screen):
    (grid,) = checks(walks[screen], "train_grid")
    assert grid["columns"] == 10 and grid["labels"] == 10  # a column per digit, each labelled
    assert grid["labels_above_grid"] and grid["labels_inside_view"]  # the labels cover no digit
    assert grid["digit"] >= 56, grid
