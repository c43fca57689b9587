"""Opening a rating study: `main.py --study DIR [--participant NAME]` (`run_study`) and
the annotator's menu Study → Rate a study… (`choose_and_open_study`).

From the command line a problem is printed to stderr and, where there is a screen to show
it on, in a dialog too; in a headless run (Qt's offscreen or minimal platform, e.g.
QT_QPA_PLATFORM=offscreen) no dialog is opened, since nobody could close it: the
command exits at once with its code.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QWidget

from samstudio.core.study.model import Study, StudyError, load_study
from samstudio.ui.study.rating_window import RatingWindow, shown_title
from samstudio.ui.study.start_dialog import ask_participant

USAGE = "usage: SAM Studio --study STUDY_FOLDER [--participant NAME]"
HEADLESS_PLATFORMS = ("offscreen", "minimal", "minimalegl")  # Qt platforms without a screen


def has_screen() -> bool:
    """Whether a dialog can be seen and answered: False on Qt's headless platforms
    (`HEADLESS_PLATFORMS`) or with no screen attached."""
    if QGuiApplication.platformName().lower() in HEADLESS_PLATFORMS:
        return False
    return QGuiApplication.primaryScreen() is not None


@dataclass(frozen=True)
class StudyArgs:
    folder: str
    participant: str | None = None


def parse_study_args(args: list[str]) -> StudyArgs:
    """`--study DIR` (or `--study=DIR`) and an optional `--participant NAME` from the
    command line's arguments (without the program's name). Raises ValueError."""
    values: dict[str, str] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=")
        if name not in ("--study", "--participant"):
            raise ValueError(f"unexpected argument {arg!r} with --study")
        if not eq:
            if not rest:
                raise ValueError(f"{name} needs a value")
            value = rest.pop(0)
        values[name] = value
    if not values.get("--study"):
        raise ValueError("--study needs a study folder")
    return StudyArgs(values["--study"], values.get("--participant") or None)


def run_study(app: QApplication, argv: list[str]) -> int:
    """Run a rating session from the command line; the exit code: 0 when the window
    closes (or the participant dialog is cancelled), 1 for a study that cannot be
    opened, 2 for bad arguments (or no --participant where there is no screen to ask
    on). Problems are printed to stderr, and shown in a dialog where there is a screen."""
    try:
        args = parse_study_args(argv[1:])
    except ValueError as exc:
        print(f"SAM Studio: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    study = _load(args.folder, None)
    if study is None:
        return 1
    if not args.participant and not has_screen():
        print(
            f"SAM Studio: --participant NAME is needed without a screen to ask on\n{USAGE}",
            file=sys.stderr,
        )
        return 2
    participant = args.participant or ask_participant(shown_title(study))
    if not participant:
        return 0
    window = _open_window(study, participant, None)
    if window is None:
        return 1
    window.show()
    return int(app.exec())


def choose_and_open_study(parent: QWidget) -> RatingWindow | None:
    """Ask for a study folder and the participant, then open their rating window (a
    window of its own, deleted when closed). None when cancelled or not openable."""
    folder = QFileDialog.getExistingDirectory(parent, "Choose a study folder to rate")
    if not folder:
        return None
    study = _load(folder, parent)
    if study is None:
        return None
    participant = ask_participant(shown_title(study), parent)
    if not participant:
        return None
    window = _open_window(study, participant, parent)
    if window is not None:
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.show()
    return window


def _load(folder: str, parent: QWidget | None) -> Study | None:
    try:
        return load_study(folder)
    except StudyError as exc:
        _report(f"Cannot open the study in {folder}:\n{exc}", parent)
        return None


def _open_window(study: Study, participant: str, parent: QWidget | None) -> RatingWindow | None:
    try:
        return RatingWindow(study, participant, parent)
    except StudyError as exc:
        _report(f"Cannot start rating {study.folder} as {participant!r}:\n{exc}", parent)
        return None


def _report(message: str, parent: QWidget | None) -> None:
    """From the command line (no `parent`): to stderr, and in a dialog if there is a
    screen to show it on; from the menu: in a dialog."""
    if parent is None:
        print(f"SAM Studio: {message}", file=sys.stderr)
        if not has_screen():
            return  # headless: a modal dialog would wait for ever
    QMessageBox.critical(parent, "Cannot open the study", message)
