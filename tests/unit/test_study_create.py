"""What `samstudio study create` and Study ▸ New study… share (`core.study.create`):
model and dataset names, new-or-empty folders, removing a build that did not finish."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from samstudio.core.study.create import (
    check_empty_folder,
    open_study_models,
    remove_unfinished_study,
    split_coco_specs,
    split_model_spec,
)
from samstudio.core.study.model import StudyError
from samstudio.inference.errors import ModelLoadError


def test_names_as_typed() -> None:
    assert split_model_spec("SAM B=sam_vit_b") == ("SAM B", "sam_vit_b")
    assert split_model_spec("sam_vit_b") == (None, "sam_vit_b")
    assert split_model_spec("=x") == (None, "=x")
    assert split_coco_specs(["LVIS=a/lvis.json", "b/val.json"]) == [
        ("LVIS", "a/lvis.json"),
        ("val", "b/val.json"),
    ]
    with pytest.raises(ValueError, match="NAME=ANNOTATIONS.json"):
        split_coco_specs(["=a.json"])


def test_models_are_named_by_the_user_then_by_their_id() -> None:
    def open_model(spec, device=None):  # noqa: ANN001,ANN202
        model_id = "demo" if spec is None else "same"
        return SimpleNamespace(info=SimpleNamespace(model_id=model_id), spec=spec)

    models = open_study_models(
        [(None, None), (None, "a.pth"), (None, "b.pth"), ("Mine", "c.pth")], None, open_model
    )
    assert [name for name, _ in models] == ["demo", "a.pth", "b.pth", "Mine"]
    with pytest.raises(ModelLoadError, match="two models are named 'X'"):
        open_study_models([("X", "a.pth"), ("X", "b.pth")], None, open_model)


def test_only_a_new_or_empty_folder_is_taken(tmp_path: Path) -> None:
    assert check_empty_folder(tmp_path / "new") is False
    assert check_empty_folder(tmp_path) is True
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(StudyError, match="not empty .*notes.txt"):
        check_empty_folder(tmp_path)
    with pytest.raises(StudyError, match="is a file"):
        check_empty_folder(tmp_path / "notes.txt")


def test_an_unfinished_build_is_removed_and_a_finished_one_kept(tmp_path: Path) -> None:
    new = tmp_path / "new"
    (new / "images").mkdir(parents=True)
    (new / "images" / "i0001.png").write_bytes(b"png")
    remove_unfinished_study(new, existed=False)
    assert not new.exists()

    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / ".study.json.abc.tmp").write_bytes(b"{")
    remove_unfinished_study(empty, existed=True)
    assert empty.is_dir() and not any(empty.iterdir())

    done = tmp_path / "done"
    (done / "images").mkdir(parents=True)
    (done / "study.json").write_text("{}")
    remove_unfinished_study(done, existed=False)
    assert (done / "study.json").exists() and (done / "images").is_dir()
