"""`samstudio predict` and `samstudio embed` driven as a user would, in-process.

A SAM Studio model file built with the real demo architecture (random weights, 256 px
input) keeps the encoder cheap; the official-format vit_b path reuses the session's
embedding through the on-disk cache, as `samstudio embed` then `predict --cache` would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from samstudio.cli.main import main

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
pytest.importorskip("segment_anything", reason="Meta's segment-anything is not installed")


@pytest.fixture(scope="module")
def demo_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    demo_arch = pytest.importorskip("samstudio.inference.demo_arch")
    torch.manual_seed(0)
    config = {"name": "samstudio_demo_v1"}
    sam = demo_arch.build_demo_sam(config)
    path = tmp_path_factory.mktemp("demo") / "demo_random.pth"
    torch.save({"samstudio_model": config, "state_dict": sam.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory, test_image: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("images") / "shapes.png"
    Image.fromarray(test_image).save(path)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_one_point_three_masks(
    demo_checkpoint: Path, image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.npz"
    argv = ["predict", "--model", str(demo_checkpoint), "--image", str(image_file)]
    code, stdout, err = _run([*argv, "--point", "150,110", "--out", str(out)], capsys)
    assert code == 0, err
    assert "3 mask(s) of 600x400" in stdout
    with np.load(out) as result:
        masks, iou, low_res = result["masks"], result["iou_predictions"], result["low_res_logits"]
    assert masks.shape == (3, 400, 600) and masks.dtype == bool
    assert iou.shape == (3,) and np.all(np.diff(iou) <= 0)
    assert low_res.shape == (3, 64, 64)  # the demo model's 256 px input gives 64x64 logits

    # The same prompts through the Python API give the same result.
    from samstudio.core.images import load_image
    from samstudio.inference.loader import open_model
    from samstudio.inference.types import Prompts

    model = open_model(demo_checkpoint, device="cpu")
    assert model.info.architecture == "samstudio_demo_v1"
    prediction = model.decode(
        model.encode(load_image(image_file)),
        Prompts(points=np.array([[150, 110]], np.float32), labels=[1]),
    )
    np.testing.assert_allclose(prediction.low_res_logits, low_res, atol=1e-5, rtol=0)
    assert np.array_equal(prediction.masks, masks)

    # Feed the best logits back with a background point and a box, single mask.
    np.save(tmp_path / "previous.npy", low_res[0])
    refined = tmp_path / "refined.npz"
    code, stdout, err = _run(
        [
            *argv,
            "--point",
            "150,110,1",
            "--point",
            "300,300,0",
            "--box",
            "55,55,215,225",
            "--mask-input",
            str(tmp_path / "previous.npy"),
            "--single-mask",
            "--out",
            str(refined),
        ],
        capsys,
    )
    assert code == 0, err
    with np.load(refined) as result:
        assert result["masks"].shape == (1, 400, 600)
        assert result["iou_predictions"].shape == (1,)


@pytest.mark.slow
def test_predict_official_vit_b_checkpoint_via_cache(
    random_vit_b_checkpoint: Path,
    torch_segmenter: Any,
    torch_embedding: Any,
    image_file: Path,
    test_image: np.ndarray,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """predict --cache on an official-format vit_b checkpoint, after its embedding was
    cached (what `samstudio embed` does), writes the masks the API gives."""
    from samstudio.inference.cache import EmbeddingCache, cache_key, image_content_hash
    from samstudio.inference.types import Prompts

    info = torch_segmenter.info
    key = cache_key(image_content_hash(test_image), info.model_id, info.preprocessing_id)
    cache = EmbeddingCache()
    cache.put(key, torch_embedding)
    cached = cache.get(key)
    assert cached is not None

    out = tmp_path / "vit_b.npz"
    code, stdout, err = _run(
        [
            "predict",
            "--model",
            str(random_vit_b_checkpoint),
            "--image",
            str(image_file),
            "--point",
            "150,110",
            "--point",
            "390,240",
            "--cache",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    expected = torch_segmenter.decode(
        cached, Prompts(points=np.array([[150, 110], [390, 240]], np.float32), labels=[1, 1])
    )
    with np.load(out) as result:
        assert result["masks"].shape == (1, 400, 600)
        assert result["low_res_logits"].shape == (1, 256, 256)
        np.testing.assert_allclose(result["low_res_logits"], expected.low_res_logits, atol=1e-5)
        np.testing.assert_allclose(result["iou_predictions"], expected.iou_predictions, atol=1e-5)
        assert np.array_equal(result["masks"], expected.masks)


def test_predict_with_cache_on_a_full_disk_still_writes_the_masks(
    demo_checkpoint: Path,
    image_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """predict --cache when the cache cannot be written (disk full): the computed
    embedding is used, the masks are written, a warning names the cache file."""
    import errno
    import os

    import samstudio.inference.cache as cache_module

    def full_disk(self: Any, key: str, embedding: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache_module.EmbeddingCache, "put", full_disk)
    out = tmp_path / "result.npz"
    argv = ["predict", "--model", str(demo_checkpoint), "--image", str(image_file)]
    with pytest.warns(
        cache_module.CacheWriteWarning, match=r"cannot write .*\.emb: No space left on device"
    ):
        code, stdout, err = _run(
            [*argv, "--point", "150,110", "--cache", "--out", str(out)], capsys
        )
    assert code == 0, err
    assert "Traceback" not in err
    with np.load(out) as result:
        assert result["masks"].shape == (3, 400, 600)


def test_embed_on_a_full_cache_disk_stops_with_a_clear_error(
    demo_checkpoint: Path,
    image_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno

    import samstudio.inference.cache as cache_module

    def full_disk(self: Any, key: str, embedding: Any) -> None:
        raise OSError(errno.ENOSPC, f"cannot write {self.root}/x.emb: No space left on device")

    monkeypatch.setattr(cache_module.EmbeddingCache, "put", full_disk)
    code, out, err = _run(
        ["embed", "--model", str(demo_checkpoint), str(image_file), str(image_file)], capsys
    )
    assert code == 1
    assert "x.emb: No space left on device; stopped" in err and "Traceback" not in err
    assert "0 embedded, 0 already cached, 1 failed" in out


def test_embed_fills_the_cache_once(
    demo_checkpoint: Path, image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from samstudio.core.images import load_image
    from samstudio.inference.cache import EmbeddingCache, cache_key, image_content_hash
    from samstudio.inference.loader import open_model

    second = tmp_path / "second.jpg"
    Image.fromarray(np.full((50, 80, 3), 90, np.uint8)).save(second)
    code, out, err = _run(
        ["embed", "--model", str(demo_checkpoint), str(image_file), str(second)], capsys
    )
    assert code == 0, err
    assert "2 embedded, 0 already cached, 0 failed" in out
    info = open_model(demo_checkpoint, device="cpu").info
    for path in (image_file, second):
        key = cache_key(image_content_hash(load_image(path)), info.model_id, info.preprocessing_id)
        embedding = EmbeddingCache().get(key)
        assert embedding is not None and embedding.model_id == info.model_id

    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    code, out, err = _run(
        ["embed", "--model", str(demo_checkpoint), str(image_file), str(broken)], capsys
    )
    assert code == 1
    assert "0 embedded, 1 already cached, 1 failed" in out
    assert str(broken) in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--point", "1,2,3,4"], "expected 2 or 3 numbers"),
        (["--point", "a,b"], "comma-separated numbers"),
        (["--point", "10,10,2"], "LABEL must be 1 (foreground) or 0 (background)"),
        (["--point", "5000,10"], "outside the image"),
        (["--box", "200,200,100,100"], "top-left corner first"),
        (["--box", "1,2,3"], "expected 4 numbers"),
        ([], "give at least one --point"),
        (["--mask-input", "MISSING.npy"], "does not exist"),
        (["--mask-input", "BAD_SHAPE.npy"], "expected low-res logits"),
    ],
)
def test_bad_prompts_exit_1_with_a_message(
    demo_checkpoint: Path,
    image_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    np.save(tmp_path / "BAD_SHAPE.npy", np.zeros((3, 64, 64), np.float32))
    extra = [str(tmp_path / e) if e.endswith(".npy") else e for e in extra]
    out = tmp_path / "r.npz"
    argv = ["predict", "--model", str(demo_checkpoint), "--image", str(image_file)]
    code, _, err = _run([*argv, *extra, "--out", str(out)], capsys)
    assert code == 1
    assert message in err and err.startswith("error: ")
    assert not out.exists()


def test_bad_model_and_image_exit_1(
    demo_checkpoint: Path, image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.npz"
    prompt = ["--point", "10,10", "--out", str(out)]
    notes = tmp_path / "notes.pth"
    notes.write_text("not a model")
    cases = [
        (["--model", str(tmp_path / "nope.pth"), "--image", str(image_file)], "does not exist"),
        (["--model", str(notes), "--image", str(image_file)], "not a PyTorch checkpoint"),
        (["--model", "no_such_model", "--image", str(image_file)], "unknown model 'no_such_model'"),
        (
            ["--model", "sam_vit_b", "--image", str(image_file)],
            "samstudio model download sam_vit_b",
        ),
        (["--model", str(tmp_path), "--image", str(image_file)], "no manifest.json"),
        (["--model", str(demo_checkpoint), "--image", str(tmp_path / "x.png")], "does not exist"),
        (["--model", str(demo_checkpoint), "--image", str(notes)], "cannot load image"),
    ]
    for args, message in cases:
        code, _, err = _run(["predict", *args, *prompt], capsys)
        assert code == 1, args
        assert message in err, (args, err)
        assert "Traceback" not in err
    assert not out.exists()


def test_predict_runs_as_a_command(demo_checkpoint: Path, image_file: Path, tmp_path: Path) -> None:
    """The real entry point: exit codes and stderr of a separate process."""
    out = tmp_path / "cmd.npz"
    base = [sys.executable, "-m", "samstudio", "predict", "--model", str(demo_checkpoint)]
    ok = subprocess.run(
        [*base, "--image", str(image_file), "--box", "55,55,215,225", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    with np.load(out) as result:
        assert result["masks"].shape == (1, 400, 600)
    bad = subprocess.run(
        [*base, "--image", str(image_file), "--point", "1,2,9", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1
    assert "LABEL must be" in bad.stderr and "Traceback" not in bad.stderr
