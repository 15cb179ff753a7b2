"""The error log: unexpected exceptions with their tracebacks in the work folder, named by --help."""

from __future__ import annotations

from diffusion_stepper.core import cli
from diffusion_stepper.core.logs import LOG_BYTES, log_file, log_unexpected


def test_an_unexpected_exception_is_logged_with_its_traceback_and_the_log_rotates(tmp_path, monkeypatch):
    monkeypatch.setattr("diffusion_stepper.core.paths.WORK_FOLDER", tmp_path)
    try:
        {}["missing key"]
    except KeyError as exc:
        path = log_unexpected(exc, "a job failed: KeyError")
    assert path == tmp_path / "logs" / "diffusion-stepper.log" == log_file()
    text = path.read_text()
    assert "a job failed: KeyError" in text and "Traceback (most recent call last)" in text and "missing key" in text
    for number in range(LOG_BYTES // 200):  # past one file's size: it rotates, keeping old ones
        log_unexpected(ValueError("x" * 300), f"failure {number}")
    assert path.with_name("diffusion-stepper.log.1").exists() and path.stat().st_size <= LOG_BYTES


def test_an_unwritable_work_folder_does_not_turn_one_error_into_two(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setattr("diffusion_stepper.core.paths.WORK_FOLDER", blocker)
    assert log_unexpected(RuntimeError("boom"), "a job failed") is None


def test_help_names_the_log_file():
    assert str(log_file()) in "".join(cli.build_parser().format_help().split())  # however it wraps
