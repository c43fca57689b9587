"""Where PyTorch is missing (the desktop build), what needs it fails with a message that
says so, not a traceback: a `.pth` checkpoint and the commands that train or export."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samstudio.cli.main import main
from samstudio.inference.errors import ModelLoadError
from samstudio.inference.loader import open_model


@pytest.fixture
def no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if name.split(".")[0] in ("torch", "segment_anything"):
            return None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_a_checkpoint_without_pytorch_is_a_clear_error(no_torch, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "sam_vit_b.pth"
    path.write_bytes(b"never read")
    with pytest.raises(ModelLoadError, match="PyTorch backend is not installed") as err:
        open_model(path)
    assert str(path) in str(err.value)


def test_predict_with_a_checkpoint_without_pytorch_exits_1(no_torch, tmp_path, capsys) -> None:  # noqa: ANN001
    path = tmp_path / "sam_vit_b.pth"
    path.write_bytes(b"never read")
    image = tmp_path / "i.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    code = main(["predict", "--model", str(path), "--image", str(image), "--point", "4,4",
                 "--out", str(tmp_path / "m.npz")])  # fmt: skip
    assert code == 1
    assert "PyTorch backend is not installed" in capsys.readouterr().err


def _with_command(monkeypatch, name: str, func) -> None:  # noqa: ANN001
    """Make `samstudio NAME` run `func` (what the command would do in that installation)."""
    import samstudio.cli.main as cli

    real_build = cli.build_parser

    def build_parser():  # noqa: ANN202
        parser = real_build()
        for action in parser._subparsers._group_actions:
            action.choices[name].set_defaults(func=func)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_parser)


def test_a_command_that_needs_pytorch_says_so(no_torch, monkeypatch, tmp_path, capsys) -> None:  # noqa: ANN001
    def train_without_torch(_args) -> int:  # noqa: ANN001
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    _with_command(monkeypatch, "train", train_without_torch)
    config = tmp_path / "c.yaml"
    config.write_text("model: {}\n")
    assert main(["train", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "samstudio train: this needs torch" in err and "install SAM Studio from source" in err


@pytest.mark.parametrize("missing", ["cv2", "torch._C"])
def test_other_missing_modules_are_not_hidden(missing, monkeypatch) -> None:  # noqa: ANN001
    """Another module, or a part of an installed PyTorch (a broken installation): the
    traceback is kept, it says more than "install PyTorch"."""

    def broken(_args) -> int:  # noqa: ANN001
        raise ModuleNotFoundError(f"No module named {missing!r}", name=missing)

    _with_command(monkeypatch, "info", broken)
    if missing.startswith("torch"):
        pytest.importorskip("torch")
    with pytest.raises(ModuleNotFoundError):
        main(["info"])
