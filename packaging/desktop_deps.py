"""Print the runtime dependencies of pyproject.toml that the desktop build installs, one
per line: all of `project.dependencies` but PyTorch, torchvision, segment-anything and
onnx (training, `.pth` checkpoints and ONNX export; the build runs ONNX models only).

    python packaging/desktop_deps.py pyproject.toml
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    sys.exit("building the desktop app needs Python 3.11 or later (tomllib)")

LEFT_OUT = {"torch", "torchvision", "segment-anything", "onnx"}


def desktop_dependencies(pyproject: Path) -> list[str]:
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    keep = []
    for spec in deps:
        name = re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].strip().lower()
        if name not in LEFT_OUT:
            keep.append(spec)
    return keep


if __name__ == "__main__":
    print("\n".join(desktop_dependencies(Path(sys.argv[1]))))
