"""Running a command of the CLI inside the test's process, as the tests of several commands do."""

from diffusion_stepper.core import cli


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `diffusion-stepper ARGV`; argparse's usage errors included."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
