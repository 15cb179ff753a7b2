"""The GUI soak test: the real app on Xvfb with a window manager, three minutes of random lecture
actions (tests/soak/monkey.py). It must not crash, must quit cleanly on Ctrl+Q, and must log no
unexpected error. The hour-long form with its figures is bench/gui_soak.py."""

from __future__ import annotations

import os

import pytest

from tests.soak.monkey import missing_programs, run_soak

SOAK_SECONDS = float(os.environ.get("DIFFUSION_STEPPER_SOAK_SECONDS", "180"))
SOAK_SEED = int(os.environ.get("DIFFUSION_STEPPER_SOAK_SEED", "2026"))


@pytest.mark.slow
@pytest.mark.soak
def test_three_minutes_of_a_lecture_at_1366x768_without_a_crash():
    reason = missing_programs()
    if reason:
        pytest.skip(reason)
    report = run_soak(SOAK_SECONDS, "1366x768", seed=SOAK_SEED)
    print(report.summary())
    detail = "\n".join(
        [report.summary(), "the app's output:", report.app_log_tail, "its error log:", *report.logged_errors]
    )
    assert not report.crashed, detail
    assert report.total_actions >= SOAK_SECONDS / 4, detail  # it really drove the app
    assert not report.logged_errors, detail
