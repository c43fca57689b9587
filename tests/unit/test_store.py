"""The project store: locking, read-only opens, integrity, versions, disk full, read-only folders."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from unprivileged import unprivileged_prefix

from samstudio.core import schema
from samstudio.core.document import (
    CorruptProjectError,
    Project,
    ProjectError,
    ProjectFullError,
    ProjectLockedError,
    ProjectVersionError,
    ReadOnlyProjectError,
)

REPO = Path(__file__).resolve().parents[2]
H, W = 64, 96


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(2):
        Image.fromarray(np.full((H, W, 3), 40 * i, np.uint8)).save(root / f"im{i}.png")
    return root


def _rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def _annotated(folder: Path, n: int = 3) -> tuple[Path, dict[int, np.ndarray]]:
    masks = {}
    with Project.create(folder) as project:
        img = project.images()[0].id
        for i in range(n):
            m = _rect(i % 50, i % 50 + 10, i % 80, i % 80 + 12)
            masks[project.add_annotation(img, m, None).id] = m
        return project.path, masks


def _python(code: str, prefix: tuple[str, ...] = (), **kwargs: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [*prefix, sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_second_writer_gets_a_clear_lock_error_and_can_open_read_only(folder: Path) -> None:
    path, masks = _annotated(folder)
    holder = _python(f"""
        import sys
        from samstudio.core.document import Project
        p = Project.open({str(path)!r})
        print("open", flush=True)
        sys.stdin.readline()
        p.add_annotation(p.images()[0].id, __import__("numpy").ones(({H}, {W}), bool), None)
        print("added", flush=True)
        sys.stdin.readline()
    """)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(ProjectLockedError, match="already open in another") as info:
            Project.open(path)
        assert str(path) in str(info.value) and f"process {holder.pid}" in str(info.value)
        with Project.open(path, read_only=True) as reader:
            img = reader.images()[0].id
            assert [a.id for a in reader.annotations(img)] == sorted(masks)
            with pytest.raises(ReadOnlyProjectError, match="read-only"):
                reader.delete_annotation(min(masks))
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "added"
            assert len(reader.annotations(img)) == len(masks) + 1  # sees the writer's commit
    finally:
        holder.kill()
        holder.wait()
    with Project.open(path) as project:  # the killed holder's lock is gone with it
        assert len(project.annotations(project.images()[0].id)) == len(masks) + 1


def test_the_same_process_cannot_open_a_project_twice_for_writing(folder: Path) -> None:
    with Project.create(folder):
        with pytest.raises(ProjectLockedError):
            Project.open(folder)
    Project.open(folder).close()


def test_disk_full_gives_a_clear_error_and_keeps_the_last_committed_state(folder: Path) -> None:
    path, masks = _annotated(folder)
    noise = np.random.default_rng(0).random((H, W)) < 0.5  # an RLE of several kB
    with Project.open(path) as project:
        img = project.images()[0].id
        before = project.annotations(img)
        pages = project.store.conn.execute("PRAGMA page_count").fetchone()[0]
        project.store.conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now full
        with pytest.raises(ProjectFullError, match="disk is full") as info:
            for _ in range(5):
                project.add_annotation(img, noise, None)
        assert str(path) in str(info.value)
        assert project.annotations(img)[: len(before)] == before
        assert project.undo_label(img) == "Add annotation"
        n_saved = len(project.annotations(img))
        project.store.conn.execute(f"PRAGMA max_page_count = {pages * 100}")  # space freed
        project.add_annotation(img, noise, None)
    with Project.open(path) as project:  # integrity check passes, nothing half written
        anns = project.annotations(project.images()[0].id)
        assert len(anns) == n_saved + 1
        for ann in anns[: len(masks)]:
            assert np.array_equal(project.mask(ann.id), masks[ann.id])


def test_a_mask_write_that_fails_midway_leaves_nothing_behind(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from samstudio.core.document import history

    path, _ = _annotated(folder, 1)
    with Project.open(path) as project:
        img = project.images()[0].id
        ann = project.annotations(img)[0]

        def fail(*args: object, **kwargs: object) -> None:
            raise OSError("simulated crash after the mask was written")

        monkeypatch.setattr(history, "record", fail)
        with pytest.raises(OSError, match="simulated"):
            project.paint(ann.id, _rect(0, H, 0, W), True)
        monkeypatch.undo()
        assert project.annotations(img) == [ann]
        assert np.array_equal(project.mask(ann.id), _rect(0, 10, 0, 12))  # no stale cached mask
        assert project.undo_label(img) == "Add annotation"


def test_a_damaged_file_is_refused_for_writing_and_salvaged_read_only(folder: Path) -> None:
    path, masks = _annotated(folder, 400)
    data = bytearray(path.read_bytes())
    page = 4096
    n_pages = len(data) // page
    for p in range(n_pages - 3, n_pages - 1):  # trash two pages near the end
        data[p * page + 8 : (p + 1) * page] = os.urandom(page - 8)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptProjectError, match="integrity check failed.*read-only") as info:
        Project.open(path)
    assert str(path) in str(info.value)
    with Project.open(path, read_only=True) as project:
        assert project.problems
        salvaged, problems = project.salvage_annotations()
        assert len(salvaged) >= len(masks) // 2
        for ann in salvaged:
            assert np.array_equal(project.mask(ann.id), masks[ann.id])


def test_files_that_are_not_projects_get_clear_errors(tmp_path: Path, folder: Path) -> None:
    text = tmp_path / "notes.samstudio"
    text.write_text("hello, I am not a database at all" * 10)
    with pytest.raises(CorruptProjectError, match="not an SQLite database"):
        Project.open(text)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(CorruptProjectError, match="not a SAM Studio project"):
        Project.open(other)
    with pytest.raises(ProjectError, match="no such project file"):
        Project.open(tmp_path / "missing.samstudio")


def test_a_newer_schema_is_refused(folder: Path) -> None:
    path, _ = _annotated(folder, 1)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(ProjectVersionError, match="newer SAM Studio"):
        Project.open(path)


def test_a_version_1_file_is_migrated_forward(tmp_path: Path, folder: Path) -> None:
    path = folder / "project.samstudio"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    schema.create(conn, upto=1)
    conn.execute("INSERT INTO meta VALUES ('root', '.')")
    conn.execute("INSERT INTO images (id, path, width, height) VALUES (1, 'im0.png', ?, ?)", (W, H))
    from samstudio.core.document import history

    counts, bbox, area = history.encode_mask_columns(_rect(0, 5, 0, 5))
    conn.execute(
        "INSERT INTO annotations (id, image_id, height, width, counts, bbox_x, bbox_y, bbox_w, bbox_h, "
        "area, source, created, modified) VALUES (7, 1, ?, ?, ?, ?, ?, ?, ?, ?, 'manual', 0, 0)",
        (H, W, counts, *bbox, area),
    )
    atoms = json.dumps([{"t": "alive", "id": 7, "new": 1}])
    conn.execute(
        "INSERT INTO history (image_id, seq, label, atoms, created) VALUES (1, 1, 'Add annotation', ?, 0)",
        (atoms,),
    )
    conn.execute("COMMIT")
    conn.close()
    with Project.open(path, read_only=True) as reader:  # migrates a copy in memory only
        assert reader.undo_label(1) == "Add annotation"
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1
    with Project.open(path) as project:
        assert (
            project.store.conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        )
        assert project.store.conn.execute("SELECT * FROM history_refs").fetchall() == [(1, 7)]
        assert project.undo(1) and project.annotations(1) == []
        project.redo(1)
        project.add_annotation(1, _rect(10, 20, 10, 20), None)
        project.undo(1)
        project.undo(1)
        project.add_annotation(1, _rect(10, 20, 10, 20), None)  # drops the redo stack: 7 is purged
        assert (
            project.store.conn.execute("SELECT count(*) FROM annotations WHERE id = 7").fetchone()[
                0
            ]
            == 0
        )


def test_closed_project_says_so(folder: Path) -> None:
    project = Project.create(folder)
    project.close()
    with pytest.raises(ProjectError, match="closed"):
        project.images()


READ_ONLY_SCRIPT = """
    import sys
    from samstudio.core.document import Project, ReadOnlyProjectError
    path = sys.argv[1]
    try:
        Project.open(path)
        print("opened for writing")
    except ReadOnlyProjectError as exc:
        print("refused:", exc)
    with Project.open(path, read_only=True) as p:
        print("read", len(p.annotations(p.images()[0].id)))
"""


@pytest.mark.parametrize("what", ["folder", "file"])
def test_read_only_folders_and_files_give_clear_errors(what: str) -> None:
    # Root ignores permission bits: the child runs like an ordinary user.
    prefix = unprivileged_prefix()
    base = Path(tempfile.mkdtemp(prefix="samstudio-ro-"))
    try:
        os.chmod(base, 0o755)
        images = base / "imgs"
        images.mkdir()
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(images / "im0.png")
        path, _ = _annotated(images, 2)
        (path.parent / (path.name + ".lock")).unlink()
        if what == "folder":
            os.chmod(path, 0o644)
            os.chmod(images, 0o555)
        else:
            os.chmod(path, 0o444)
            os.chmod(images, 0o755)
        proc = _python(
            READ_ONLY_SCRIPT.replace("sys.argv[1]", repr(str(path))), prefix, cwd=str(base)
        )
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        lines = out.strip().splitlines()
        assert lines[0].startswith("refused:") and str(path) in lines[0], out
        assert "open it read-only" in lines[0]
        assert lines[1] == "read 2"
    finally:
        os.chmod(base / "imgs", 0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_a_worker_thread_may_edit_while_the_ui_thread_reads(folder: Path) -> None:
    import threading

    path, masks = _annotated(folder, 2)
    errors: list[BaseException] = []
    with Project.open(path) as project:
        img = project.images()[0].id
        target = min(masks)

        def paint() -> None:
            try:
                for i in range(30):
                    project.paint(target, _rect(40, 42, i, i + 2), True)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                errors.append(exc)

        worker = threading.Thread(target=paint)
        worker.start()
        while worker.is_alive():
            anns = project.annotations(img)
            assert len(anns) == 2
            project.mask(target)
        worker.join()
        assert not errors
        assert project.mask(target)[40:42, 0:31].all()
        for _ in range(30):
            assert project.undo(img)
        assert np.array_equal(project.mask(target), masks[target])


def test_an_images_annotations_are_kept_between_reads_and_never_stale(folder: Path) -> None:
    """`Project.annotations` keeps the last image's list while nothing is written (the
    window reads it several times per key press): a write, an undo, a rolled-back write
    and another image all read afresh, and the list returned is the caller's own."""
    path, masks = _annotated(folder)
    with Project.open(path) as project:
        img, other = (im.id for im in project.images())
        first = project.annotations(img)
        assert [a.id for a in first] == sorted(masks)
        first.append(first[0])  # the caller's list: the next read is not changed
        assert len(project.annotations(img)) == len(masks)
        new = project.add_annotation(img, np.ones((H, W), bool), None).id
        assert [a.id for a in project.annotations(img)] == [*sorted(masks), new]
        project.undo(img)
        assert [a.id for a in project.annotations(img)] == sorted(masks)
        assert project.annotations(other) == []
        try:
            with project.store.transaction("a write that fails"):
                project.add_annotation(img, np.ones((H, W), bool), None)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        assert [a.id for a in project.annotations(img)] == sorted(masks)


def test_set_prompts_is_one_undo_step_that_survives_reopening(folder: Path) -> None:
    """A refined mask's prompts and scores are saved with it (`Project.set_prompts`)."""
    path, masks = _annotated(folder)
    aid = min(masks)
    new = {"points": [[3.5, 4.0], [10.0, 20.0]], "labels": [1, 0], "box": None}
    with Project.open(path) as project:
        img = project.images()[0].id
        before = project.annotation(aid)
        project.set_prompts(aid, new, np.float32(0.91), 0.97)
        rec = project.annotation(aid)
        assert rec.prompts == new and rec.predicted_iou == pytest.approx(0.91)
        assert rec.stability_score == pytest.approx(0.97)
        assert project.undo_label(img) == "Change prompts"
        project.set_prompts(aid, new, np.float32(0.91), 0.97)  # nothing changes: no step
        project.undo(img)
        assert project.annotation(aid).prompts == before.prompts  # one step back: all of it
        project.redo(img)
    with Project.open(path) as project:  # undone from the persisted history
        project.undo(img)
        rec = project.annotation(aid)
        assert (rec.prompts, rec.predicted_iou) == (before.prompts, before.predicted_iou)
        project.redo(img)
        assert project.annotation(aid).prompts == new


def test_annotations_read_inside_a_transaction_that_rolls_back_are_not_kept(
    folder: Path,
) -> None:
    """Found by review: a list read inside a write transaction was kept, and a rollback
    moves no counter, so the rolled-back annotation was still listed afterwards."""
    path, masks = _annotated(folder)
    with Project.open(path) as project:
        img = project.images()[0].id
        try:
            with project.store.transaction("a write that fails"):
                new = project.add_annotation(img, np.ones((H, W), bool), None).id
                assert new in [a.id for a in project.annotations(img)]
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        assert [a.id for a in project.annotations(img)] == sorted(masks)
