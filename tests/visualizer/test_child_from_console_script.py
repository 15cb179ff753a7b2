"""A training child started from the installed console script.

The `diffusion-stepper` console script is a Python file with no `.py` suffix; a spawned child
re-runs it as `__mp_main__` before it unpickles its job. Pytest and `python bench/...` start from
other mains, so this runs a file shaped like the console script in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """\
    import json
    import sys
    from functools import partial

    from diffusion_stepper.core.toy2d.checkpoints import train_and_save_toy2d
    from diffusion_stepper.core.toy2d.training import Toy2DConfig

    def main(out_dir):
        from PySide6.QtCore import QCoreApplication, QTimer

        from diffusion_stepper.visualizer.child_worker import ChildJob

        app = QCoreApplication([])
        config = Toy2DConfig(iterations=40, batch_size=64, hidden=16, depth=1, log_every=10)
        job = ChildJob(partial(train_and_save_toy2d, config, out_dir))
        seen = {"items": [], "outcome": None}
        job.item.connect(lambda item: seen["items"].append(type(item).__name__))
        job.finished.connect(lambda *args: (seen.update(outcome="finished"), app.quit()))
        job.failed.connect(lambda message: (seen.update(outcome="failed: " + message), app.quit()))
        QTimer.singleShot(60_000, app.quit)  # a hung child ends the test, not the suite
        job.start()
        app.exec()
        print(json.dumps(seen))

    if __name__ == "__main__":
        main(sys.argv[1])
    """
)


def test_a_child_job_runs_when_the_app_was_started_by_a_console_script(tmp_path):
    script = tmp_path / "diffusion-stepper"  # no suffix, as pip writes it
    script.write_text(SCRIPT)
    out_dir = tmp_path / "toy"
    result = subprocess.run(
        [sys.executable, str(script), str(out_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["outcome"] == "finished", seen
    assert seen["items"][-1] == "Toy2DSaved" and "Toy2DLoss" in seen["items"]
    assert list(out_dir.glob("*.json")), "the child saved nothing"
