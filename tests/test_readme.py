"""The README a newcomer follows: every key it names is one the window binds (and the quick start's
keys do what it says), every link to docs/ and resources/ points at a file that exists, and the
Linux packages it names are those the app checks for."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt starts: the window is built offscreen

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))

# How the README writes a key, where Qt's name differs.
KEY_NAMES = {"←": "Left", "→": "Right", "↑": "Up", "↓": "Down", "Esc": "Escape", "Del": "Delete", "PgDn": "PgDown"}
# The quick start's moves: a key it names, and words of the menu entry that key must trigger.
QUICK_START_KEYS = {
    "Enter": "generate",
    "→": "next frame",
    "←": "previous frame",
    "Space": "play",
    "F5": "presentation",
    "Esc": "leave presentation",
    "Alt+7": "samplers race",
    "Ctrl+2": "compare view",
    "Ctrl+G": "sweep guidance",
    "Alt+G": "guidance trade-off",
    "Ctrl+3": "train view",
    "Ctrl+T": "start training",
    "Ctrl+E": "animation",
    "Ctrl+Alt+E": "interactive page",
}


def section(text: str, title: str) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def keys_named(text: str) -> list[str]:
    return re.findall(r"<kbd>(.+?)</kbd>", text)


def canonical(key: str) -> str:
    """Qt's portable text for a key as the README writes it (Enter is the main Return key)."""
    from PySide6.QtGui import QKeySequence

    parts = [KEY_NAMES.get(part, part) for part in re.split(r"\+(?=.)", key)]
    parts = ["Return" if part == "Enter" else part for part in parts]
    sequence = QKeySequence("+".join(parts), QKeySequence.SequenceFormat.PortableText)
    assert sequence.count() == 1, f"{key!r} is not one key Qt knows"
    return sequence.toString(QKeySequence.SequenceFormat.PortableText)


@pytest.fixture(scope="module")
def bound_keys(qapp, tmp_path_factory) -> dict[str, str]:
    """Every shortcut of the main window, with the text of the entry it triggers."""
    from PySide6.QtCore import QSettings
    from PySide6.QtGui import QKeySequence

    from diffusion_stepper.visualizer.main_window import MainWindow

    settings = tmp_path_factory.mktemp("readme") / "settings.ini"
    window = MainWindow(QSettings(str(settings), QSettings.Format.IniFormat))
    try:
        return {
            shortcut.toString(QKeySequence.SequenceFormat.PortableText): action.text().replace("&", "").lower()
            for action in window.actions()
            for shortcut in action.shortcuts()
        }
    finally:
        window.close()
        window.deleteLater()
        qapp.processEvents()


def test_every_key_the_readme_and_docs_name_is_bound_by_the_window(bound_keys):
    named = {(page.name, key) for page in (README, *DOCS) for key in keys_named(page.read_text())}
    assert len(named) > 40  # the quick start and the table of keys
    unbound = sorted(f"{page}: {key}" for page, key in named if canonical(key) not in bound_keys)
    assert not unbound, f"keys the window does not bind: {unbound}"


def test_the_first_lecture_names_a_key_for_each_move_and_each_does_what_it_says(bound_keys):
    lecture = section(README.read_text(), "Your first lecture in five minutes")
    named = set(keys_named(lecture))
    assert set(QUICK_START_KEYS) <= named, sorted(set(QUICK_START_KEYS) - named)
    for key, words in QUICK_START_KEYS.items():
        assert words in bound_keys[canonical(key)], (key, bound_keys[canonical(key)])
    moves = re.findall(r"^\d+\. \*\*(.+?)\*\*", lecture, re.M)
    expected = ["Launch", "Generate", "Step", "Present", "Race the samplers", "Guidance", "Train"]
    assert moves == [*expected, "Export for slides"], moves


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda page: page.name)
def test_every_link_points_at_a_file_or_heading_that_exists(page):
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", file.read_text(), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}
            assert anchor in slugs, f"{page.name} links to {target}: no such heading"


def test_the_readme_links_the_reference_pages_and_stays_short():
    text = README.read_text()
    linked = {(README.parent / target).resolve() for target in links(README)}
    assert DOCS and all(page.resolve() in linked for page in DOCS), "a docs/ page the README does not link"
    assert len(text.splitlines()) <= 200


def test_ci_runs_the_readmes_test_command_which_is_every_test_and_both_runs_say_how_long_they_take():
    """.ci/run runs the quick start's test command verbatim, and it runs every test (`--all`: CI
    runs the slow ones too); the quick run is named beside it; each with the time it was measured
    to take, in minutes, and on what machine."""
    quick_start = " ".join(section(README.read_text(), "Quick start").split())
    commands = [block.strip() for block in re.findall(r"``` (.*?) ```", quick_start) if "pytest" in block]
    assert commands == ['pip install ".[test]" && python -m pytest --all'], commands
    assert commands[0] in (ROOT / ".ci" / "run").read_text().splitlines(), ".ci/run must run it verbatim"
    whole = re.search(r"runs every test, as CI does \(`\.ci/run`\): ([^.]*\d+ minutes[^.]*2-core[^.]*)\.", quick_start)
    quick = re.search(r"`python -m pytest` is the quick run, ([^:]*\d+ minutes[^:]*2-core[^:]*):", quick_start)
    assert whole and quick, "the README gives the measured time of each run, and the machine"


def test_the_linux_packages_are_those_the_app_checks_for():
    from diffusion_stepper.visualizer.system_libraries import XCB_PLATFORM_LIBRARIES

    text = README.read_text()
    (command,) = [block for block in re.findall(r"```\n(.*?)```", text, re.S) if "apt-get install" in block]
    named = set(command.replace("\\", " ").split()) - {"sudo", "apt-get", "install"}
    assert named == set(XCB_PLATFORM_LIBRARIES.values())


def test_the_default_run_has_the_frames_and_makes_the_page_the_readme_says(tmp_path, capsys):
    """The quick start's Generate (the bundled class model's own 20 steps: 21 frames) and the
    page it makes: "about 0.8 MB" (README, docs/the-app.md), as `export` prints it."""
    from diffusion_stepper.core.formats.trajectory_file import load_trajectory
    from tests.cli_running import run_cli

    run_file, page = tmp_path / "default.npz", tmp_path / "default.html"
    code, _, err = run_cli(capsys, "sample", "mnist", "--out", run_file)
    assert code == 0, err
    trajectory = load_trajectory(run_file)
    assert len(trajectory) == 21 and trajectory[0].x_t.shape[0] == 10
    assert trajectory.meta["params"]["guidance"] == 5
    code, out, err = run_cli(capsys, "export", run_file, "--html", page)
    assert code == 0 and "(0.8 MB" in out, out + err
    assert 0.75e6 <= page.stat().st_size < 0.85e6, page.stat().st_size
    for text in (README.read_text(), (ROOT / "docs" / "the-app.md").read_text()):
        assert "about 0.8 MB" in text and "21 frames" in text
