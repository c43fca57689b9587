"""The Model menu with ONNX folders and without PyTorch (the desktop build): an exported
folder is imported and opened from the menu; checkpoints the installation cannot open
are shown, disabled, with what to do instead, rather than offered for download."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QFileDialog, QMenu


def actions(menu: QMenu) -> dict[str, object]:
    """Text -> action of `menu` and its sub-menus (rebuilt as when it is opened)."""
    out: dict[str, object] = {}
    for act in menu.actions():
        if act.menu() is not None:
            out.update(actions(act.menu()))
        elif act.text():
            out[act.text()] = act
    return out


def test_an_onnx_folder_is_imported_and_opened_from_the_menu(
    qtbot, window, monkeypatch, dialogs  # noqa: ANN001
) -> None:
    from samstudio.inference.catalog import shipped_model_dir

    folder = shipped_model_dir() / "onnx"
    if not (folder / "manifest.json").is_file():
        pytest.skip("the demo model's ONNX export is not in this checkout")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    window.model_menu.rebuild()
    act = actions(window.model_menu.menu)["Import an ONNX model folder…"]
    assert act.isEnabled()
    with qtbot.waitSignal(window.worker.model_loaded, timeout=60000) as loaded:
        act.trigger()
    assert not dialogs, dialogs
    info = loaded.args[0]
    assert info.backend == "onnxruntime" and info.model_id.startswith("samstudio_demo_v1")
    window.model_menu.rebuild()
    names = list(actions(window.model_menu.menu))
    assert any(t.startswith("Load onnx (imported") for t in names), names  # registered
    assert window.settings.last_model == "onnx"  # and opened again at the next start


def test_without_pytorch_checkpoints_are_shown_disabled(window, monkeypatch) -> None:  # noqa: ANN001
    import samstudio.inference.loader as loader

    monkeypatch.setattr(loader, "pytorch_available", lambda: False)
    window.model_menu.rebuild()
    acts = actions(window.model_menu.menu)
    vit_b = [t for t in acts if t.startswith("sam_vit_b")]
    assert len(vit_b) == 1 and "needs PyTorch" in vit_b[0] and not acts[vit_b[0]].isEnabled()
    assert not any(t.startswith("Download") for t in acts)
    pth = [a for t, a in acts.items() if t.startswith(("Import a model file", "Open a model file"))]
    assert len(pth) == 2
    for act in pth:
        assert not act.isEnabled() and "needs PyTorch" in act.text()
    assert acts["Import an ONNX model folder…"].isEnabled()
    assert any(t.startswith("Load samstudio-demo") and acts[t].isEnabled() for t in acts)


def test_with_pytorch_the_checkpoints_are_offered(window, monkeypatch) -> None:  # noqa: ANN001
    import samstudio.inference.loader as loader

    monkeypatch.setattr(loader, "pytorch_available", lambda: True)
    window.model_menu.rebuild()
    acts = actions(window.model_menu.menu)
    assert any(t.startswith("Download sam_vit_b") and acts[t].isEnabled() for t in acts)
    assert acts["Import a model file…"].isEnabled()


def test_a_partial_download_can_be_resumed_from_the_menu(window, monkeypatch) -> None:  # noqa: ANN001
    import samstudio.inference.loader as loader
    from samstudio.inference.catalog import catalog_entry, download_path

    monkeypatch.setattr(loader, "pytorch_available", lambda: True)
    dest = download_path(catalog_entry("sam_vit_b"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.with_name(dest.name + ".part").write_bytes(b"\0" * 1024)  # a cancelled download
    asked: list[str] = []
    monkeypatch.setattr(window.model_menu, "download", lambda name, parent=None: asked.append(name))
    window.model_menu.rebuild()
    acts = actions(window.model_menu.menu)
    (text,) = [t for t in acts if t.startswith("Resume the download of sam_vit_b (partial")]
    assert acts[text].isEnabled()
    acts[text].trigger()
    assert asked == ["sam_vit_b"]
