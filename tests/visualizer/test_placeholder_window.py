"""The placeholder window until the Visualizer issue: it opens, names the models, reports files."""

from core.bundled import BUNDLED_NAMES
from core.checkpoints import load_checkpoint
from core.frames import Trajectory
from core.mnist_sampling import sample_mnist
from core.trajectory_file import save_trajectory
from visualizer.app import MainWindow
from visualizer.launcher import main as launcher_main


def test_window_shows_the_bundled_models(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.windowTitle() == "diffusion-stepper"
    text = window.message.text()
    for name in BUNDLED_NAMES:
        assert name in text


def test_opening_files_reports_in_the_status_bar(qtbot, tmp_path, tiny_checkpoints):
    window = MainWindow()
    qtbot.addWidget(window)
    run = sample_mnist(load_checkpoint(tiny_checkpoints["class-ddpm"]), steps=3)
    path = save_trajectory(Trajectory(run.meta, list(run.frames), run.labels), tmp_path / "run.npz")
    window.open_trajectory(str(path))
    assert window.statusBar().currentMessage().startswith(f"Opened {path}: 4 frames, ddpm+cfg")
    bad = tmp_path / "bad.npz"
    bad.write_text("hello")
    window.open_trajectory(str(bad))
    assert "not a readable trajectory file" in window.statusBar().currentMessage()
    assert window.message.text()


def test_launcher_sends_commands_to_the_cli(capsys):
    assert launcher_main(["models"]) == 0
    assert "mnist-class-ddpm" in capsys.readouterr().out


def test_launcher_without_a_display_says_what_to_do(monkeypatch, capsys):
    monkeypatch.setattr("sys.platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert launcher_main([]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no display" in err
