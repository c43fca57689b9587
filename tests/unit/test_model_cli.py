"""`samstudio model list/download/import/remove/export`, driven as a user would, against a
local HTTP server standing in for Meta's download site."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_download import RangeServer  # the local Range-capable server

from samstudio.cli.main import main
from samstudio.core.paths import models_dir
from samstudio.inference.catalog import CATALOG, find_model_path
from samstudio.inference.download import partial_path

PAYLOAD = os.urandom(2_500_000)


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMSTUDIO_DATA_DIR", str(tmp_path / "userdata"))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RangeServer]:
    """Serves PAYLOAD as sam_vit_b's file; the catalog entry points at it."""
    srv = RangeServer()
    srv.files["/sam_vit_b_01ec64.pth"] = PAYLOAD
    entry = dataclasses.replace(
        CATALOG["sam_vit_b"],
        url=srv.url("/sam_vit_b_01ec64.pth"),
        size=len(PAYLOAD),
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
    )
    monkeypatch.setitem(CATALOG, "sam_vit_b", entry)
    yield srv
    srv.close()


def listing() -> dict[str, dict[str, object]]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["model", "list", "--json"]) == 0
    return {row["name"]: row for row in json.loads(out.getvalue())}


def test_list_shows_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "list"]) == 0
    text = capsys.readouterr().out
    for name in ("sam_vit_b", "sam_vit_l", "sam_vit_h"):
        assert name in text
    assert "not downloaded" in text
    rows = listing()
    assert rows["sam_vit_h"]["status"] == "not downloaded"
    assert rows["sam_vit_h"]["size"] == CATALOG["sam_vit_h"].size


def test_download_shows_progress_and_installs_the_model(
    server: RangeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "download", "sam_vit_b"]) == 0
    captured = capsys.readouterr()
    dest = models_dir() / "sam_vit_b_01ec64.pth"
    assert dest.read_bytes() == PAYLOAD
    assert "100%" in captured.err and "sam_vit_b_01ec64.pth" in captured.err  # tqdm bar
    assert "SHA-256 verified" in captured.out and str(dest) in captured.out
    assert listing()["sam_vit_b"]["status"] == "downloaded"
    assert find_model_path("sam_vit_b") == dest
    assert main(["model", "download", "vit_b"]) == 0  # already there: verified, not fetched
    assert len(server.requests) == 1


def test_interrupted_download_resumes_on_the_next_run(
    server: RangeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.cut_after = 1_000_000
    assert main(["model", "download", "sam_vit_b"]) == 1
    err = capsys.readouterr().err
    assert "run the download again to resume" in err
    dest = models_dir() / "sam_vit_b_01ec64.pth"
    assert not dest.exists() and partial_path(dest).exists()
    kept = partial_path(dest).stat().st_size
    assert listing()["sam_vit_b"]["status"] == f"partial {100 * kept // len(PAYLOAD)}%"
    assert main(["model", "download", "sam_vit_b"]) == 0
    assert "resuming" in capsys.readouterr().err
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1][1] is not None and server.requests[-1][1].startswith("bytes=")


def test_checksum_mismatch_installs_nothing(
    server: RangeServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        CATALOG, "sam_vit_b", dataclasses.replace(CATALOG["sam_vit_b"], sha256="0" * 64)
    )
    assert main(["model", "download", "sam_vit_b"]) == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and hashlib.sha256(PAYLOAD).hexdigest() in err
    assert not any(models_dir().iterdir())


def test_unknown_checksum_needs_an_explicit_flag(
    server: RangeServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        CATALOG, "sam_vit_b", dataclasses.replace(CATALOG["sam_vit_b"], sha256=None)
    )
    assert main(["model", "download", "sam_vit_b"]) == 1
    assert "--allow-unverified" in capsys.readouterr().err
    assert server.requests == []
    assert main(["model", "download", "sam_vit_b", "--allow-unverified"]) == 0
    assert "NOT verified" in capsys.readouterr().out


def test_download_of_an_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "download", "sam_vit_q"]) == 1
    assert "unknown model 'sam_vit_q'" in capsys.readouterr().err


def test_import_onnx_folder_then_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "encoder.onnx").write_bytes(b"e" * 100)
    (folder / "decoder.onnx").write_bytes(b"d" * 50)
    files = {"encoder": {"path": "encoder.onnx", "bytes": 100}}
    files["decoder"] = {"path": "decoder.onnx", "bytes": 50}
    (folder / "manifest.json").write_text(json.dumps({"architecture": "vit_b", "files": files}))
    assert main(["model", "import", str(folder), "--name", "my-onnx"]) == 0
    assert "--model my-onnx" in capsys.readouterr().out
    row = listing()["my-onnx"]
    assert row["status"] == "imported" and row["path"] == str(folder.resolve())
    assert main(["model", "remove", "my-onnx"]) == 0
    assert "my-onnx" not in listing()
    assert folder.is_dir(), "removing a registration leaves the user's files alone"


def test_import_rejects_what_is_not_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.pth"
    notes.write_text("these are my notes, not weights")
    assert main(["model", "import", str(notes)]) == 1
    assert f"{notes}: not a PyTorch checkpoint" in capsys.readouterr().err
    assert main(["model", "import", str(tmp_path / "missing.pth")]) == 1
    assert "no such file" in capsys.readouterr().err
    picture = tmp_path / "photo.jpg"
    picture.write_bytes(b"\xff\xd8\xff")
    assert main(["model", "import", str(picture)]) == 1
    assert "expected a .pth checkpoint" in capsys.readouterr().err
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert main(["model", "import", str(empty_dir)]) == 1
    assert "no manifest.json" in capsys.readouterr().err
    assert [r for r in listing().values() if r["status"] == "imported"] == []


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.marker), "code ran"))  # type: ignore[return-value]


@pytest.mark.torch
def test_import_refuses_a_pickle_that_runs_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"weights": _RunsCode(marker)}, protocol=2))
    assert main(["model", "import", str(evil)]) == 1
    assert "refused" in capsys.readouterr().err
    assert not marker.exists()
    assert "evil" not in listing()


@pytest.mark.slow
@pytest.mark.torch
def test_import_a_real_checkpoint_and_use_it_by_name(
    random_vit_b_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "import", str(random_vit_b_checkpoint), "--name", "mine", "--copy"]) == 0
    out = capsys.readouterr().out
    assert "imported 'mine' (checkpoint, vit_b)" in out
    path = find_model_path("mine")
    assert path.parent == models_dir() / "imported"
    assert path.read_bytes() == random_vit_b_checkpoint.read_bytes()
    row = listing()["mine"]
    assert row["architecture"] == "vit_b" and row["status"] == "imported"
    assert main(["model", "remove", "mine"]) == 0
    assert not path.exists()


def test_export_of_a_missing_checkpoint_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["model", "export", "--checkpoint", "nowhere.pth", "--out", str(tmp_path / "o")])
    assert code == 1
    assert "unknown model 'nowhere.pth'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
