"""The desktop build (`packaging/build_desktop.sh`, PyInstaller), as a user gets it.

Built from this checkout into a temporary folder, the frozen app passes its self-test
(sample photos, a mouse click, three candidates, Return, the mask in the store) through
ONNX Runtime without PyTorch; its command line segments an image exactly as this
installation's ONNX backend does; what needs PyTorch says so instead of a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
NAME = "SAM Studio"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="the build is checked on Linux here"),
    pytest.mark.skipif(sys.version_info < (3, 11), reason="the build script needs Python 3.11+"),
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("desktop")
    env = dict(os.environ, PYTHON=sys.executable, DESKTOP_VENV=str(out / "venv"),
               DESKTOP_DIST=str(out / "dist"), DESKTOP_WORK=str(out / "work"))  # fmt: skip
    done = subprocess.run(
        ["bash", str(REPO / "packaging" / "build_desktop.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / "dist" / NAME


def run(bundle: Path, program: str, *args: str, **kw) -> subprocess.CompletedProcess:  # noqa: ANN003
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **kw.pop("env", {}))
    return subprocess.run(
        [str(bundle / program), *args], env=env, capture_output=True, text=True, timeout=300, **kw
    )


def test_the_bundle_holds_the_demo_model_and_no_pytorch(bundle: Path) -> None:
    names = {p.name.lower() for p in bundle.rglob("*")}
    assert not names & {"torch", "torchvision", "segment_anything", "libtorch_cpu.so"}
    onnx = bundle / "_internal" / "resources" / "models" / "samstudio-demo" / "onnx"
    assert {"encoder.onnx", "decoder.onnx", "manifest.json"} <= {p.name for p in onnx.iterdir()}


def test_the_frozen_app_passes_its_self_test(bundle: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    home = tmp_path / "home"  # the per-user folders of a new user
    env = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "c")}
    env["SAMSTUDIO_DATA_DIR"] = env["SAMSTUDIO_CACHE_DIR"] = str(home / "not-used")
    done = run(bundle, NAME, "--self-test", str(report), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["ok"] and result["step"] == "done"
    assert result["backend"] == "onnxruntime" and not result["torch_imported"]
    assert result["model"].startswith("samstudio_demo_v1")
    ious = result["candidate_ious"]
    assert len(ious) == 3 and ious == sorted(ious, reverse=True)
    assert result["accepted_area"] > 0 and result["embedding_from_cache"] is False
    assert not (home / "not-used").exists()  # its own folders, not the user's


def test_the_frozen_command_line_segments_as_the_onnx_backend_does(
    bundle: Path, tmp_path: Path
) -> None:
    import skimage.data

    from samstudio.inference.loader import open_model
    from samstudio.inference.types import Prompts

    image = skimage.data.coffee()
    path = tmp_path / "coffee.png"
    Image.fromarray(image).save(path)
    out = tmp_path / "masks.npz"
    done = run(bundle, "samstudio", "predict", "--image", str(path), "--point", "300,200",
               "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    frozen = np.load(out)
    seg = open_model(None, device="cpu")
    assert seg.info.backend == "onnxruntime"
    here = seg.decode(seg.encode(image), Prompts(np.array([[300.0, 200.0]]), np.array([1])))
    np.testing.assert_allclose(frozen["iou_predictions"], here.iou_predictions, atol=1e-4)
    assert frozen["masks"].shape == (3, *image.shape[:2])
    for k in range(3):
        differ = np.count_nonzero(frozen["masks"][k] != (here.mask_logits(k) > 0))
        assert differ <= 0.001 * image.shape[0] * image.shape[1], differ


def test_the_frozen_command_line_auto_segments_into_coco(bundle: Path, tmp_path: Path) -> None:
    """Batch auto-segment in the desktop build (ONNX Runtime, pycocotools, the formats):
    one SA-1B file per image and a COCO file that pycocotools reads, as the source
    installation writes them."""
    from pycocotools.coco import COCO

    from samstudio.training.synthetic import make_scene

    folder = tmp_path / "images"
    folder.mkdir()
    for seed in (10_000_500, 10_000_501):
        Image.fromarray(make_scene(seed).image).save(folder / f"scene_{seed}.png")
    out, coco = tmp_path / "out", tmp_path / "coco.json"
    done = run(bundle, "samstudio", "auto-segment", str(folder), "--out", str(out),
               "--pred-iou-thresh", "0.5", "--stability-score-thresh", "0.8",
               "--coco", str(coco), "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*.json")) == [
        "scene_10000500.png.json",
        "scene_10000501.png.json",
    ]
    data = COCO(str(coco))
    assert len(data.getImgIds()) == 2 and len(data.getAnnIds()) > 0
    # the same masks as the source installation's generator with the same model and
    # parameters, in both the SA-1B files and the COCO file
    from samstudio.core.amg import AmgParams, generate_masks
    from samstudio.core.masks import decode_rle
    from samstudio.inference.loader import open_model

    seg = open_model(None, device="cpu")
    params = AmgParams(pred_iou_thresh=0.5, stability_score_thresh=0.8)
    names = {img["file_name"].split("/")[-1]: img["id"] for img in data.loadImgs(data.getImgIds())}
    for path in sorted(folder.glob("*.png")):
        here = generate_masks(seg, np.asarray(Image.open(path).convert("RGB")), params)
        sa1b = json.loads((out / f"{path.name}.json").read_text())["annotations"]
        anns = data.loadAnns(data.getAnnIds(imgIds=[names[path.name]]))
        assert len(here) == len(sa1b) == len(anns) > 0
        ours = sorted(int(decode_rle(r.segmentation).sum()) for r in here)
        assert sorted(int(data.annToMask(a).sum()) for a in anns) == ours
        assert sorted(int(a["area"]) for a in sa1b) == ours


def test_the_frozen_command_line_runs_a_study_and_inspects(bundle: Path, tmp_path: Path) -> None:
    """The researcher's commands in the desktop build: a study built with the demo model,
    ratings analysed with scipy and plotted with matplotlib, and Inspect's statistics."""
    from samstudio.core.study.model import load_study
    from samstudio.core.study.sheets import RatingSheet

    study = tmp_path / "study"
    done = run(bundle, "samstudio", "study", "create", "--synthetic", "3", "--items", "4",
               "--single-output", "--out", str(study))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = load_study(study)
    assert len(loaded.jobs) == 12
    for who, value in (("A", 4), ("B", 7)):
        sheet = RatingSheet(loaded, who)
        for job in sheet.order:
            sheet.rate(job, value)
    plots = tmp_path / "plots"
    done = run(bundle, "samstudio", "study", "stats", str(study), "--plots", str(plots),
               "--json", str(tmp_path / "report.json"), "--resamples", "200")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert [c["mean"] for c in report["conditions"]] == [5.5, 5.5, 5.5]
    for png in ("ratings_histogram.png", "mean_ratings.png"):
        with Image.open(plots / png) as im:
            assert im.size[0] > 300
    from samstudio.core.masks import encode_rle

    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:6] = True
    sa1b = tmp_path / "sa1b"
    sa1b.mkdir()
    (sa1b / "x.json").write_text(json.dumps({
        "image": {"image_id": 1, "file_name": "x.png", "width": 8, "height": 6},
        "annotations": [{"id": 1, "segmentation": encode_rle(mask), "area": 12,
                         "bbox": [2, 1, 4, 3]}],
    }))  # fmt: skip
    done = run(bundle, "samstudio", "inspect", "stats", str(sa1b / "x.json"), "--plots",
               str(tmp_path / "inspect"))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "masks" in done.stdout
    with Image.open(tmp_path / "inspect" / "mask_properties.png") as im:
        assert im.size[0] > 300


def test_what_needs_pytorch_says_so(bundle: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "sam_vit_b.pth"
    checkpoint.write_bytes(b"not read")
    image = tmp_path / "i.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    done = run(bundle, "samstudio", "predict", "--model", str(checkpoint), "--image", str(image),
               "--point", "4,4", "--out", str(tmp_path / "m.npz"))  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "PyTorch backend is not installed" in done.stderr and str(checkpoint) in done.stderr
    config = REPO / "resources" / "models" / "samstudio-demo" / "train_config.yaml"
    done = run(bundle, "samstudio", "train", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "samstudio train: this needs torch" in done.stderr
