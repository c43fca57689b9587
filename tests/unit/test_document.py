"""The annotation document: edits, undo/redo as diffs, persistence across restarts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from samstudio.core.document import (
    CorruptProjectError,
    EditError,
    EncodedMask,
    Project,
    ProjectError,
)
from samstudio.core.document.history import HISTORY_LIMIT
from samstudio.core.mask_diff import MaskDiff, MaskDiffError
from samstudio.core.masks import RLEError, decode_rle, encode_rle

H, W = 120, 160


def _save_png(path: Path, shape: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*shape, 3), dtype=np.uint8)).save(path)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    _save_png(root / "a.png", (H, W), 1)
    _save_png(root / "b.png", (H, W), 2)
    _save_png(root / "sub" / "c.png", (60, 80), 3)
    (root / "notes.txt").write_text("not an image")
    (root / "broken.jpg").write_bytes(b"this is not a jpeg")
    return root


@pytest.fixture()
def project(folder: Path) -> Project:
    p = Project.create(folder)
    yield p
    p.close()


def _rect(y0: int, y1: int, x0: int, x1: int, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def _image(project: Project, name: str) -> int:
    return next(i.id for i in project.images() if i.path == name)


# -- MaskDiff -------------------------------------------------------------------------

masks = st.integers(0, 2**32 - 1).map(
    lambda seed: (
        np.random.default_rng(seed).random((37, 53)) < np.random.default_rng(seed + 1).random()
    )
)


@settings(max_examples=60, deadline=None)
@given(old=masks, new=masks)
def test_mask_diff_round_trip_is_exact(old: np.ndarray, new: np.ndarray) -> None:
    diff = MaskDiff.from_bytes(MaskDiff.between(old, new).to_bytes())
    assert np.array_equal(diff.apply(old), new)
    assert np.array_equal(diff.revert(new), old)
    assert diff.n_changed == int((old != new).sum())


def test_mask_diff_is_a_bbox_slice_and_small_for_a_small_stroke() -> None:
    big = np.zeros((1500, 2250), bool)
    big[100:900, 300:1500] = True
    stroke = _rect(500, 520, 1490, 1530, big.shape)
    diff = MaskDiff.from_stroke(big, stroke, True)
    assert diff.box == (500, 1500, 520, 1530)  # only pixels that really changed
    assert diff.n_changed == 20 * 30
    assert len(diff.to_bytes()) < 200
    assert np.array_equal(diff.apply(big), big | stroke)
    eraser = MaskDiff.from_stroke(big, stroke, False)
    assert np.array_equal(eraser.apply(big), big & ~stroke)


def test_mask_diff_refuses_a_mask_it_does_not_fit() -> None:
    old, new = _rect(0, 5, 0, 5), _rect(0, 6, 0, 6)
    diff = MaskDiff.between(old, new)
    with pytest.raises(MaskDiffError, match="old values"):
        diff.apply(new)
    with pytest.raises(MaskDiffError, match="shape"):
        diff.apply(np.zeros((3, 3), bool))
    with pytest.raises(MaskDiffError):
        MaskDiff.from_bytes(diff.to_bytes()[:-3])
    with pytest.raises(MaskDiffError, match="magic"):
        MaskDiff.from_bytes(b"x" * 40)


# -- creating and reading --------------------------------------------------------------


def test_create_scans_images_and_records_unreadable_files(project: Project, folder: Path) -> None:
    images = {i.path: i for i in project.images()}
    assert set(images) == {"a.png", "b.png", "broken.jpg", "sub/c.png"}
    assert (images["a.png"].height, images["a.png"].width) == (H, W)
    assert (images["sub/c.png"].height, images["sub/c.png"].width) == (60, 80)
    assert images["broken.jpg"].error and "broken.jpg" in images["broken.jpg"].error
    assert images["a.png"].error is None and len(images["a.png"].content_hash) == 64
    assert {i.status for i in images.values()} == {"new"}
    assert project.image_path(images["sub/c.png"].id) == folder / "sub" / "c.png"
    assert project.path == folder / "project.samstudio"
    with pytest.raises(EditError, match="could not be read"):
        project.add_annotation(images["broken.jpg"].id, np.zeros((1, 1), bool), None)


def test_create_refuses_an_existing_project_and_a_missing_folder(
    project: Project, folder: Path
) -> None:
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(folder)
    with pytest.raises(ProjectError, match="not a folder"):
        Project.create(folder / "nope")


def test_add_annotation_stores_rle_bbox_area_and_metadata(project: Project) -> None:
    img = _image(project, "a.png")
    cat = project.add_category("cat", "#FF0000", "animal")
    mask = _rect(10, 30, 20, 60)
    ann = project.add_annotation(
        img,
        mask,
        cat.id,
        "auto",
        predicted_iou=0.91,
        stability_score=0.95,
        prompts={"points": [[40, 20, 1]]},
    )
    assert ann.bbox == (20, 10, 40, 20) and ann.area == 800
    assert np.array_equal(decode_rle(ann.rle), mask)
    assert np.array_equal(project.mask(ann.id), mask)
    assert ann.source == "auto" and ann.predicted_iou == pytest.approx(0.91)
    assert ann.prompts == {"points": [[40, 20, 1]]} and ann.category_id == cat.id
    assert project.categories() == [cat] and cat.color == "#ff0000"
    assert project.image(img).status == "in_progress"
    with pytest.raises(EditError, match="does not match the image frame"):
        project.add_annotation(img, np.zeros((W, H), bool), None)
    with pytest.raises(EditError, match="no category"):
        project.add_annotation(img, mask, 999)
    with pytest.raises(EditError, match="source must be"):
        project.add_annotation(img, mask, None, "magic")


def test_add_annotations_takes_encoded_masks_as_they_are(project: Project) -> None:
    img = _image(project, "a.png")
    masks = [_rect(10, 30, 20, 60), _rect(0, 1, 0, 1), np.zeros((H, W), bool)]
    from_arrays = project.add_annotations(img, masks, None, "proposal")
    encoded = [EncodedMask.from_rle(a.rle) for a in from_arrays]
    from_rles = project.add_annotations(img, encoded, None, "proposal", label="Auto")
    for a, b, mask in zip(from_arrays, from_rles, masks):
        assert (b.rle, b.bbox, b.area) == (a.rle, a.bbox, a.area)
        assert np.array_equal(project.mask(b.id), mask)
    assert project.undo(img) and len(project.annotations(img)) == 3  # one undo step
    uncompressed = EncodedMask.from_rle({"size": [H, W], "counts": [H * W - 1, 1]})
    assert uncompressed.area == 1 and uncompressed.bbox == (W - 1, H - 1, 1, 1)
    with pytest.raises(EditError, match="does not match the image frame"):
        project.add_annotations(img, [EncodedMask.from_rle(encode_rle(np.ones((W, H), bool)))])
    with pytest.raises(RLEError):
        EncodedMask.from_rle({"size": [H, W], "counts": "00"})


def test_categories_rename_recolor_and_clear_errors(project: Project) -> None:
    a = project.add_category("dog")
    b = project.add_category("cat")
    assert a.color != b.color  # default colours come from a palette
    project.rename_category(a.id, "puppy")
    project.recolor_category(a.id, "#00ff00")
    assert project.categories()[0].name == "puppy" and project.categories()[0].color == "#00ff00"
    with pytest.raises(EditError, match="already exists"):
        project.rename_category(a.id, "cat")
    with pytest.raises(EditError, match="#rrggbb"):
        project.recolor_category(a.id, "green")
    with pytest.raises(EditError, match="already exists"):
        project.add_category("cat")


# -- undo and redo ---------------------------------------------------------------------


def test_brush_and_eraser_strokes_undo_and_redo_exactly(project: Project) -> None:
    img = _image(project, "a.png")
    mask = _rect(20, 60, 20, 80)
    ann = project.add_annotation(img, mask, None)
    stroke = _rect(50, 70, 70, 100)
    project.paint(ann.id, stroke, True)
    painted = mask | stroke
    assert np.array_equal(project.mask(ann.id), painted)
    assert project.undo_label(img) == "Brush stroke"
    project.paint(ann.id, _rect(0, H, 0, 30), False)
    erased = painted & ~_rect(0, H, 0, 30)
    assert np.array_equal(project.mask(ann.id), erased)
    assert project.annotation(ann.id).area == int(erased.sum())
    assert project.undo(img) and np.array_equal(project.mask(ann.id), painted)
    assert project.undo(img) and np.array_equal(project.mask(ann.id), mask)
    assert project.annotation(ann.id).bbox == (20, 20, 60, 40)
    assert project.redo(img) and np.array_equal(project.mask(ann.id), painted)
    assert project.redo(img) and np.array_equal(project.mask(ann.id), erased)
    assert not project.can_redo(img)


def test_a_stroke_that_changes_nothing_is_not_an_undo_step(project: Project) -> None:
    img = _image(project, "a.png")
    ann = project.add_annotation(img, _rect(20, 60, 20, 80), None)
    project.paint(ann.id, _rect(30, 40, 30, 40), True)  # already inside the mask
    project.edit_mask(ann.id, _rect(20, 60, 20, 80))
    assert project.undo_label(img) == "Add annotation"


def test_undo_history_is_stored_as_diffs_not_snapshots(project: Project) -> None:
    img = _image(project, "a.png")
    ann = project.add_annotation(img, _rect(0, H, 0, W), None)
    project.paint(ann.id, _rect(5, 7, 5, 9), False)
    blob = project.store.conn.execute(
        "SELECT blob FROM history ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    diff = MaskDiff.from_bytes(blob)
    assert diff.box == (5, 5, 7, 9) and diff.n_changed == 8
    assert len(blob) < 100


def test_edits_of_auto_masks_become_edited_and_undo_restores_the_source(project: Project) -> None:
    img = _image(project, "a.png")
    ann = project.add_annotation(img, _rect(20, 60, 20, 80), None, "auto")
    project.edit_mask(ann.id, _rect(20, 60, 20, 90))
    assert project.annotation(ann.id).source == "edited"
    project.undo(img)
    assert project.annotation(ann.id).source == "auto"


def test_strokes_make_manual_masks_edited_in_one_undo_step(project: Project) -> None:
    img = _image(project, "a.png")
    ann = project.add_annotation(img, _rect(20, 60, 20, 80), None)
    assert ann.source == "manual"
    project.paint(ann.id, _rect(20, 60, 20, 80), True)  # changes no pixel: nothing recorded
    assert project.annotation(ann.id).source == "manual"
    assert project.undo_label(img) == "Add annotation"
    project.paint(ann.id, _rect(10, 20, 20, 80), False)  # the eraser outside the mask
    assert project.undo_label(img) == "Add annotation"
    project.paint(ann.id, _rect(60, 70, 20, 80), True)
    assert project.annotation(ann.id).source == "edited"
    project.undo(img)
    assert project.annotation(ann.id).source == "manual"
    np.testing.assert_array_equal(project.mask(ann.id), _rect(20, 60, 20, 80))
    project.redo(img)
    assert project.annotation(ann.id).source == "edited"
    proposal = project.add_annotation(img, _rect(0, 10, 0, 10), None, "proposal")
    project.paint(proposal.id, _rect(10, 15, 0, 10), True)
    assert project.annotation(proposal.id).source == "proposal"  # reviewed later


def test_delete_category_change_accept_and_their_undo(project: Project) -> None:
    img = _image(project, "a.png")
    cat = project.add_category("cat")
    keep = project.add_annotation(img, _rect(0, 10, 0, 10), None)
    props = project.add_annotations(
        img, [_rect(20, 30, 20, 30), _rect(40, 50, 40, 50)], source="proposal"
    )
    assert project.undo_label(img) == "Add 2 annotations"
    project.set_source(props[0].id, "auto")
    assert project.undo_label(img) == "Accept proposal"
    project.set_category(keep.id, cat.id)
    project.delete_annotation(props[1].id)
    assert [a.id for a in project.annotations(img)] == [keep.id, props[0].id]
    project.undo(img)
    assert [a.id for a in project.annotations(img)] == [keep.id, props[0].id, props[1].id]
    project.undo(img)
    assert project.annotation(keep.id).category_id is None
    project.undo(img)
    assert project.annotation(props[0].id).source == "proposal"
    project.undo(img)  # the whole batch of proposals goes in one step
    assert [a.id for a in project.annotations(img)] == [keep.id]
    with pytest.raises(EditError, match="no annotation"):
        project.mask(props[0].id)


def test_merge_and_split_and_their_undo(project: Project) -> None:
    img = _image(project, "a.png")
    a = project.add_annotation(img, _rect(0, 10, 0, 10), None)
    b = project.add_annotation(img, _rect(50, 60, 50, 70), None, "auto")
    merged = project.merge([a.id, b.id])
    assert merged.area == 100 + 200 and merged.source == "edited"
    assert [x.id for x in project.annotations(img)] == [merged.id]
    parts = project.split(merged.id)
    assert sorted(p.area for p in parts) == [100, 200]
    assert project.undo(img) and [x.id for x in project.annotations(img)] == [merged.id]
    assert project.undo(img) and [x.id for x in project.annotations(img)] == [a.id, b.id]
    assert np.array_equal(project.mask(b.id), _rect(50, 60, 50, 70))
    single = project.split(a.id)
    assert [x.id for x in single] == [a.id] and project.undo_label(img) == "Add annotation"
    with pytest.raises(EditError, match="at least two"):
        project.merge([a.id])


def test_undo_is_per_image(project: Project) -> None:
    a, b = _image(project, "a.png"), _image(project, "b.png")
    on_a = project.add_annotation(a, _rect(0, 10, 0, 10), None)
    project.add_annotation(b, _rect(0, 10, 0, 10), None)
    assert project.undo(a)
    assert project.annotations(a) == [] and len(project.annotations(b)) == 1
    assert not project.undo(a) and project.can_redo(a) and not project.can_redo(b)
    assert project.redo(a) and project.annotations(a)[0].id == on_a.id


def test_a_new_edit_after_undo_drops_the_redo_stack_and_purges(project: Project) -> None:
    img = _image(project, "a.png")
    a = project.add_annotation(img, _rect(0, 10, 0, 10), None)
    project.undo(img)
    project.add_annotation(img, _rect(20, 30, 20, 30), None)
    assert not project.can_redo(img)
    gone = project.store.conn.execute(
        "SELECT count(*) FROM annotations WHERE id = ?", (a.id,)
    ).fetchone()
    assert gone[0] == 0


def test_history_survives_a_restart_and_keeps_the_last_hundred(folder: Path) -> None:
    with Project.create(folder) as project:
        img = _image(project, "a.png")
        ann = project.add_annotation(img, _rect(0, 2, 0, 2), None)
        masks = [project.mask(ann.id)]
        for i in range(HISTORY_LIMIT + 30):
            y, x = divmod(i, 40)
            project.paint(ann.id, _rect(10 + y * 3, 12 + y * 3, x * 4, x * 4 + 3), True)
            masks.append(project.mask(ann.id))
    with Project.open(folder) as reopened:
        steps = 0
        while reopened.undo(img):
            steps += 1
            assert np.array_equal(reopened.mask(ann.id), masks[-1 - steps])
        assert HISTORY_LIMIT <= steps <= HISTORY_LIMIT + 30
        for _ in range(steps):
            reopened.redo(img)
        assert np.array_equal(reopened.mask(ann.id), masks[-1])


def test_clear_history_forgets_only_what_was_asked(project: Project) -> None:
    a, b = _image(project, "a.png"), _image(project, "b.png")
    project.add_annotation(a, _rect(0, 10, 0, 10), None)
    deleted = project.add_annotation(a, _rect(20, 30, 20, 30), None)
    project.delete_annotation(deleted.id)
    project.add_annotation(b, _rect(0, 10, 0, 10), None)
    project.clear_history(a)
    assert not project.can_undo(a) and project.can_undo(b)
    assert len(project.annotations(a)) == 1
    assert (
        project.store.conn.execute("SELECT count(*) FROM annotations WHERE alive = 0").fetchone()[0]
        == 0
    )
    project.clear_history()
    assert not project.can_undo(b)


def test_image_status_and_note(project: Project) -> None:
    img = _image(project, "b.png")
    project.set_image_status(img, "done")
    project.set_image_note(img, "blurry")
    assert [i.path for i in project.images("done")] == ["b.png"]
    assert project.image(img).note == "blurry"
    with pytest.raises(EditError, match="status must be"):
        project.set_image_status(img, "finished")


def test_relocate_images_matches_by_content_hash(tmp_path: Path, folder: Path) -> None:
    with Project.create(folder, tmp_path / "elsewhere.samstudio") as project:
        ann = project.add_annotation(_image(project, "a.png"), _rect(0, 10, 0, 10), None)
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(folder / "a.png", moved / "renamed_a.png")
    shutil.copytree(folder / "sub", moved / "deeper")
    shutil.rmtree(folder)
    with Project.open(tmp_path / "elsewhere.samstudio") as project:
        assert not project.image_path(ann.image_id).exists()
        assert project.relocate_images(moved) == 2
        paths = {i.path for i in project.images()}
        assert {"renamed_a.png", "deeper/c.png"} <= paths
        assert project.image_path(ann.image_id) == moved / "renamed_a.png"
    with Project.open(tmp_path / "elsewhere.samstudio", read_only=True) as project:
        assert project.root == moved  # the new root is saved


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_random_edit_sequences_match_a_snapshot_model(
    tmp_path_factory: pytest.TempPathFactory, seed: int
) -> None:
    """The diff-based history against the obvious model: a stack of full snapshots."""
    import random

    root = tmp_path_factory.mktemp("model")
    _save_png(root / "m.png", (24, 32), 0)
    rng = random.Random(seed)
    with Project.create(root) as project:
        img = project.images()[0].id
        cat = project.add_category("c").id
        done: list[dict[int, np.ndarray]] = [{}]  # snapshots after each operation
        undone: list[dict[int, np.ndarray]] = []
        for _ in range(25):
            state = {k: v.copy() for k, v in done[-1].items()}
            ids = sorted(state)
            roll = rng.random()
            if roll < 0.3 or not ids:
                m = np.random.default_rng(rng.randrange(10**6)).random((24, 32)) < 0.3
                m[rng.randrange(24), rng.randrange(32)] = True
                state[project.add_annotation(img, m, cat).id] = m
            elif roll < 0.55:
                aid, value = rng.choice(ids), rng.random() < 0.5
                stroke = _rect(
                    *sorted(rng.sample(range(25), 2)),
                    *sorted(rng.sample(range(33), 2)),
                    shape=(24, 32),
                )
                project.paint(aid, stroke, value)
                state[aid] = state[aid] | stroke if value else state[aid] & ~stroke
            elif roll < 0.65:
                aid = rng.choice(ids)
                project.delete_annotation(aid)
                del state[aid]
            elif roll < 0.72 and len(ids) >= 2:
                pair = rng.sample(ids, 2)
                union = state.pop(pair[0]) | state.pop(pair[1])
                state[project.merge(pair).id] = union
            elif roll < 0.88:
                if project.undo(img):
                    undone.append(done.pop())
                assert len(done) >= 1
                state = None  # type: ignore[assignment]
            else:
                if project.redo(img):
                    done.append(undone.pop())
                state = None  # type: ignore[assignment]
            if state is not None:
                if any(
                    not np.array_equal(state.get(k), done[-1].get(k))
                    for k in set(state) | set(done[-1])
                ):
                    done.append(state)
                    undone.clear()
            current = {a.id: project.mask(a.id) for a in project.annotations(img)}
            assert sorted(current) == sorted(done[-1])
            for k, m in current.items():
                assert np.array_equal(m, done[-1][k])


def test_a_history_that_does_not_fit_its_mask_is_refused_cleanly(project: Project) -> None:
    img = _image(project, "a.png")
    ann = project.add_annotation(img, _rect(0, 10, 0, 10), None)
    project.paint(ann.id, _rect(20, 30, 20, 30), True)
    # Someone changed the mask behind the history's back (a bug or a hand edit).
    from samstudio.core.document.history import encode_mask_columns

    counts, bbox, area = encode_mask_columns(np.asfortranarray(_rect(0, 5, 0, 5)))
    with project.store.transaction("tampering") as conn:
        conn.execute(
            "UPDATE annotations SET counts = ?, area = ? WHERE id = ?", (counts, area, ann.id)
        )
    with pytest.raises(CorruptProjectError, match="does not fit") as info:
        project.undo(img)
    assert str(project.path) in str(info.value)
    assert project.undo_label(img) == "Brush stroke"  # nothing was changed
    project.clear_history(img)
    assert not project.can_undo(img)


def test_prompts_with_numpy_values_are_stored_as_plain_json(project: Project) -> None:
    img = _image(project, "a.png")
    prompts = {
        "point_coords": np.array([[10.5, 20.0]], np.float32),
        "box": None,
        "iou": np.float32(0.5),
    }
    ann = project.add_annotation(img, _rect(0, 10, 0, 10), None, prompts=prompts)
    assert ann.prompts == {"point_coords": [[10.5, 20.0]], "box": None, "iou": 0.5}
    with pytest.raises(EditError, match="cannot be stored as JSON"):
        project.add_annotation(img, _rect(0, 10, 0, 10), None, prompts={"x": object()})
    assert len(project.annotations(img)) == 1
