"""Names of imported models: no silent replacement, no catalog names for foreign files,
bare names beat same-named folders, and a shared copy is not deleted under another entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samstudio.cli.main import main
from samstudio.core.paths import models_dir
from samstudio.inference import loader, registry
from samstudio.inference.catalog import CATALOG, download_path, find_model_path, list_models
from samstudio.inference.errors import ModelLoadError
from samstudio.inference.registry import import_model


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMSTUDIO_DATA_DIR", str(tmp_path / "userdata"))


def _fake_onnx_export(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "encoder.onnx").write_bytes(b"enc" * 10)
    (folder / "decoder.onnx").write_bytes(b"dec" * 5)
    files = {
        "encoder": {"path": "encoder.onnx", "bytes": 30},
        "decoder": {"path": "decoder.onnx", "bytes": 15},
    }
    (folder / "manifest.json").write_text(json.dumps({"architecture": "vit_b", "files": files}))
    return folder


@pytest.fixture
def fake_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small file that passes as a vit_b checkpoint (the torch load is stubbed out)."""
    monkeypatch.setattr(registry, "_validate_checkpoint", lambda _path: "vit_b")
    path = tmp_path / "weights.pth"
    path.write_bytes(b"PK\x03\x04" + b"w" * 100)
    return path


# 1. an existing name is not silently replaced


def test_second_import_under_the_same_default_name_is_refused(tmp_path: Path) -> None:
    first = import_model(_fake_onnx_export(tmp_path / "projA" / "onnx"))
    second = _fake_onnx_export(tmp_path / "projB" / "onnx")
    with pytest.raises(ModelLoadError, match=r"'onnx' is already imported.*projA.*--name"):
        import_model(second)
    assert find_model_path("onnx") == first.path
    assert import_model(second, "onnx-b").path == second.resolve()
    assert sorted(registry.load_registry()) == ["onnx", "onnx-b"]


def test_importing_the_same_path_again_refreshes_the_entry(tmp_path: Path) -> None:
    folder = _fake_onnx_export(tmp_path / "export")
    import_model(folder, "mine")
    again = import_model(folder, "mine")
    assert again.path == folder.resolve()
    assert list(registry.load_registry()) == ["mine"]


def test_a_copy_does_not_overwrite_the_file_of_an_existing_entry(fake_checkpoint: Path) -> None:
    first = import_model(fake_checkpoint, "mine", copy=True)
    other = fake_checkpoint.with_name("other.pth")
    other.write_bytes(b"PK\x03\x04" + b"o" * 100)
    with pytest.raises(ModelLoadError, match="already imported"):
        import_model(other, "mine", copy=True)
    assert first.path.read_bytes() == fake_checkpoint.read_bytes()


def test_cli_reports_a_taken_name_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "import", str(_fake_onnx_export(tmp_path / "a" / "onnx"))]) == 0
    capsys.readouterr()
    assert main(["model", "import", str(_fake_onnx_export(tmp_path / "b" / "onnx"))]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "--name" in err
    assert "Traceback" not in err


# 2. catalog names and aliases are only for the catalog's own files


@pytest.mark.parametrize("name", ["sam_vit_b", "vit_b", "sam_vit_h"])
def test_onnx_folder_cannot_take_a_catalog_name(tmp_path: Path, name: str) -> None:
    folder = _fake_onnx_export(tmp_path / "export")
    with pytest.raises(ModelLoadError, match=r"catalog model.*--name"):
        import_model(folder, name)
    assert registry.load_registry() == {}


def test_foreign_checkpoint_cannot_take_a_catalog_name(fake_checkpoint: Path) -> None:
    with pytest.raises(ModelLoadError, match="SHA-256"):
        import_model(fake_checkpoint, "vit_l")
    assert registry.load_registry() == {}


def test_the_official_checkpoint_may_be_imported_under_its_name(
    fake_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    import hashlib

    digest = hashlib.sha256(fake_checkpoint.read_bytes()).hexdigest()
    monkeypatch.setitem(
        CATALOG, "sam_vit_b", dataclasses.replace(CATALOG["sam_vit_b"], sha256=digest)
    )
    assert import_model(fake_checkpoint).name == "sam_vit_b"
    assert import_model(fake_checkpoint, "vit_b").name == "sam_vit_b"  # same path: refresh


def test_no_duplicate_rows_once_the_catalog_model_is_downloaded(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError):
        import_model(_fake_onnx_export(tmp_path / "export"), "sam_vit_b")
    path = download_path(CATALOG["sam_vit_b"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    assert [r.name for r in list_models()].count("sam_vit_b") == 1


# 3. a bare model name wins over a same-named folder in the current directory


def test_bare_name_opens_the_model_not_a_folder_of_that_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path] = []
    monkeypatch.setattr(loader, "_open_path", lambda path, _device: opened.append(path))
    export = _fake_onnx_export(tmp_path / "export")
    import_model(export, "mine")
    cwd = tmp_path / "cwd"
    for name in ("demo", "samstudio-demo", "sam_vit_b", "mine"):
        (cwd / name).mkdir(parents=True)
    monkeypatch.chdir(cwd)
    download = download_path(CATALOG["sam_vit_b"])
    download.parent.mkdir(parents=True, exist_ok=True)
    download.write_bytes(b"x" * (CATALOG["sam_vit_b"].size or 0))

    from samstudio.inference.catalog import default_model_path

    for spec in ("demo", "samstudio-demo"):
        loader.open_model(spec)
        assert opened.pop() == default_model_path()
    loader.open_model("sam_vit_b")
    assert opened.pop() == download
    loader.open_model("mine")
    assert opened.pop() == export.resolve()
    # explicit paths and unknown bare words are still paths
    loader.open_model("./demo")
    assert opened.pop() == Path("./demo")
    loader.open_model(str(cwd / "mine"))
    assert opened.pop() == cwd / "mine"
    (cwd / "folder").mkdir()
    loader.open_model("folder")
    assert opened.pop() == Path("folder")
    loader.open_model(Path("demo"))
    assert opened.pop() == Path("demo")


# 4. removing one of two entries for the same copied file keeps the file


def test_removing_an_alias_of_a_copy_keeps_the_file(fake_checkpoint: Path) -> None:
    a = import_model(fake_checkpoint, "mine", copy=True)
    assert a.path.parent == models_dir() / "imported"
    import_model(a.path, "mine-alias")
    registry.unregister("mine-alias")
    assert a.path.is_file()
    assert {r.name: r.status for r in list_models()}["mine"] == "imported"
    registry.unregister("mine")
    assert not a.path.exists()


def test_removing_the_copying_entry_first_keeps_the_file_for_the_other(
    fake_checkpoint: Path,
) -> None:
    a = import_model(fake_checkpoint, "mine", copy=True)
    import_model(a.path, "mine-alias")
    registry.unregister("mine")
    assert a.path.is_file()
    assert find_model_path("mine-alias") == a.path
    registry.unregister("mine-alias")  # the last entry for the copy: the copy goes
    assert not a.path.exists()


def test_a_file_the_user_put_in_the_imported_folder_is_not_deleted(
    fake_checkpoint: Path,
) -> None:
    own = models_dir() / "imported" / "own.pth"
    own.parent.mkdir(parents=True)
    own.write_bytes(fake_checkpoint.read_bytes())
    import_model(own, "own")
    registry.unregister("own")
    assert own.is_file()


def test_model_path_is_what_open_model_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from samstudio.inference.catalog import default_model_path

    (tmp_path / "demo").mkdir()
    monkeypatch.chdir(tmp_path)
    assert loader.model_path("demo") == default_model_path()
    assert loader.model_path(None) == default_model_path()
    assert loader.model_path("./demo") == Path("./demo")
    with pytest.raises(ModelLoadError, match="unknown model 'nothing'"):
        loader.model_path("nothing")


def test_the_window_import_picks_a_free_name(tmp_path: Path) -> None:
    """The GUI asks no name (`unique=True`): a second 'onnx' folder becomes 'onnx-2', a
    folder named like a catalog model gets a suffix, the same folder again keeps its name."""
    first = import_model(_fake_onnx_export(tmp_path / "projA" / "onnx"), unique=True)
    second = import_model(_fake_onnx_export(tmp_path / "projB" / "onnx"), unique=True)
    assert (first.name, second.name) == ("onnx", "onnx-2")
    again = import_model(tmp_path / "projB" / "onnx", unique=True)
    assert again.name == "onnx-2"
    named = import_model(_fake_onnx_export(tmp_path / "x" / "sam_vit_b"), unique=True)
    assert named.name == "sam_vit_b-2"
    assert find_model_path("onnx") == first.path and find_model_path("onnx-2") == second.path
