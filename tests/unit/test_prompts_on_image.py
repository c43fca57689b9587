"""Prompts off the image are a PromptError naming the image size, not an empty mask
(Meta's predictor silently returns one). Points must lie in [0, W] x [0, H] (pixels of
the image as displayed); a box must overlap the image (partly outside is normal: a box
dragged past the edge). Both backends share the one check; automatic mask generation
(`decode_points_batch`, tested in test_amg*.py) does not go through it. The ONNX cases use the shipped demo
export; the torch cases a tiny random SAM and are skipped without torch."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from samstudio.cli.main import main
from samstudio.inference.errors import PromptError
from samstudio.inference.onnx_backend import OnnxSegmenter
from samstudio.inference.preprocess import check_prompts_on_image
from samstudio.inference.types import Prompts

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "models" / "samstudio-demo" / "onnx"
H, W = 400, 600
SIZE = "600x400"


def _prompts(points: Any = (), labels: Any = (), box: Any = None) -> Prompts:
    return Prompts(
        points=np.asarray(points, np.float32).reshape(-1, 2),
        labels=np.asarray(labels, np.int32),
        box=box,
    )


OFF_THE_IMAGE = {
    "point far right": (_prompts([[5000, 10]], [1]), "point 5000,10 is outside"),
    "point left": (_prompts([[-0.5, 10]], [1]), "point -0.5,10 is outside"),
    "point below": (_prompts([[10, 400.5]], [0]), "point 10,400.5 is outside"),
    "one point of three": (
        _prompts([[10, 10], [700, 10], [20, 20]], [1, 0, 1]),
        "point 700,10 is outside",
    ),
    "two points of three": (
        _prompts([[10, 10], [700, 10], [20, -5]], [1, 0, 1]),
        "point 700,10 (and 1 more) is outside",
    ),
    "box beside": (_prompts(box=[5000, 5000, 6000, 6000]), "box 5000,5000,6000,6000 has no part"),
    "box above": (_prompts(box=[10, -50, 100, -1]), "box 10,-50,100,-1 has no part"),
    "box only touching the right edge": (
        _prompts(box=[600, 10, 650, 20]),
        "box 600,10,650,20 has no part",
    ),
    "box only touching the left edge": (
        _prompts(box=[-50, 10, 0, 20]),
        "box -50,10,0,20 has no part",
    ),
    "box only touching the top edge": (
        _prompts(box=[10, -50, 100, 0]),
        "box 10,-50,100,0 has no part",
    ),
    "box only touching the bottom edge": (
        _prompts(box=[10, 400, 100, 450]),
        "box 10,400,100,450 has no part",
    ),
    "points inside, box beside": (
        _prompts([[10, 10]], [1], box=[601, 0, 700, 100]),
        "box 601,0,700,100 has no part",
    ),
}

ON_THE_IMAGE = {
    "point inside": _prompts([[300, 200]], [1]),
    "corners and edges": _prompts(
        [[0, 0], [600, 400], [600, 0], [0, 400], [0, 200]], [1, 0, 0, 0, 1]
    ),
    "box inside": _prompts(box=[10, 10, 200, 200]),
    "box partly outside": _prompts(box=[-100, -100, 50, 50]),
    "box around the image": _prompts(box=[-10, -10, 610, 410]),
    "box reaching one pixel in": _prompts(box=[599, 10, 650, 20]),
    "point and box partly outside": _prompts([[20, 20]], [1], box=[500, 300, 900, 900]),
}


@pytest.mark.parametrize("case", list(OFF_THE_IMAGE))
def test_the_check_refuses_prompts_off_the_image(case: str) -> None:
    prompts, message = OFF_THE_IMAGE[case]
    with pytest.raises(PromptError, match=re.escape(message)) as info:
        check_prompts_on_image(prompts, (H, W))
    assert f"image ({SIZE} pixels" in str(info.value)


@pytest.mark.parametrize("case", list(ON_THE_IMAGE))
def test_the_check_accepts_prompts_on_the_image(case: str) -> None:
    check_prompts_on_image(ON_THE_IMAGE[case], (H, W))


def test_a_mask_input_alone_has_no_coordinates_to_check() -> None:
    check_prompts_on_image(Prompts(mask_input=np.zeros((64, 64), np.float32)), (H, W))


# ----------------------------------------------------------------- both backends


@pytest.fixture(scope="module")
def onnx_model() -> tuple[Any, Any]:
    model = OnnxSegmenter.from_directory(SHIPPED, ["CPUExecutionProvider"])
    return model, model.encode(np.full((H, W, 3), 120, np.uint8))


@pytest.fixture(scope="module")
def torch_model() -> tuple[Any, Any]:
    pytest.importorskip("torch", reason="PyTorch is not installed")
    pytest.importorskip("segment_anything", reason="Meta's segment-anything is not installed")
    from model_fixtures import build_tiny_sam

    from samstudio.inference.torch_backend import TorchSegmenter

    model = TorchSegmenter(build_tiny_sam(), "tiny-test", device="cpu")
    return model, model.encode(np.full((H, W, 3), 120, np.uint8))


@pytest.fixture(params=["onnx", "torch"])
def backend(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    return request.getfixturevalue(f"{request.param}_model")


@pytest.mark.parametrize("case", list(OFF_THE_IMAGE))
def test_decode_refuses_prompts_off_the_image(backend: tuple[Any, Any], case: str) -> None:
    model, embedding = backend
    prompts, message = OFF_THE_IMAGE[case]
    for multimask in (True, False):
        with pytest.raises(PromptError, match=re.escape(message)) as info:
            model.decode(embedding, prompts, multimask)
        assert f"image ({SIZE} pixels" in str(info.value)


@pytest.mark.parametrize("case", list(ON_THE_IMAGE))
def test_decode_accepts_prompts_on_the_image(backend: tuple[Any, Any], case: str) -> None:
    model, embedding = backend
    prediction = model.decode(embedding, ON_THE_IMAGE[case])
    assert prediction.masks.shape[1:] == (H, W)


# ----------------------------------------------------------------- samstudio predict


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "grey.png"
    Image.fromarray(np.full((H, W, 3), 120, np.uint8)).save(path)
    return path


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (["--box", "5000,5000,6000,6000"], "box 5000,5000,6000,6000 has no part on the image"),
        (["--point", "5000,10"], "point 5000,10 is outside the image"),
        (["--point", "10,10", "--point", "10,-3"], "point 10,-3 is outside the image"),
        # a value starting with a minus sign, written with a space (argparse took it for
        # an unknown option and exited 2 with "expected one argument")
        (["--point", "-3,10"], "point -3,10 is outside the image"),
        (["--poi", "-3,10"], "point -3,10 is outside the image"),  # argparse's abbreviation
    ],
)
def test_predict_reports_prompts_off_the_image_in_one_line(
    image_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    prompt: list[str],
    message: str,
) -> None:
    out = tmp_path / "r.npz"
    code = main(
        ["predict", "--model", str(SHIPPED), "--image", str(image_file), *prompt, "--out", str(out)]
    )
    _, err = capsys.readouterr()
    assert code == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message in err and f"({SIZE} pixels" in err and str(image_file) in err
    assert not out.exists()


def test_predict_accepts_a_box_partly_outside(
    image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.npz"
    argv = ["predict", "--model", str(SHIPPED), "--image", str(image_file)]
    code = main([*argv, "--box=-50,-50,300,200", "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    with np.load(out) as result:
        assert result["masks"].shape == (1, H, W)
        with_equals = result["masks"].copy()
    # the same box written as two words, the way a shell user types it
    code = main([*argv, "--box", "-50,-50,300,200", "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    with np.load(out) as result:
        assert np.array_equal(result["masks"], with_equals)
