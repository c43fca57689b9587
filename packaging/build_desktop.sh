#!/usr/bin/env bash
# Build the desktop app with PyInstaller into "dist/SAM Studio/": the annotator
# ("SAM Studio", no console window) and the command line ("samstudio") in one folder,
# running models through ONNX Runtime with the shipped demo model's ONNX pair. PyTorch is
# left out (5 GB; the app imports it only for .pth checkpoints, training and export), so
# the build opens ONNX model folders; a .pth file gets a message saying so.
# Uses its own environment, .venv-desktop, with the runtime dependencies of
# pyproject.toml less torch, torchvision, segment-anything and onnx. Idempotent.
# Linux (and bash 4 elsewhere); needs Python 3.11+ (PYTHON=...). DESKTOP_VENV,
# DESKTOP_DIST and DESKTOP_WORK move the environment, the output folder (default dist)
# and PyInstaller's work folder (default build/desktop); relative to where it is run.
# Check a build: "dist/SAM Studio/SAM Studio" --self-test report.json (exit status 0).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=$(realpath -m "${DESKTOP_VENV:-$(dirname "$0")/../.venv-desktop}")
DIST=$(realpath -m "${DESKTOP_DIST:-$(dirname "$0")/../dist}")
WORK=$(realpath -m "${DESKTOP_WORK:-$(dirname "$0")/../build/desktop}")
cd "$(dirname "$0")/.."
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# a failing command substitution stops the script (a process substitution would not)
deps=$("$VENV/bin/python" packaging/desktop_deps.py pyproject.toml)
mapfile -t DEPS <<< "$deps"
"$VENV/bin/python" -m pip install -q "pyinstaller>=6.0" "${DEPS[@]}"
# samstudio itself comes from this checkout (the spec's pathex), not from an install
"$VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" packaging/desktop.spec
echo "built: $DIST/SAM Studio/ (the app \"$DIST/SAM Studio/SAM Studio\", the command line \"$DIST/SAM Studio/samstudio\")"
