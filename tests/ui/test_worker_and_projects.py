"""The inference worker across projects and models: embeddings never cross projects,
a model that failed to encode does not block the next one, a closed project is not
encoded further, a full cache disk is reported, and a new model is not steered by the old
model's logits. Each test failed before the fix (found by review)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ui.conftest import make_scene, open_folder
from ui.fakes import FakeSegmenter


def _folder(root: Path, name: str, seeds) -> Path:  # noqa: ANN001
    f = root / name
    f.mkdir()
    for i, s in enumerate(seeds):
        Image.fromarray(make_scene(s)).save(f / f"img_{i}.png")
    return f


def test_a_second_project_never_gets_the_first_projects_embedding(
    qtbot, window, fake, tmp_path
) -> None:  # noqa: ANN001
    """Image ids restart at 1 in every project: project B's image 1 must be encoded from
    its own pixels, not answered with project A's image 1."""
    win = window
    a = _folder(tmp_path, "a", [1, 2])
    b = _folder(tmp_path, "b", [50, 60])  # different pictures
    open_folder(qtbot, win, a)
    id_a = win.annotator.image_id
    emb_a = win.worker.embedding_for(id_a)
    open_folder(qtbot, win, b)
    id_b = win.annotator.image_id
    assert id_a == id_b  # the situation that went wrong
    emb_b = win.worker.embedding_for(id_b)
    img_b = np.asarray(Image.open(b / "img_0.png").convert("RGB"))
    assert emb_b is not emb_a
    assert abs(float(emb_b.features.mean()) - float(img_b.mean())) < 1e-3


def test_masks_of_the_second_project_have_its_own_image_size(
    qtbot, window, fake, tmp_path, dialogs
) -> None:  # noqa: ANN001
    win = window
    a = _folder(tmp_path, "a", [1])
    b = tmp_path / "b"
    b.mkdir()
    Image.fromarray(make_scene(7, size=(480, 640))).save(b / "big.png")
    open_folder(qtbot, win, a)
    open_folder(qtbot, win, b)
    with qtbot.waitSignal(win.annotator.candidates_arrived, timeout=10000):
        win.annotator.add_point(100, 100, True)
    cand = win.annotator.chosen_candidate
    assert cand.mask.shape == win.annotator.image_rgb.shape[:2] == (480, 640)
    assert win.annotator.accept() is not None and dialogs == []


def test_a_model_that_cannot_encode_does_not_block_the_next_model(
    qtbot, window, image_folder
) -> None:  # noqa: ANN001
    win = window

    class BadEncoder(FakeSegmenter):
        def encode(self, image):  # noqa: ANN001, ANN202
            raise RuntimeError("ONNX input shape mismatch")

    bad = BadEncoder(model_id="bad")
    with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
        win.load_model(lambda: bad, "bad")
    with qtbot.waitSignal(
        win.annotator.embedding_state, check_params_cb=lambda s: s == "failed", timeout=15000
    ):
        win.open_path(image_folder)
    good = FakeSegmenter(model_id="good")
    with qtbot.waitSignal(win.annotator.embedding_ready, timeout=10000):
        win.load_model(lambda: good, "good")
    assert win.annotator.embedding_is_ready and good.encoded


def test_a_closed_project_is_not_encoded_further(qtbot, window, fake, tmp_path) -> None:  # noqa: ANN001
    win = window
    fake.encode_seconds = 0.3
    a = _folder(tmp_path, "a", [1, 2, 3, 4])
    open_folder(qtbot, win, a)
    win._close_project()  # what File > Open does first
    assert win.project is None
    qtbot.waitUntil(lambda: win.worker.busy_with == "", timeout=5000)  # an encode in flight ends
    fake.encoded.clear()
    qtbot.wait(1200)  # the old code went on prefetching the closed project's images
    assert fake.encoded == []


def test_a_full_cache_disk_is_reported_once_in_the_status_bar(
    qtbot, settings, dialogs, fake, image_folder
) -> None:  # noqa: ANN001
    from samstudio.ui.main_window import MainWindow

    class FullDisk:
        def get(self, *a):  # noqa: ANN002, ANN202
            return None

        def put(self, key, emb):  # noqa: ANN001, ANN202
            raise OSError(28, "No space left on device", "/home/u/.cache/samstudio/emb/ab.npz")

    win = MainWindow(settings=settings, disk_cache=FullDisk())
    qtbot.addWidget(win)
    win.show()
    try:
        with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
            win.load_model(lambda: fake, "fake")
        seen: list[str] = []
        win.statusBar().messageChanged.connect(seen.append)
        open_folder(qtbot, win, image_folder)
        qtbot.waitUntil(lambda: any("cache not written" in m for m in seen), timeout=5000)
        message = next(m for m in seen if "cache not written" in m)
        assert "No space left on device" in message and "ab.npz" in message
        assert sum("cache not written" in m for m in seen) == 1  # once, not per image
        assert dialogs == []  # annotation goes on
    finally:
        win.shutdown()


def test_a_new_model_is_not_steered_by_the_old_models_logits(
    qtbot, window, fake, image_folder
) -> None:  # noqa: ANN001
    win = window
    open_folder(qtbot, win, image_folder)
    with qtbot.waitSignal(win.annotator.candidates_arrived, timeout=10000):
        win.annotator.add_point(100, 100, True)
    assert win.annotator.previous_logits is not None
    other = FakeSegmenter(model_id="other")
    with qtbot.waitSignal(win.annotator.candidates_arrived, timeout=10000):
        win.load_model(lambda: other, "other")
    assert other.decoded[-1].mask_input is None
