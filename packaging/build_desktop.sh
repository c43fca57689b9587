#!/usr/bin/env bash
# Build the desktop app with PyInstaller into "dist/SAM Studio/": the annotator
# ("SAM Studio", no console window) and the command line ("samstudio") in one folder,
# running models through ONNX Runtime with the shipped demo model's ONNX pair. PyTorch is
# left out (5 GB; the app imports it only for .pth checkpoints, training and export), so
# the build opens ONNX model folders; a .pth file gets a message saying so.
# Uses its own environment, .venv-desktop, with the runtime dependencies of
# pyproject.toml less torch, torchvision, segment-anything and onnx. Idempotent.
# Needs Python 3.11+. DESKTOP_VENV, DESKTOP_DIST and DESKTOP_WORK move the environment,
# the output folder (default dist) and PyInstaller's work folder (default build/desktop).
# Check a build: "dist/SAM Studio/SAM Studio" --self-test report.json (exit status 0).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${DESKTOP_VENV:-.venv-desktop}
DIST=${DESKTOP_DIST:-dist}
WORK=${DESKTOP_WORK:-build/desktop}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
mapfile -t DEPS < <("$VENV/bin/python" packaging/desktop_deps.py pyproject.toml)
"$VENV/bin/python" -m pip install -q "pyinstaller>=6.0" "${DEPS[@]}"
"$VENV/bin/python" -m pip install -q --no-deps .
"$VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" packaging/desktop.spec
echo "built: $DIST/SAM Studio/ (the app \"$DIST/SAM Studio/SAM Studio\", the command line \"$DIST/SAM Studio/samstudio\")"
