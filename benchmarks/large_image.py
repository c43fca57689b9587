"""Peak memory of opening a 20000x15000 JPEG as a downscaled view, versus a full decode.

    .venv/bin/python benchmarks/large_image.py [--width 20000 --height 15000 --max-side 1024]

Each measurement runs in its own child process and reports its peak resident memory
(``ru_maxrss``), so numbers do not mix:
- ours: ``load_image(path, max_side)`` (libjpeg draft decode) and ``image_size(path)``;
- ours, full resolution: ``load_image(path)``, which must refuse with ``ImageLoadError``;
- reference: the naive way, Pillow ``open().convert("RGB")`` then a resize.
Prints JSON with seconds, peak MB and the ratio ours/reference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MAKE = """
import sys, numpy as np
from PIL import Image
w, h, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
Image.MAX_IMAGE_PIXELS = None
tile = np.zeros((500, 500, 3), np.uint8)
y, x = np.mgrid[0:500, 0:500]
tile[..., 0], tile[..., 1], tile[..., 2] = x % 256, y % 256, (x * y) % 256
img = Image.fromarray(np.tile(tile, (h // 500 + 1, w // 500 + 1, 1))[:h, :w])
img.save(path, quality=85)
"""

MEASURE = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
mode, path, max_side = sys.argv[2], sys.argv[3], int(sys.argv[4])
start = time.perf_counter()
result = {}
if mode == "ours":
    from samstudio.core.images import image_size, load_image
    result["image_size"] = list(image_size(path))
    result["shape"] = list(load_image(path, max_side=max_side).shape)
elif mode == "ours_full":
    from samstudio.core.images import ImageLoadError, load_image
    try:
        load_image(path)
        result["error"] = None
    except ImageLoadError as exc:
        result["error"] = str(exc)
else:
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None
    img = Image.open(path).convert("RGB")
    scale = max_side / max(img.size)
    result["shape"] = list(img.resize((round(img.width * scale), round(img.height * scale))).size[::-1]) + [3]
result["seconds"] = round(time.perf_counter() - start, 2)
result["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(result))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=20000)
    parser.add_argument("--height", type=int, default=15000)
    parser.add_argument("--max-side", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.jpg"
        subprocess.run(
            [sys.executable, "-c", MAKE, str(args.width), str(args.height), str(path)], check=True
        )
        out = {
            "image": [args.width, args.height],
            "file_mb": round(path.stat().st_size / 1e6, 1),
            "max_side": args.max_side,
        }
        for mode in ("ours", "ours_full", "reference"):
            proc = subprocess.run(
                [sys.executable, "-c", MEASURE, str(ROOT), mode, str(path), str(args.max_side)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                out[mode] = {"failed": proc.stderr.strip()[-500:]}
            else:
                out[mode] = json.loads(proc.stdout)
    try:
        out["peak_memory_ratio_ours_vs_reference"] = round(
            out["ours"]["peak_mb"] / out["reference"]["peak_mb"], 3
        )  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
