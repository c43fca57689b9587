"""Start the SAM Studio window: `python main.py [FOLDER_OR_PROJECT]`.

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
    window = MainWindow(load_default_model=True)
    window.show()
    if len(argv) > 1:
        QTimer.singleShot(0, lambda: window.open_path(argv[1]))
    code = int(app.exec())
    if window.worker.isRunning():
        # An encoder pass cannot be interrupted and may take a minute on a CPU. Every
        # change is already committed to the store (closed by the window), so leave
        # without waiting for it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
