"""The window says where the annotator is: the image, its place in the project and how
many images are done, then the project; the model label is short (model and device),
the rest in its tooltip (review of 2026-12-07: the title named only the folder, and the
long model label pushed the review line out of the status bar)."""

from __future__ import annotations

from types import SimpleNamespace

from PySide6.QtCore import Qt

from ui.conftest import open_folder
from ui.helpers import key


def test_title_follows_the_image_and_the_done_count(qtbot, window, image_folder) -> None:  # noqa: ANN001
    win = window
    assert win.windowTitle() == "SAM Studio"
    open_folder(qtbot, win, image_folder)
    project = image_folder.name
    assert win.windowTitle() == f"scene_0.png (1 of 4, 0 done) — {project} — SAM Studio"
    key(qtbot, win, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)  # mark done
    qtbot.waitUntil(lambda: "1 done" in win.windowTitle(), timeout=5000)
    with qtbot.waitSignal(win.annotator.image_opened, timeout=10000):
        key(qtbot, win, Qt.Key.Key_N)
    qtbot.waitUntil(
        lambda: win.windowTitle() == f"scene_1.png (2 of 4, 1 done) — {project} — SAM Studio",
        timeout=5000,
    )


def test_the_model_label_is_short_and_the_tooltip_full() -> None:
    from samstudio.ui.window_status import short_description, window_title

    onnx = SimpleNamespace(
        model_id="samstudio_demo_v1", backend="onnxruntime", device="CPUExecutionProvider"
    )
    assert short_description(onnx) == "samstudio_demo_v1 · cpu"
    cuda = SimpleNamespace(model_id="sam_vit_h", backend="torch", device="cuda:0")
    assert short_description(cuda) == "sam_vit_h · cuda:0"
    assert short_description(None) == "none"
    assert window_title("p", None, "", " (read-only)") == "p (read-only) — SAM Studio"


def test_the_status_bar_label_of_a_loaded_model(window) -> None:  # noqa: ANN001
    text, tip = window.model_label.text(), window.model_label.toolTip()
    info = window.worker.model_info
    assert text == f"Model: {info.model_id} · {info.device}"
    assert info.backend in tip
