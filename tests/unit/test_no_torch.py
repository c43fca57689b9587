"""`samstudio.core` and the ONNX Runtime path work on a machine without torch.

Each check runs in a fresh interpreter in which a meta-path hook refuses to import
torch, torchvision and segment_anything and records every attempt with its stack. The
child imports the Qt-free packages (and, in the second test, encodes an image and
decodes prompts with a tiny exported ONNX model); the test fails if anything tried to
import torch, naming the importer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BLOCKED = ("torch", "torchvision", "segment_anything")
# Inference modules that must not need torch (those that exist in this checkout).
TORCH_FREE_INFERENCE = (
    "samstudio.inference",
    "samstudio.inference.types",
    "samstudio.inference.errors",
    "samstudio.inference.preprocess",
    "samstudio.inference.onnx_backend",
    "samstudio.inference.cache",
    "samstudio.inference.catalog",
    "samstudio.inference.download",
    "samstudio.inference.registry",
    "samstudio.inference.loader",
)

CHILD_PRELUDE = """
import importlib, importlib.util, json, pkgutil, sys, traceback

BLOCKED = {blocked!r}
ATTEMPTS = []

class RefuseTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            ATTEMPTS.append({{"module": name, "stack": "".join(traceback.format_stack(limit=12))}})
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by test_no_torch)")
        return None

sys.meta_path.insert(0, RefuseTorch())

imported = []
import samstudio.core
for info in pkgutil.walk_packages(samstudio.core.__path__, "samstudio.core."):
    importlib.import_module(info.name)
    imported.append(info.name)
for name in {torch_free!r}:
    if importlib.util.find_spec(name) is not None:
        importlib.import_module(name)
        imported.append(name)
"""

CHILD_REPORT = """
print(json.dumps({
    "imported": imported,
    "attempts": ATTEMPTS,
    "torch_loaded": [m for m in sys.modules if m.split(".")[0] in BLOCKED and sys.modules[m] is not None],
}))
"""

CHILD_ONNX = """
import numpy as np
from samstudio.inference.onnx_backend import OnnxSegmenter
from samstudio.inference.types import Prompts

seg = OnnxSegmenter.from_directory(sys.argv[1])
image = np.load(sys.argv[2])
emb = seg.encode(image)
pred = seg.decode(emb, Prompts(points=[[150.0, 140.0]], labels=[1]), multimask=True)
box = seg.decode(emb, Prompts(box=[60.0, 50.0, 330.0, 260.0]), multimask=False)
batch = seg.decode_points_batch(emb, np.array([[10.0, 10.0], [300.0, 200.0]]))
np.savez(sys.argv[3], features=emb.features, point_logits=pred.low_res_logits,
         point_iou=pred.iou_predictions, point_masks=pred.masks, box_logits=box.low_res_logits,
         batch_logits=batch.low_res_logits)
imported.append("(ran encode + decode on " + seg.info.device + ")")
"""


def run_child(code: str, *args: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"child failed:\n{proc.stderr[-4000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    attempts = report["attempts"]
    assert not attempts, "torch was imported without need:\n" + "\n".join(
        f"{a['module']} from\n{a['stack']}" for a in attempts
    )
    assert report["torch_loaded"] == []
    return report


def prelude() -> str:
    return CHILD_PRELUDE.format(blocked=BLOCKED, torch_free=TORCH_FREE_INFERENCE)


def test_core_and_inference_import_without_torch() -> None:
    report = run_child(prelude() + CHILD_REPORT)
    assert "samstudio.core.masks" in report["imported"]
    assert "samstudio.inference.onnx_backend" in report["imported"]


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch", reason="exporting the test model needs PyTorch")
    pytest.importorskip("segment_anything", reason="exporting needs segment-anything")
    from model_fixtures import build_tiny_sam

    from samstudio.inference.onnx_export import export_onnx

    return export_onnx(build_tiny_sam(), tmp_path_factory.mktemp("no_torch") / "tiny")


def test_onnx_encode_and_decode_without_torch(
    tiny_export: Path, test_image: np.ndarray, tmp_path: Path
) -> None:
    """The same numbers as in a process that has torch loaded."""
    from samstudio.inference.onnx_backend import OnnxSegmenter
    from samstudio.inference.types import Prompts

    image_path = tmp_path / "image.npy"
    np.save(image_path, test_image)
    out = tmp_path / "child.npz"
    report = run_child(
        prelude() + CHILD_ONNX + CHILD_REPORT, str(tiny_export), str(image_path), str(out)
    )
    assert any(item.startswith("(ran encode + decode") for item in report["imported"])
    child = np.load(out)
    seg = OnnxSegmenter.from_directory(tiny_export)
    emb = seg.encode(test_image)
    pred = seg.decode(emb, Prompts(points=[[150.0, 140.0]], labels=[1]), multimask=True)
    np.testing.assert_allclose(child["features"], emb.features, atol=1e-6, rtol=0)
    np.testing.assert_allclose(child["point_logits"], pred.low_res_logits, atol=1e-6, rtol=0)
    assert child["point_masks"].shape == (3, *test_image.shape[:2])
    assert child["box_logits"].shape == (1, 64, 64)
    assert child["batch_logits"].shape == (2, 3, 64, 64)
