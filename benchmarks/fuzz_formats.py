"""Full fuzz run: >= 10,000 mutated COCO / COCO-results / SA-1B / labelme documents and
corrupted image files, with the properties of tests/unit/test_fuzz_formats.py.

    .venv/bin/python benchmarks/fuzz_formats.py [--per-target 2200] [--images 2000]

Prints one JSON object: examples run per target, the total, and any failure (the first
falsifying example hypothesis found for that target, after shrinking). Exit status 1 when
a target failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit"))
sys.path.insert(0, str(ROOT))

import test_fuzz_formats as fz  # noqa: E402
from hypothesis import given  # noqa: E402


def run_target(name: str, n: int, folder: Path) -> dict[str, Any]:
    count = 0
    if name == "image-bytes":

        @fz.fuzz_settings(n)
        @given(fz.corrupted())
        def run(data: bytes) -> None:
            nonlocal count
            count += 1
            fz.check_image_bytes(data)

    else:
        seed, reader = fz.TARGETS[name]

        @fz.fuzz_settings(n)
        @given(fz.mutated(seed()))
        def run(doc: Any) -> None:
            nonlocal count
            count += 1
            fz.check_import(doc, reader, folder)

    start = time.perf_counter()
    try:
        run()
        failure = None
    except Exception as exc:  # report, do not hide: the script exits 1
        failure = "".join(traceback.format_exception_only(type(exc), exc)).strip()[-2000:]
    return {"examples": count, "seconds": round(time.perf_counter() - start, 1), "failure": failure}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-target", type=int, default=2200, help="documents per format")
    parser.add_argument("--images", type=int, default=2000, help="corrupted image files")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in fz.TARGETS:
            results[name] = run_target(name, args.per_target, Path(tmp))
            print(f"{name}: {results[name]}", file=sys.stderr)
        results["image-bytes"] = run_target("image-bytes", args.images, Path(tmp))
    documents = sum(r["examples"] for k, r in results.items() if k != "image-bytes")
    out = {
        "documents": documents,
        "image_files": results["image-bytes"]["examples"],
        "total": documents + results["image-bytes"]["examples"],
        "targets": results,
        "failures": [k for k, r in results.items() if r["failure"]],
    }
    print(json.dumps(out, indent=2))
    return 1 if out["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
