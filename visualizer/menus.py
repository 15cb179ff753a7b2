"""Every menu entry and keyboard shortcut of the main window, declared as data: one tuple per menu.

An entry says what it does as a function of the window (`run(window)`, or `run(window, checked)`
for a toggle), so the menus read as a table and the shortcut help (F1) lists the same entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu, QMenuBar

from diffusion_stepper.core.deepfloyd_if.experiments import PART_A_EXPERIMENTS
from diffusion_stepper.core.mnist.experiments import EXPERIMENTS, RACE_BUDGETS_IN_MENU
from diffusion_stepper.core.toy2d.experiments import TOY2D_EXPERIMENTS
from diffusion_stepper.visualizer.dialogs.quality_dialog import open_quality_dialog
from diffusion_stepper.visualizer.dialogs.shortcuts_dialog import ShortcutsDialog
from diffusion_stepper.visualizer.dialogs.tradeoff_dialog import open_tradeoff_dialog
from diffusion_stepper.visualizer.views.common import NOISE
from diffusion_stepper.visualizer.views.step_view import EQUATION, EXTRAS, HISTOGRAM, SCHEDULE
from diffusion_stepper.visualizer.widgets.panels import FIT

STEP_TAB, COMPARE_TAB, TRAIN_TAB = 0, 1, 2


@dataclass(frozen=True)
class Entry:
    text: str
    run: Callable
    shortcuts: tuple[str, ...] = ()
    toggle: str | None = None  # a checkable entry, kept in window.toggles under this key
    checked: bool = False


@dataclass(frozen=True)
class Menu:
    title: str
    entries: tuple[Entry | Menu | None, ...]  # None: a separator


SEPARATOR = None

FILE = Menu(
    "&File",
    (
        Entry("&Open trajectory…", lambda w: w.files.ask_open(), ("Ctrl+O",)),
        Entry("&Save trajectory…", lambda w: w.files.ask_save(), ("Ctrl+S",)),
        Entry("Add &checkpoint…", lambda w: w.files.ask_add_checkpoint()),
        SEPARATOR,
        Menu(
            "&Export",
            (
                Entry("&Animation (GIF/MP4)…", lambda w: w.exports.ask_animation(), ("Ctrl+E",)),
                Entry("Contact &sheet (PNG)…", lambda w: w.exports.ask_contact_sheet(), ("Ctrl+Shift+E",)),
                Entry("The anagram &turn (GIF/MP4)…", lambda w: w.exports.ask_anagram_turn()),
                Entry("Interactive &page (HTML)…", lambda w: w.exports.ask_html_page(), ("Ctrl+Alt+E",)),
            ),
        ),
        SEPARATOR,
        Entry("&Quit", lambda w: w.close(), ("Ctrl+Q",)),
    ),
)

EDIT = Menu(
    "&Edit",
    (
        Entry("&Undo remove run", lambda w: w.undo_remove_run(), ("Ctrl+Z",)),
        Entry("&Remove run", lambda w: w.remove_active_run(), ("Delete",)),
    ),
)

RUN = Menu(
    "&Run",
    (
        Entry("&Generate (or the focused dock's run)", lambda w: run_focused_dock(w), ("Return", "Enter")),
        Entry("&Sweep guidance", lambda w: w.sweep(), ("Ctrl+G",)),
        Entry("&Run DeepFloyd IF", lambda w: w.if_runs.run(), ("Ctrl+R",)),
        Entry("&Branch IF run from this step", lambda w: w.if_runs.branch_from_step(), ("Ctrl+B",)),
        Entry("&Upscale this IF run with stage II", lambda w: w.if_runs.upscale_active_run(), ("Ctrl+U",)),
        Entry("&Judge this run's digits (right digit, FD)", lambda w: w.judging.judge_active(), ("Ctrl+J",)),
        Entry("&Cancel / leave presentation", lambda w: w.escape(), ("Escape",)),
        SEPARATOR,
        Entry("Start &training", lambda w: w.start_training(), ("Ctrl+T",)),
        Entry("&Pause / resume training", lambda w: w.training.toggle_pause(), ("Ctrl+P",)),
        Entry("S&top training", lambda w: w.training.stop(), ("Ctrl+Shift+T",)),
        Entry("&Keep training another minute", lambda w: keep_training(w), ("Ctrl+K",)),
        SEPARATOR,
        Entry("Sample the 2D &lab", lambda w: w.lab2d.sample(), ("Ctrl+Shift+Return",)),
        Entry("Train the 2D lab's &model", lambda w: w.lab2d.train(), ("Ctrl+Shift+L",)),
        Entry("&Draw a 2D distribution…", lambda w: w.lab2d.ask_draw(), ("Ctrl+Shift+D",)),
    ),
)

EXPERIMENTS_MENU = Menu(
    "E&xperiments",
    (
        *(
            Entry(f"{experiment.title}…", lambda w: w.show_epoch_comparison(), (f"Alt+{number}",))
            if experiment.key == "epochs"
            else Entry(experiment.title, lambda w, key=experiment.key: w.run_experiment(key), (f"Alt+{number}",))
            for number, experiment in enumerate(
                (experiment for experiment in EXPERIMENTS.values() if not experiment.race), 1
            )
        ),
        SEPARATOR,
        Menu(
            "&Samplers: the same noise, equal model evaluations",
            (
                *(
                    Entry(
                        f"{EXPERIMENTS[key].title}, {nfe} evaluations each",
                        lambda w, key=key, nfe=nfe: w.run_experiment(key, nfe=nfe),
                        (shortcut,),
                    )
                    for (key, nfe), shortcut in zip(
                        [(key, nfe) for key in ("samplers", "flow-samplers") for nfe in RACE_BUDGETS_IN_MENU],
                        ("Alt+7", "Alt+8", "Alt+9", "Alt+0"),
                    )
                ),
                Entry("Sample quality against NFE (judged)…", open_quality_dialog),
            ),
        ),
        Entry("&Guidance trade-off: right digit, diversity, FD against γ…", open_tradeoff_dialog, ("Alt+G",)),
        Menu(
            "&2D lab (the 2D lab dock's model, or the exact field)",
            tuple(
                Entry(experiment.title, lambda w, key=key: w.lab2d.run_experiment(key), (f"Ctrl+Alt+{number}",))
                for number, (key, experiment) in enumerate(TOY2D_EXPERIMENTS.items(), 1)
            ),
        ),
        Menu(
            "Part &A: DeepFloyd IF (the IF dock's model and image)",
            tuple(
                Entry(experiment.title, lambda w, key=key: w.if_runs.run_experiment(key), (f"Alt+Shift+{number}",))
                for number, (key, experiment) in enumerate(PART_A_EXPERIMENTS.items(), 1)
            ),
        ),
    ),
)

PLAYBACK = Menu(
    "&Playback",
    (
        Entry("&Play / pause", lambda w: w.session.toggle_playing(), ("Space",)),
        Entry("&Next frame", lambda w: w.session.step(1), ("Right",)),
        Entry("&Previous frame", lambda w: w.session.step(-1), ("Left",)),
        Entry("Forward 10", lambda w: w.session.step(10), ("PgDown",)),
        Entry("Back 10", lambda w: w.session.step(-10), ("PgUp",)),
        Entry("&First frame", lambda w: w.session.first(), ("Home",)),
        Entry("&Last frame", lambda w: w.session.last(), ("End",)),
        Entry("Faster", lambda w: w.session.set_fps(w.session.fps * 1.5), ("]",)),
        Entry("Slower", lambda w: w.session.set_fps(w.session.fps / 1.5), ("[",)),
        Entry("L&oop", lambda w: w.session.set_loop(not w.session.loop), ("L",)),
    ),
)

PART_LABELS = {  # the Step view's parts, shown or hidden with the keys 1 to 7
    "x_t": "x_t",
    "x0_hat": "x̂₀ clean estimate",
    NOISE: "ε̂ / v̂ noise estimate",
    EQUATION: "equation",
    HISTOGRAM: "histogram",
    SCHEDULE: "schedule",
    EXTRAS: "the extras (CFG parts, views, mask, …)",
}

VIEW = Menu(
    "&View",
    (
        *(
            Entry(
                f"Show {label}",
                lambda w, on, key=key: w.step_view.set_part_visible(key, on),
                (str(number),),
                toggle=key,
                checked=True,
            )
            for number, (key, label) in enumerate(PART_LABELS.items(), 1)
        ),
        Entry(
            "See an &anagram through its second view",
            lambda w, on: w.step_view.set_through_second_view(on),
            ("V",),
            toggle="second-view",
        ),
        SEPARATOR,
        Entry("Zoom &in", lambda w: w.change_zoom(+1), ("+", "=")),
        Entry("Zoom &out", lambda w: w.change_zoom(-1), ("-",)),
        Entry("Zoom to &fit", lambda w: w.set_zoom(FIT), ("0",)),
        SEPARATOR,
        Entry("&Step view", lambda w: w.show_tab(STEP_TAB), ("Ctrl+1",)),
        Entry("&Compare view", lambda w: w.show_tab(COMPARE_TAB), ("Ctrl+2",)),
        Entry("&Train view", lambda w: w.show_tab(TRAIN_TAB), ("Ctrl+3",)),
        Entry("&Presentation mode", lambda w, on: w.presentation.set_active(on), ("F5", "F11"), toggle="presentation"),
    ),
)


def run_focused_dock(window) -> None:
    """Enter runs the action of the dock the keyboard is in: the IF dock runs IF, the 2D lab
    samples its particles, the Sample dock generates digits. Elsewhere (a view, the runs list)
    it runs the dock in front: Generate, unless the Sample dock is tabbed behind another."""
    actions = (
        (window.sample_dock, window.generate),
        (window.if_dock, window.if_runs.run),
        (window.lab2d_dock, window.lab2d.sample),
    )
    focus = QApplication.focusWidget()
    for dock, action in actions:
        if focus is not None and dock.isAncestorOf(focus):
            return action()
    # a dock tabbed behind another is "visible" to Qt, but nothing of it is on screen
    shown = [action for dock, action in actions if dock.isVisible() and not dock.visibleRegion().isEmpty()]
    (shown[0] if shown else window.generate)()


def show_shortcuts(window) -> None:
    """Every shortcut of the window in one box, made once and shown again (F1)."""
    box = getattr(window, "shortcuts_box", None)
    if box is None:
        box = ShortcutsDialog(window)
        window.shortcuts_box = box
    box.show_for(window)


HELP = Menu("&Help", (Entry("&Keyboard shortcuts", show_shortcuts, ("F1",)),))

MENUS = (FILE, EDIT, RUN, EXPERIMENTS_MENU, PLAYBACK, VIEW, HELP)


def build_menus(window, menu_bar: QMenuBar) -> dict[str, QAction]:
    """Add MENUS to the window's menu bar; returns the checkable actions by their toggle key."""
    toggles: dict[str, QAction] = {}
    for menu in MENUS:
        _add_entries(window, menu_bar.addMenu(menu.title), menu.entries, toggles)
    return toggles


def _add_entries(window, qmenu: QMenu, entries, toggles: dict[str, QAction]) -> None:
    for entry in entries:
        if entry is SEPARATOR:
            qmenu.addSeparator()
        elif isinstance(entry, Menu):
            _add_entries(window, qmenu.addMenu(entry.title), entry.entries, toggles)
        else:
            action = QAction(entry.text, window)
            action.setShortcuts([QKeySequence(shortcut) for shortcut in entry.shortcuts])
            if entry.toggle is not None:
                action.setCheckable(True)
                action.setChecked(entry.checked)
                action.toggled.connect(lambda on, run=entry.run: run(window, on))
                toggles[entry.toggle] = action
            else:
                action.triggered.connect(lambda _checked=False, run=entry.run: run(window))
            qmenu.addAction(action)
            window.addAction(action)  # shortcuts keep working with the menu bar hidden (presentation)


def keep_training(window) -> None:
    """Ctrl+K: the Train tab in front, and its run going on for about another minute."""
    window.show_tab(TRAIN_TAB)
    window.train_view.keep_training()
