"""`samstudio info`: versions and paths, for bug reports."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("info", help="print versions, data and cache directories")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import platform

    import platformdirs

    from samstudio import __version__

    print(f"samstudio {__version__} on Python {platform.python_version()} ({platform.platform()})")
    print(f"data dir:  {platformdirs.user_data_dir('samstudio')}")
    print(f"cache dir: {platformdirs.user_cache_dir('samstudio')}")
    from samstudio.inference.onnx_backend import cpu_threads

    print(f"threads:   {cpu_threads()} (ONNX Runtime; PyTorch reads OMP_NUM_THREADS)")
    return 0
