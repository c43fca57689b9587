"""Start the SAM Studio window: `python main.py [FOLDER_OR_PROJECT]`.

With no argument it reopens the most recent project, or on a first start the sample
photos that scikit-image ships. `main.py --self-test REPORT.json` checks the
installation instead (`samstudio.ui.self_test`) and exits 0 when it works.
`main.py --study STUDY_FOLDER [--participant NAME]` opens a rating study for one
participant instead (`samstudio.ui.study.launch`).

Nothing heavy is imported here: torch / onnxruntime are imported by the inference
thread when it loads the model, after the window is on screen.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from samstudio.ui.main_window import MainWindow

    argv = sys.argv if argv is None else argv
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("SAM Studio")
    app.setOrganizationName("SAM Studio")
    if any(a == "--study" or a.startswith("--study=") for a in argv[1:]):
        from samstudio.ui.study.launch import run_study

        return run_study(app, argv)
    if "--self-test" in argv[1:]:
        from pathlib import Path

        from samstudio.ui import self_test

        at = argv.index("--self-test", 1)
        if at + 1 >= len(argv):
            print("usage: SAM Studio --self-test REPORT.json", file=sys.stderr)
            return 2
        problem = self_test.report_problem(Path(argv[at + 1]).resolve())
        if problem:
            print(f"SAM Studio --self-test: {problem}", file=sys.stderr)
            return 2
        window, _test = self_test.start(argv[at + 1])
    else:
        window = MainWindow(load_default_model=True)
        window.show()
        start_path = argv[1] if len(argv) > 1 else None
        QTimer.singleShot(0, lambda: window.open_path(start_path or first_start_folder(window)))
    code = int(app.exec())
    if window.worker.isRunning():
        # An encoder pass cannot be interrupted and may take a minute on a CPU. Every
        # change is already committed to the store (closed by the window), so leave
        # without waiting for it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def first_start_folder(window: object) -> str:
    """With no folder given: the most recent project that still exists, else the sample
    photos (scikit-image's, written once into the per-user data folder)."""
    from samstudio.core.samples import ensure_sample_images

    settings = getattr(window, "settings", None)
    for recent in settings.recent_projects if settings is not None else []:
        if os.path.exists(recent):
            return recent
    return str(ensure_sample_images())


if __name__ == "__main__":
    sys.exit(main())
