"""`samstudio model ...`: list, download, import, remove and export models.

    samstudio model list [--json]
    samstudio model download NAME [--allow-unverified]
    samstudio model import PATH [--name NAME] [--copy]
    samstudio model remove NAME
    samstudio model export --checkpoint FILE_OR_NAME --out DIR

Only the standard library is imported here; the inference modules (and torch, for
import validation and export) are imported inside the command functions.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("model", help="list, download, import or export models")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION")
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])

    q = msub.add_parser("list", help="show known models and whether they are on this computer")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    q.set_defaults(func=run_list)

    q = msub.add_parser("download", help="download an official SAM checkpoint (resumable)")
    q.add_argument("name", help="catalog name, e.g. sam_vit_b (see `samstudio model list`)")
    q.add_argument(
        "--allow-unverified",
        action="store_true",
        help="accept a file whose SHA-256 is not known in the catalog",
    )
    q.set_defaults(func=run_download)

    q = msub.add_parser("import", help="register a checkpoint or ONNX export you already have")
    q.add_argument("path", help="a .pth SAM checkpoint, or a folder with an ONNX export")
    q.add_argument("--name", help="name to use with --model (default: from the file)")
    q.add_argument(
        "--copy", action="store_true", help="copy the checkpoint into SAM Studio's model folder"
    )
    q.set_defaults(func=run_import)

    q = msub.add_parser("remove", help="forget an imported model or delete a downloaded one")
    q.add_argument("name")
    q.set_defaults(func=run_remove)

    q = msub.add_parser("export", help="export a checkpoint to an ONNX encoder + decoder pair")
    q.add_argument("--checkpoint", required=True, help="a .pth checkpoint or a model name")
    q.add_argument("--out", required=True, help="folder to write the ONNX files and manifest")
    q.set_defaults(func=run_export)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _human(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def run_list(args: argparse.Namespace) -> int:
    import json

    from samstudio.inference.catalog import list_models
    from samstudio.inference.errors import InferenceError

    try:
        rows = list_models()
    except InferenceError as exc:
        return _fail(str(exc))
    if args.json:
        out = [
            {
                "name": r.name,
                "architecture": r.architecture,
                "status": r.status,
                "path": str(r.path) if r.path else None,
                "size": r.size,
                "description": r.description,
            }
            for r in rows
        ]
        print(json.dumps(out, indent=2))
        return 0
    table = [("NAME", "ARCH", "STATUS", "SIZE", "PATH")]
    table += [
        (r.name, r.architecture, r.status, _human(r.size), str(r.path) if r.path else "-")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4])
    return 0


def run_download(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from samstudio.inference.catalog import catalog_entry, download_path
    from samstudio.inference.download import download, partial_path
    from samstudio.inference.errors import InferenceError

    try:
        entry = catalog_entry(args.name)
    except InferenceError as exc:
        return _fail(str(exc))
    if not entry.downloadable:
        return _fail(f"'{entry.name}' is shipped with SAM Studio; there is nothing to download")
    dest = download_path(entry)
    resuming = partial_path(dest).is_file()
    print(
        f"{'resuming' if resuming else 'downloading'} {entry.name} from {entry.url}",
        file=sys.stderr,
    )
    bar = tqdm(total=entry.size, unit="B", unit_scale=True, unit_divisor=1024, desc=entry.filename)

    def progress(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        path = download(entry, dest, progress=progress, allow_unverified=args.allow_unverified)
    except KeyboardInterrupt:
        bar.close()
        print(
            f"interrupted: the partial file {partial_path(dest)} is kept; run the same "
            "command again to resume",
            file=sys.stderr,
        )
        return 130
    except InferenceError as exc:
        bar.close()
        return _fail(str(exc))
    bar.close()
    verified = "SHA-256 verified" if entry.sha256 else "NOT verified (no known checksum)"
    print(f"{entry.name}: {path} ({verified})")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from samstudio.inference.errors import InferenceError
    from samstudio.inference.registry import import_model

    try:
        item = import_model(
            args.path,
            args.name,
            copy=args.copy,
            status=lambda msg: print(msg, file=sys.stderr),
        )
    except InferenceError as exc:
        return _fail(str(exc))
    arch = item.architecture or "unknown architecture"
    print(f"imported '{item.name}' ({item.kind}, {arch}): {item.path}")
    print(f"use it with --model {item.name}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from samstudio.inference import registry
    from samstudio.inference.catalog import CATALOG, canonical_name, download_path
    from samstudio.inference.errors import InferenceError

    name = canonical_name(args.name)
    try:
        if registry.lookup(name) is not None:
            item = registry.unregister(name)
            print(f"forgot imported model '{name}' ({item.path})")
            return 0
        if name in CATALOG and download_path(CATALOG[name]).is_file():
            path = download_path(CATALOG[name])
            path.unlink()
            print(f"deleted {path}")
            return 0
    except (InferenceError, OSError) as exc:
        return _fail(str(exc))
    return _fail(f"no imported or downloaded model is called '{args.name}'")


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from samstudio.inference.catalog import find_model_path
    from samstudio.inference.errors import InferenceError
    from samstudio.inference.loader import is_model_name

    checkpoint = Path(args.checkpoint).expanduser()
    try:
        # a known model name wins over a same-named file here, as in open_model
        if is_model_name(args.checkpoint) or not checkpoint.exists():
            checkpoint = find_model_path(args.checkpoint)
        from samstudio.inference.onnx_export import export_onnx
    except ImportError as exc:
        return _fail(f"ONNX export is not available in this installation ({exc})")
    except InferenceError as exc:
        return _fail(str(exc))
    if not checkpoint.is_file():
        return _fail(f"{checkpoint}: not a checkpoint file")
    out = Path(args.out).expanduser()
    print(f"exporting {checkpoint} to {out} (this takes a while)", file=sys.stderr)
    try:
        result = export_onnx(checkpoint, out)
    except (InferenceError, OSError) as exc:
        return _fail(str(exc))
    print(f"exported to {result if result is not None else out}")
    print(f"use it with --model {out}, or `samstudio model import {out} --name NAME`")
    return 0
