"""Read-only opens of a project whose latest changes are still in its write-ahead log.

A writer killed before SQLite checkpoints leaves `<project>-wal` beside the project file
holding transactions that are committed but not yet in the main file. In a folder that
cannot be written, and without the `-shm` index, SQLite cannot open that WAL in place
(`mode=ro` fails with SQLITE_CANTOPEN). The read-only open must still show every
committed change, or at least say that recent changes may be missing, and must leave
the files as they are.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from unprivileged import unprivileged_prefix

from samstudio.core.document import Project

REPO = Path(__file__).resolve().parents[2]
H, W = 32, 40
N = 4  # annotations committed to the WAL


def _rect(i: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[i : i + 5, 2 * i : 2 * i + 7] = True
    return m


def _crashed_copy(images: Path, dest: Path) -> Path:
    """`dest/project.samstudio` plus its `-wal`, copied while the writer still held them
    (as a crash leaves them: committed annotations only in the WAL, no -shm)."""
    project = Project.create(images)
    try:
        img = project.images()[0].id
        for i in range(N):
            project.add_annotation(img, _rect(i), None)
        wal = project.path.with_name(project.path.name + "-wal")
        assert wal.stat().st_size > 32, "the annotations should sit in the WAL"
        dest.mkdir()
        shutil.copyfile(project.path, dest / "project.samstudio")
        shutil.copyfile(wal, dest / "project.samstudio-wal")
    finally:
        project.close()
    copied = dest / "project.samstudio"
    # The scenario is real: the main file alone holds none of the annotations.
    conn = sqlite3.connect(f"{copied.resolve().as_uri()}?immutable=1", uri=True)
    try:
        assert conn.execute("SELECT count(*) FROM annotations").fetchone()[0] == 0
    finally:
        conn.close()
    return copied


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    root.mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / "im0.png")
    return root


@pytest.fixture()
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The temporary folder the store may copy into, to check it is cleaned up."""
    folder = tmp_path / "private-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder


@pytest.fixture()
def mode_ro_fails(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`?mode=ro` opens of files under a "read-only" folder fail as SQLite fails there.

    Root ignores permission bits, so the folder cannot really be made read-only for it;
    this stands in for the error SQLite gives an ordinary user (checked for real by
    `test_a_read_only_folder_for_real_sees_the_changes_in_the_wal`): OperationalError
    "unable to open database file" (SQLITE_CANTOPEN), since the -shm cannot be created.
    """
    refused: list[str] = []
    real = sqlite3.connect

    def connect(database: object, *args: object, **kwargs: object) -> sqlite3.Connection:
        text = str(database)
        if "mode=ro" in text and any(text.startswith(prefix) for prefix in refused):
            raise sqlite3.OperationalError("unable to open database file")
        return real(database, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite3, "connect", connect)
    return refused


def test_read_only_open_sees_changes_committed_to_the_wal(
    tmp_path: Path, images: Path, private_tmp: Path, mode_ro_fails: list[str]
) -> None:
    path = _crashed_copy(images, tmp_path / "ro")
    mode_ro_fails.append(path.parent.resolve().as_uri() + "/")
    before = _digests(path.parent)
    with Project.open(path, read_only=True) as project:
        anns = project.annotations(project.images()[0].id)
        assert len(anns) == N, f"read-only open shows {len(anns)} of {N} saved annotations"
        for i, ann in enumerate(anns):
            assert np.array_equal(project.mask(ann.id), _rect(i))
        assert project.problems == []
        assert project.undo_label(project.images()[0].id) == "Add annotation"
        # read into memory at open: a reader killed now leaves no copy behind
        assert list(private_tmp.iterdir()) == []
    assert _digests(path.parent) == before  # nothing saved was changed or removed
    assert list(private_tmp.iterdir()) == []


def test_when_no_copy_can_be_made_the_problems_name_the_wal(
    tmp_path: Path,
    images: Path,
    private_tmp: Path,
    mode_ro_fails: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _crashed_copy(images, tmp_path / "ro")
    mode_ro_fails.append(path.parent.resolve().as_uri() + "/")
    before = _digests(path.parent)

    def no_space(src: object, dst: object, *args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", no_space)
    with Project.open(path, read_only=True) as project:
        assert project.images()  # the app goes on with what the main file holds
        assert list(private_tmp.iterdir()) == []  # the failed copy was removed at once
        wal = str(path) + "-wal"
        assert any(wal in p and "may be missing" in p for p in project.problems), project.problems
    assert _digests(path.parent) == before
    assert list(private_tmp.iterdir()) == []


def test_a_read_only_folder_without_a_wal_is_read_in_place(
    tmp_path: Path, images: Path, private_tmp: Path, mode_ro_fails: list[str]
) -> None:
    with Project.create(images) as project:
        project.add_annotation(project.images()[0].id, _rect(0), None)
        path = project.path
    assert not Path(str(path) + "-wal").exists()  # closing checkpointed everything
    mode_ro_fails.append(path.parent.resolve().as_uri() + "/")
    with Project.open(path, read_only=True) as project:
        assert len(project.annotations(project.images()[0].id)) == 1
        assert project.problems == []
        assert list(private_tmp.iterdir()) == []  # nothing to copy


READER = """
    import sys
    from samstudio.core.document import Project
    with Project.open(sys.argv[1], read_only=True) as p:
        print(len(p.annotations(p.images()[0].id)))
        print(repr(p.problems))
"""


def test_a_read_only_folder_for_real_sees_the_changes_in_the_wal(images: Path) -> None:
    """The real thing: a folder with permissions 0555, read by a user who cannot write it."""
    # Root ignores permission bits: the child runs like an ordinary user.
    prefix = unprivileged_prefix()
    base = Path(tempfile.mkdtemp(prefix="samstudio-ro-wal-"))
    try:
        os.chmod(base, 0o755)
        path = _crashed_copy(images, base / "ro")
        before = _digests(path.parent)
        os.chmod(path.parent, 0o555)
        proc = subprocess.run(
            [*prefix, sys.executable, "-c", textwrap.dedent(READER), str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            cwd=str(base),
        )
        assert proc.returncode == 0, proc.stderr
        count, problems = proc.stdout.strip().splitlines()
        assert int(count) == N, f"read-only open showed {count} of {N} saved annotations"
        assert problems == "[]"
        assert _digests(path.parent) == before
    finally:
        os.chmod(base / "ro", 0o755)
        shutil.rmtree(base, ignore_errors=True)
