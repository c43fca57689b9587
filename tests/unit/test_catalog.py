"""The model catalog: official entries, where models are found, the shipped demo model."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from samstudio.core.paths import models_dir
from samstudio.inference import catalog
from samstudio.inference.catalog import (
    CATALOG,
    DEMO_MODEL,
    catalog_entry,
    default_model_path,
    download_path,
    find_model_path,
    list_models,
)
from samstudio.inference.errors import ModelLoadError
from samstudio.inference.registry import import_model


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh data dir per test: registrations and downloads do not leak between tests."""
    monkeypatch.setenv("SAMSTUDIO_DATA_DIR", str(tmp_path / "userdata"))


def test_official_entries_are_pinned() -> None:
    assert set(CATALOG) == {"sam_vit_b", "sam_vit_l", "sam_vit_h"}
    for name, entry in CATALOG.items():
        arch = name.removeprefix("sam_")
        assert entry.architecture == arch
        assert entry.url == f"https://dl.fbaipublicfiles.com/segment_anything/{entry.filename}"
        assert re.fullmatch(rf"sam_{arch}_[0-9a-f]{{6}}\.pth", entry.filename)
        assert entry.sha256 is not None and re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        assert entry.size is not None and entry.license == "Apache-2.0"
        assert entry.downloadable
    sizes = [CATALOG[n].size or 0 for n in ("sam_vit_b", "sam_vit_l", "sam_vit_h")]
    assert sizes == sorted(sizes) and sizes[0] > 300e6 and sizes[2] < 3e9
    assert catalog_entry("vit_h") is CATALOG["sam_vit_h"]


def test_unknown_and_not_downloaded_models_say_what_to_do() -> None:
    with pytest.raises(ModelLoadError, match="unknown model 'sam_vit_x'.*sam_vit_b"):
        find_model_path("sam_vit_x")
    with pytest.raises(ModelLoadError, match="samstudio model download sam_vit_b"):
        find_model_path("vit_b")


def test_downloaded_model_is_found_and_truncation_detected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = CATALOG["sam_vit_b"]
    small = catalog.CatalogEntry(**{**entry.__dict__, "size": 10})
    monkeypatch.setitem(CATALOG, "sam_vit_b", small)
    path = download_path(small)
    assert path.parent == models_dir()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"0123456789")
    try:
        assert find_model_path("sam_vit_b") == path
        rows = {r.name: r for r in list_models()}
        assert rows["sam_vit_b"].status == "downloaded" and rows["sam_vit_b"].path == path
        assert rows["sam_vit_l"].status == "not downloaded"
        path.write_bytes(b"01234")
        with pytest.raises(ModelLoadError, match=r"5 bytes.*10 bytes.*truncated"):
            find_model_path("sam_vit_b")
    finally:
        path.unlink()


def _fake_onnx_export(folder: Path, architecture: str = "vit_b") -> Path:
    folder.mkdir(parents=True)
    (folder / "encoder.onnx").write_bytes(b"enc" * 10)
    (folder / "decoder.onnx").write_bytes(b"dec" * 5)
    manifest = {
        "architecture": architecture,
        "files": {
            "encoder": {"path": "encoder.onnx", "bytes": 30},
            "decoder": {"path": "decoder.onnx", "bytes": 15},
        },
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_imported_model_is_found_and_listed(tmp_path: Path) -> None:
    folder = _fake_onnx_export(tmp_path / "my export")
    item = import_model(folder, "mine")
    assert item.kind == "onnx" and item.architecture == "vit_b"
    assert find_model_path("mine") == folder
    rows = {r.name: r for r in list_models()}
    assert rows["mine"].status == "imported"
    shutil.rmtree(folder)
    assert {r.name: r for r in list_models()}["mine"].status == "missing"
    with pytest.raises(ModelLoadError, match="no longer exists"):
        find_model_path("mine")


def test_two_imports_at_once_both_land(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The GUI's Import dialog and `samstudio model import` at the same moment: each reads
    the registry, adds its model and saves; neither may lose the other's entry."""
    import threading
    import time

    from samstudio.inference import registry

    first, second = _fake_onnx_export(tmp_path / "a"), _fake_onnx_export(tmp_path / "b")
    real_load = registry.load_registry

    def slow_load() -> dict:
        models = real_load()
        if threading.current_thread().name == "A":
            time.sleep(0.4)  # B reads and saves meanwhile, unless the registry is locked
        return models

    monkeypatch.setattr(registry, "load_registry", slow_load)
    errors: list[BaseException] = []

    def run(folder: Path, name: str) -> None:
        try:
            import_model(folder, name)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    a = threading.Thread(target=run, args=(first, "first"), name="A")
    b = threading.Thread(target=run, args=(second, "second"), name="B")
    a.start()
    time.sleep(0.1)
    b.start()
    a.join()
    b.join()
    assert errors == []
    assert sorted(real_load()) == ["first", "second"]


def test_onnx_folder_with_a_truncated_file_is_refused(tmp_path: Path) -> None:
    folder = _fake_onnx_export(tmp_path / "export")
    (folder / "decoder.onnx").write_bytes(b"dec")
    with pytest.raises(ModelLoadError, match=r"decoder\.onnx: 3 bytes.*15"):
        import_model(folder, "broken")
    (folder / "decoder.onnx").unlink()
    with pytest.raises(ModelLoadError, match="missing files: decoder.onnx"):
        import_model(folder, "broken")
    # a listed file that is not an .onnx (external weights), missing or with a bad size
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "decoder.onnx").write_bytes(b"dec" * 5)
    manifest["files"]["weights"] = {"path": "decoder.onnx.data", "bytes": 10}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"decoder\.onnx\.data: named in manifest.json"):
        import_model(folder, "broken")
    (folder / "decoder.onnx.data").write_bytes(b"0123456789")
    manifest["files"]["weights"]["bytes"] = "ten"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="size of decoder.onnx.data is not a number"):
        import_model(folder, "broken")


def test_default_model_missing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog, "shipped_model_dir", lambda: tmp_path / "nothing")
    with pytest.raises(ModelLoadError, match="default model 'samstudio-demo' is not installed"):
        default_model_path()
    with pytest.raises(ModelLoadError, match="not in this installation"):
        catalog_entry("demo")
    assert DEMO_MODEL not in {r.name for r in list_models()}


def test_shipped_checkpoint_with_sha256sums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / DEMO_MODEL
    folder.mkdir()
    data = b"demo weights"
    (folder / "samstudio_demo.pth").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (folder / "SHA256SUMS").write_text(f"{digest}  samstudio_demo.pth\n")
    monkeypatch.setattr(catalog, "shipped_model_dir", lambda: folder)
    assert default_model_path() == folder / "samstudio_demo.pth"
    assert find_model_path("demo") == folder / "samstudio_demo.pth"
    entry = catalog_entry(DEMO_MODEL)
    assert entry.shipped and not entry.downloadable
    assert entry.sha256 == digest and entry.size == len(data)
    assert list_models()[0].status == "shipped"


def test_shipped_checkpoint_with_a_sidecar_checksum_and_a_non_onnx_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / DEMO_MODEL
    folder.mkdir()
    (folder / "demo.pth").write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    (folder / "demo.pth.sha256").write_text(f"{digest}  demo.pth\n")
    (folder / "manifest.json").write_text(json.dumps({"architecture": "samstudio_demo_v1"}))
    monkeypatch.setattr(catalog, "shipped_model_dir", lambda: folder)
    assert default_model_path() == folder / "demo.pth"  # no .onnx files: not an ONNX export
    entry = catalog_entry(DEMO_MODEL)
    assert entry.sha256 == digest and entry.architecture == "samstudio_demo_v1"


def test_shipped_onnx_export_is_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _fake_onnx_export(tmp_path / DEMO_MODEL, architecture="samstudio-demo-v1")
    monkeypatch.setattr(catalog, "shipped_model_dir", lambda: folder)
    assert default_model_path() == folder
    assert catalog_entry(DEMO_MODEL).architecture == "samstudio-demo-v1"


def test_the_real_shipped_model_matches_its_checksum() -> None:
    """In this checkout: either no demo model yet (a clear error), or one whose file
    matches the checksum shipped beside it (when one is)."""
    try:
        path = default_model_path()
    except ModelLoadError as exc:
        assert "not installed" in str(exc)
        return
    entry = catalog_entry(DEMO_MODEL)
    if path.is_file():
        assert entry.size == path.stat().st_size
        if entry.sha256 is not None:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
    else:
        assert (path / "manifest.json").is_file()


def test_shipped_demo_default_is_the_onnx_pair_when_present() -> None:
    """The repository ships resources/models/samstudio-demo/onnx/: the default model is
    that ONNX pair, so the app and CLI run it without importing torch."""
    from samstudio.inference import catalog

    folder = catalog.shipped_model_dir()
    if not (folder / "onnx" / "manifest.json").is_file():
        pytest.skip("this checkout ships no ONNX demo model")
    assert catalog.default_model_path() == folder / "onnx"
