"""The GUI soak test's driver ("monkey"): the real app in a real X window, random lecture actions.

It starts Xvfb at the given size with a window manager (openbox), runs the app as a user would
(`python -m diffusion_stepper.visualizer`, its own HOME so that settings, runs and exports stay in
a temporary folder), and sends it keys and window changes through the X server with xdotool, the
way a lecturer's keyboard would: Generate, Sweep γ, sampler races, the trade-off dialog,
presentation mode on and off, tab switches, stepping and playing, Cancel, removing runs and undo,
exports through their dialogs, the 2D lab, training started and stopped, resizes and maximising.

A seed fixes the sequence of actions and pauses, so a failure can be replayed. Every second it
reads the app's resident memory; at the end it quits the app with Ctrl+Q, which must exit cleanly.
`run_soak` returns a `SoakReport`: actions, minutes, whether the app crashed (and how), peak
memory, and the unexpected errors the app logged.

Used by tests/soak/test_gui_soak.py (a few minutes, in CI) and bench/gui_soak.py (an hour).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

NEEDED_PROGRAMS = ("Xvfb", "openbox", "xdotool")
START_TIMEOUT_S = 120.0
QUIT_TIMEOUT_S = 60.0
QUESTION_WAIT_S = 3.0  # after Ctrl+Q, how long before answering the question asked while training runs


def missing_programs() -> str | None:
    """Why the soak test cannot run here, or None."""
    missing = [program for program in NEEDED_PROGRAMS if shutil.which(program) is None]
    if missing:
        return f"the GUI soak test needs {', '.join(missing)} (Debian: xvfb openbox xdotool; .ci/run installs them)"
    return None


@dataclass
class SoakReport:
    seed: int
    size: str
    seconds: float = 0.0
    actions: Counter = field(default_factory=Counter)
    crashed: bool = False
    exit_code: int | None = None
    how: str = ""  # what went wrong, in one line
    peak_rss_mb: float = 0.0
    memory_rises: Counter = field(default_factory=Counter)  # MB the resident memory rose after each kind of action
    logged_errors: list[str] = field(default_factory=list)
    app_log_tail: str = ""

    @property
    def total_actions(self) -> int:
        return sum(self.actions.values())

    def summary(self) -> str:
        status = f"CRASHED ({self.how})" if self.crashed else "no crash"
        rises = ", ".join(f"{name} +{mb:.0f} MB" for name, mb in self.memory_rises.most_common(3))
        return (
            f"seed {self.seed}, {self.size}: {self.total_actions} actions in {self.seconds / 60:.1f} min, {status}, "
            f"peak memory {self.peak_rss_mb:.0f} MB (largest rises after: {rises or 'none'}), "
            f"unexpected errors logged: {len(self.logged_errors)}"
        )


def resident_mb(pid: int) -> float:
    """The process's resident memory (VmRSS) in MB, 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _Display:
    """Xvfb and openbox on a free display number; `env` for programs to run on it."""

    def __init__(self, size: str):
        number = next(n for n in range(140, 400) if not Path(f"/tmp/.X11-unix/X{n}").exists())
        self.name = f":{number}"
        self.xvfb = subprocess.Popen(
            ["Xvfb", self.name, "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if time.monotonic() > deadline or self.xvfb.poll() is not None:
                raise RuntimeError(f"Xvfb did not start on {self.name}")
            time.sleep(0.1)
        self.env = {**os.environ, "DISPLAY": self.name}
        self.window_manager = subprocess.Popen(
            ["openbox"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(0.5)

    def xdotool(self, *args: str, timeout: float = 10.0) -> str:
        try:
            done = subprocess.run(
                ["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return ""
        return done.stdout.strip()

    def close(self) -> None:
        for process in (self.window_manager, self.xvfb):
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()


class Monkey:
    """Random lecture actions on the app's window, drawn from a seeded generator."""

    def __init__(self, display: _Display, window: str, rng: random.Random, folder: Path, width: int, height: int):
        self.display, self.window, self.rng, self.folder = display, window, rng, folder
        self.width, self.height = width, height
        self.exports = 0
        # (name, weight, action): the weights make a lecture's mix, sampling and stepping first
        self.actions: list[tuple[str, float, Callable[[], None]]] = [
            ("generate", 10, lambda: self.key("Return")),
            ("sweep γ", 5, lambda: self.key("ctrl+g")),
            ("sampler race", 4, lambda: self.key(self.rng.choice(["alt+7", "alt+8"]))),
            ("experiment", 2, lambda: self.key(self.rng.choice(["alt+1", "alt+2", "alt+3", "alt+4", "alt+5"]))),
            ("trade-off dialog", 1.5, self.tradeoff_dialog),
            ("presentation", 5, lambda: self.key(self.rng.choice(["F5", "F11"]))),
            ("escape", 6, lambda: self.key("Escape")),
            ("tab", 6, lambda: self.key(self.rng.choice(["ctrl+1", "ctrl+2", "ctrl+3"]))),
            ("step", 10, self.step_keys),
            ("play", 3, lambda: self.key("space")),
            ("remove run", 2, lambda: self.key("Delete")),
            ("undo remove", 2, lambda: self.key("ctrl+z")),
            ("export", 2, self.export),
            ("2D lab sample", 3, lambda: self.key("ctrl+shift+Return")),
            ("2D lab experiment", 1, lambda: self.key(f"ctrl+alt+{self.rng.randint(1, 6)}")),
            ("2D lab training", 0.7, lambda: self.key("ctrl+shift+l")),
            ("training start", 0.5, lambda: self.key("ctrl+t")),
            ("training stop", 0.7, lambda: self.key("ctrl+shift+t")),
            ("zoom", 2, lambda: self.key(self.rng.choice(["plus", "minus", "0"]))),
            ("resize", 2, self.resize),
            ("maximise", 1, self.maximise),
            ("shortcut help", 0.5, self.shortcut_help),
        ]

    # --- the X side ---------------------------------------------------------------------------

    def key(self, *keys: str) -> None:
        self.display.xdotool("key", "--clearmodifiers", *keys)

    def active_title(self) -> str:
        return self.display.xdotool("getactivewindow", "getwindowname")

    def back_to_main_window(self) -> None:
        """Close whatever dialog is on top (as a lecturer would with Esc), then focus the window."""
        for _ in range(4):
            if self.display.xdotool("getactivewindow") == self.window:
                break
            self.key("Escape")
            time.sleep(0.3)
        self.display.xdotool("windowactivate", "--sync", self.window, timeout=5)

    def pause(self, low: float = 0.2, high: float = 2.5) -> None:
        time.sleep(self.rng.uniform(low, high))

    # --- compound actions -----------------------------------------------------------------------

    def step_keys(self) -> None:
        for _ in range(self.rng.randint(1, 6)):
            self.key(self.rng.choice(["Right", "Left", "Home", "End", "Next", "Prior"]))
            time.sleep(self.rng.uniform(0.05, 0.4))

    def tradeoff_dialog(self) -> None:
        self.key("alt+g")
        self.pause(1.0, 2.5)
        if self.rng.random() < 0.5:  # start measuring, then cancel it a little later
            self.key("Return")
            self.pause(2.0, 6.0)
        self.key("Escape")
        self.pause(0.3, 0.8)
        self.back_to_main_window()

    def export(self) -> None:
        """An export through its dialogs, into the soak's folder (or cancelled, as people do)."""
        kind = self.rng.choice(["ctrl+shift+e", "ctrl+alt+e", "ctrl+e", "ctrl+s"])
        suffix = {"ctrl+shift+e": "png", "ctrl+alt+e": "html", "ctrl+e": "gif", "ctrl+s": "npz"}[kind]
        self.key(kind)
        self.pause(1.0, 2.0)
        if kind == "ctrl+e" and "xport" in self.active_title():  # the animation's options: accept them
            self.key("Return")
            self.pause(1.0, 2.0)
        if "ave" in self.active_title() or "xport" in self.active_title():  # a file dialog
            self.exports += 1
            self.key("ctrl+a")
            self.display.xdotool("type", "--delay", "20", str(self.folder / f"export-{self.exports}.{suffix}"))
            self.key("Return")
            self.pause(0.5, 1.5)
        self.back_to_main_window()

    def resize(self) -> None:
        width = self.rng.randint(int(self.width * 0.55), self.width)
        height = self.rng.randint(int(self.height * 0.55), self.height)
        self.display.xdotool("windowsize", self.window, str(width), str(height))
        self.display.xdotool("windowmove", self.window, "0", "0")

    def maximise(self) -> None:
        self.display.xdotool("windowstate", "--toggle", "MAXIMIZED_VERT,MAXIMIZED_HORZ", self.window)

    def shortcut_help(self) -> None:
        self.key("F1")
        self.pause(0.5, 1.5)
        self.key("Return")
        self.back_to_main_window()

    def act(self) -> str:
        names, weights, actions = zip(*self.actions)
        index = self.rng.choices(range(len(actions)), weights=weights)[0]
        actions[index]()
        return names[index]


def _logged_errors(home: Path) -> list[str]:
    """The unexpected errors the app logged, each with its traceback."""
    log = home / "diffusion-stepper-runs" / "logs" / "diffusion-stepper.log"
    if not log.exists():
        return []
    entries: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        if " ERROR " in line or not entries:
            entries.append(line)
        else:
            entries[-1] += "\n" + line
    return entries


def run_soak(
    seconds: float,
    size: str = "1366x768",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    screenshot: Path | None = None,
) -> SoakReport:
    """Drive the app for `seconds` with the actions `seed` draws; the report of what happened.
    `screenshot`: where to save the screen as it is before quitting (needs ImageMagick's import)."""
    width, height = (int(part) for part in size.split("x"))
    report = SoakReport(seed=seed, size=size)
    rng = random.Random(seed)
    display = _Display(size)
    home = Path(tempfile.mkdtemp(prefix="soak-home-"))
    folder = home / "exports"
    folder.mkdir()
    app_log = home / "app.log"
    env = {
        **display.env,
        "HOME": str(home),
        "QT_QPA_PLATFORM": "xcb",
        "PYTHONFAULTHANDLER": "1",
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    with open(app_log, "wb") as log:
        app = subprocess.Popen(
            [sys.executable, "-m", "diffusion_stepper.visualizer"], env=env, cwd=home, stdout=log, stderr=log
        )
    try:
        window = ""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not window and time.monotonic() < deadline and app.poll() is None:
            window = display.xdotool("search", "--onlyvisible", "--pid", str(app.pid)).split("\n")[0]
            time.sleep(0.5)
        if not window:
            report.crashed, report.how = True, "the window never appeared"
            return report
        display.xdotool("windowactivate", "--sync", window, timeout=5)
        monkey = Monkey(display, window, rng, folder, width, height)
        started = last_report = time.monotonic()
        while time.monotonic() - started < seconds and app.poll() is None:
            before = resident_mb(app.pid)
            name = monkey.act()
            report.actions[name] += 1
            monkey.pause()
            now = resident_mb(app.pid)
            report.peak_rss_mb = max(report.peak_rss_mb, now)
            report.memory_rises[name] = max(report.memory_rises[name], now - before)
            if monkey.rng.random() < 0.15:
                monkey.back_to_main_window()
            if progress is not None and time.monotonic() - last_report > 60:
                last_report = time.monotonic()
                progress(
                    f"{(last_report - started) / 60:.0f} min: {report.total_actions} actions, "
                    f"{resident_mb(app.pid):.0f} MB now, peak {report.peak_rss_mb:.0f} MB"
                )
        report.seconds = time.monotonic() - started
        if app.poll() is not None:
            report.crashed, report.exit_code = True, app.returncode
            report.how = _how_it_ended(app.returncode)
            return report
        monkey.back_to_main_window()
        if screenshot is not None and shutil.which("import"):
            subprocess.run(["import", "-window", "root", str(screenshot)], env=display.env, check=False, timeout=30)
        monkey.key("ctrl+q")
        try:
            app.wait(QUESTION_WAIT_S)
        except subprocess.TimeoutExpired:  # training still runs: the app asks first
            monkey.key("alt+s")  # its "&Stop training and quit"
        try:
            app.wait(QUIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            report.crashed, report.how = True, f"Ctrl+Q did not end the app within {QUIT_TIMEOUT_S:.0f} s"
            return report
        report.exit_code = app.returncode
        if app.returncode != 0:
            report.crashed, report.how = True, f"quitting ended with {_how_it_ended(app.returncode)}"
        return report
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        report.logged_errors = _logged_errors(home)
        report.app_log_tail = app_log.read_text(errors="replace")[-4000:]
        display.close()
        shutil.rmtree(home, ignore_errors=True)


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
