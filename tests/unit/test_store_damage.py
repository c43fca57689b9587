"""Damaged and half-made project files: each gives a CorruptProjectError naming the file
(or is repaired), never a raw traceback and never a silently empty project."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samstudio.core import schema
from samstudio.core.document import CorruptProjectError, Project

REPO = Path(__file__).resolve().parents[2]
H, W = 40, 50
NOISE = np.random.default_rng(0).integers(0, 255, (3, H, W, 3), dtype=np.uint8)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Three random-noise PNGs (H x W) in tmp_path/images."""
    (tmp_path / "images").mkdir()
    [Image.fromarray(px).save(tmp_path / "images" / f"im{i}.png") for i, px in enumerate(NOISE)]
    return tmp_path / "images"


def _disc() -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (xx - 20) ** 2 + (yy - 20) ** 2 < 64


def test_killed_while_creating_leaves_no_project_and_the_next_create_has_every_image(
    folder: Path,
) -> None:
    # The process dies while hashing the images (a big folder, a slow disk).
    child = textwrap.dedent(f"""
        import time
        import samstudio.core.document.project as pm
        real = pm.probe_image
        def slow(path):
            print("probing", flush=True)
            time.sleep(60)
            return real(path)
        pm.probe_image = slow
        pm.Project.create(pm.Path({str(folder)!r}))
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "probing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # No project file that looks finished but holds no images ...
    assert not (folder / "project.samstudio").exists()
    # ... so opening the folder again creates it, with all three images.
    with Project.create(folder) as project:
        assert len(project.images()) == 3
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def test_a_zero_byte_project_file_is_corrupt_not_a_new_empty_project(folder: Path) -> None:
    Project.create(folder).close()
    path = folder / "project.samstudio"
    path.write_bytes(b"")  # truncated by a crash or a bad copy
    for read_only in (False, True):
        with pytest.raises(CorruptProjectError, match="empty \\(truncated\\?\\)") as info:
            Project.open(path, read_only=read_only)
        assert info.value.path == path
    assert path.stat().st_size == 0  # left as it was


def test_an_existing_sqlite_file_without_tables_is_corrupt(folder: Path) -> None:
    path = folder / "project.samstudio"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")  # a header page, no tables
    conn.close()
    with pytest.raises(CorruptProjectError, match="empty"):
        Project.open(path)
    with pytest.raises(CorruptProjectError, match="empty"):
        Project.open(path, read_only=True)


def test_a_damaged_mask_cell_is_a_corrupt_project_error_naming_the_row(folder: Path) -> None:
    with Project.create(folder) as project:
        image = project.images()[0]
        good = project.add_annotation(image.id, _disc(), None)
        bad = project.add_annotation(image.id, _disc(), None)
    path = folder / "project.samstudio"
    conn = sqlite3.connect(path)
    conn.execute("UPDATE annotations SET counts = ? WHERE id = ?", (b"\xc9\x01abc", bad.id))
    conn.commit()
    conn.close()
    # PRAGMA integrity_check cannot see it; opening for writing reads every row.
    with pytest.raises(CorruptProjectError, match=f"annotation {bad.id} is damaged") as info:
        Project.open(path)
    assert info.value.path == path
    with Project.open(path, read_only=True) as project:  # what can be read still is
        assert any(f"annotation {bad.id} is damaged" in p for p in project.problems)
        assert [a.id for a in project.annotations(image.id)] == [good.id]
        assert [a.id for a in project.iter_annotations()] == [good.id]
        saved, problems = project.salvage_annotations()
        assert [a.id for a in saved] == [good.id] and str(bad.id) in problems[0]
    with Project.open(path, check="none") as project:  # no check: the read itself says so
        with pytest.raises(CorruptProjectError, match=f"annotation {bad.id} is damaged"):
            project.annotations(image.id)


def test_zeroed_table_pages_still_open_read_only_to_salvage(folder: Path) -> None:
    # A table scan then finds rows that a lookup by id cannot (the b-tree is damaged).
    rng = np.random.default_rng(0)
    with Project.create(folder) as project:
        img = project.images()[0].id
        masks = [rng.random((H, W)) < 0.5 for _ in range(300)]
        project.add_annotations(img, masks, None, "manual")
    path = folder / "project.samstudio"
    data = bytearray(path.read_bytes())
    n_pages = len(data) // 4096
    for p in range(n_pages // 2, n_pages // 2 + 2):
        data[p * 4096 + 8 : (p + 1) * 4096] = bytes(4096 - 8)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptProjectError):
        Project.open(path)
    with Project.open(path, read_only=True) as project:
        assert project.problems
        saved, _ = project.salvage_annotations()
        assert 0 < len(saved) < 300


@pytest.mark.parametrize("damage", ["c9ff", "414243444585"])  # the 2nd: a bare UnicodeDecodeError
def test_a_text_cell_that_is_not_utf8_is_a_corrupt_project_error(folder: Path, damage: str) -> None:
    Project.create(folder).close()
    path = folder / "project.samstudio"
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE images SET note = CAST(x'{damage}' AS TEXT) WHERE id = 1")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptProjectError, match="images cannot be read") as info:
        Project.open(path)
    assert info.value.path == path
    with Project.open(path, read_only=True) as project:
        assert any("images cannot be read" in p for p in project.problems)
        with pytest.raises(CorruptProjectError) as info:
            project.images()
        assert info.value.path == path


def _version_1_file(path: Path, atoms: list[str]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    schema.create(conn, upto=1)
    conn.execute("INSERT INTO meta VALUES ('root', '.')")
    conn.execute("INSERT INTO images (path) VALUES ('a.png')")
    conn.execute("INSERT INTO images (path) VALUES ('b.png')")
    for image_id, seq, text in [(1, 1, atoms[0]), (1, 2, atoms[1]), (2, 1, atoms[2])]:
        conn.execute(
            "INSERT INTO history (image_id, seq, label, atoms, created) VALUES (?, ?, 'x', ?, 0)",
            (image_id, seq, text),
        )
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.parametrize("read_only", [False, True])
def test_migrating_a_damaged_history_row_drops_that_images_history(
    tmp_path: Path, read_only: bool
) -> None:
    path = tmp_path / "project.samstudio"
    good = '[{"t":"alive","id":7,"new":1}]'
    _version_1_file(path, [good, '[{"t":"alive"', good])
    with Project.open(path, read_only=read_only) as project:
        assert project.undo_label(1) is None  # its history is gone ...
        assert project.undo_label(2) == "x"  # ... the other image keeps its own
        assert len(project.images()) == 2


def test_a_migration_that_fails_is_a_corrupt_project_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "project.samstudio"
    good = '[{"t":"alive","id":7,"new":1}]'
    _version_1_file(path, [good, good, good])

    def broken(conn: sqlite3.Connection) -> None:
        raise ValueError("a cell the migration cannot read")

    monkeypatch.setitem(schema.MIGRATIONS, 1, broken)
    for read_only in (False, True):
        with pytest.raises(CorruptProjectError, match="migrating the project from schema 1"):
            Project.open(path, read_only=read_only)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # nothing was changed
    conn.close()
