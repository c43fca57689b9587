"""`samstudio auto-segment`: the paper's fully automatic stage over images and folders.

    samstudio auto-segment [--model M] INPUT... --out DIR [--points-per-side N]
        [--crop-n-layers N] [--pred-iou-thresh X] [--stability-score-thresh X]
        [--min-mask-region-area N] [--adaptive] [--preset paper|fast] [--coco FILE]
        [--coco-results FILE [--reference GT.json]]

Writes one SA-1B JSON per image into DIR, named after the image file (`x.png.json`;
`x.png.<hash of its path>.json` when two inputs share a file name or the name is taken by
our output of another image; written atomically; the name does not depend on the other
inputs, so a later run on fewer images finds its outputs). The ids of all outputs in DIR
are numbered over the folder (see `autoseg_collect`). With `--coco`, one COCO instances
file of all outputs in DIR made with this model and these parameters (file_name: the
path relative to their images' common folder; `score` = predicted IoU); with
`--coco-results`, the same masks as COCO results (`coco_results`), with the image ids of
`--reference` (a ground-truth instances file, images matched by file name) or else those
of the COCO file. Each JSON records this tool, the source image (path, byte size, modification
time and SHA-256 of its file), the model (as given, and the SHA-256 of its content: the checkpoint file, or
an ONNX folder's manifest and the files it names) and the parameters; an image whose
JSON matches them is skipped (the run is resumable: stop it and run the same command
again), one made otherwise (or by a version that recorded no SHA-256) is redone, and a
file this tool did not write is never overwritten (the image is reported and skipped).
An image whose byte size and modification time (to the nanosecond) are those its output
recorded is not read again on resume: its recorded SHA-256 stands (as rsync and git
decide; a time is recorded only when it was over `SETTLED_S` old at hashing, so a file
rewritten within the file system's timestamp resolution is hashed again).
An image that cannot be read, whose masks cannot be generated or whose JSON cannot be
written is reported and skipped; the exit status is then 1. Only the standard library
is imported at module level.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from samstudio.cli.autoseg_collect import MARKER, read_output, same_marker

DONE_SUFFIX = ".json"
Marker = tuple[dict[str, Any], dict[str, Any]]
"""(image object, marker) of an output of ours, as `_read_marker` returns it."""
SETTLED_S = 3.0
"""An image's modification time is recorded (and trusted on resume) only when it was at
least this many seconds old when hashed: coarser than any file system's timestamps."""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "auto-segment",
        help="generate all masks of images automatically (SA-1B JSON per image, optional COCO)",
        description=(
            "Prompt each image with a grid of points, keep the confident, stable, "
            "de-duplicated masks (paper §B) and write one SA-1B JSON per image into --out. "
            "Images already done in --out are skipped, so an interrupted run can be resumed."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    p.add_argument("--out", required=True, help="folder for the SA-1B JSON files")
    p.add_argument("--model", help="catalog name, .pth checkpoint or ONNX folder (default: demo)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="force a device (default: auto)")
    p.add_argument(
        "--preset",
        choices=["default", "paper", "fast"],
        default="default",
        help="default: Meta's generator settings (32x32 grid, no crops); paper: SA-1B's "
        "settings (crops in 2 layers, regions under 100 px cleaned); fast: adaptive grid",
    )
    p.add_argument("--points-per-side", type=int, help="grid size on the whole image (32)")
    p.add_argument("--points-per-batch", type=int, help="prompts per decoder call (64)")
    p.add_argument("--crop-n-layers", type=int, help="layers of zoomed-in crops (0)")
    p.add_argument("--pred-iou-thresh", type=float, help="minimum predicted IoU (0.88)")
    p.add_argument("--stability-score-thresh", type=float, help="minimum stability score (0.95)")
    p.add_argument(
        "--min-mask-region-area",
        type=int,
        help="fill holes / remove islands smaller than this many pixels (0: off)",
    )
    p.add_argument(
        "--adaptive",
        action="store_true",
        help=(
            "every other grid point first, then only the points near a kept mask that the "
            "finest masks of their neighbours do not settle (measured with the demo model: "
            "99%% of the full grid's masks with 2x fewer decoder calls)"
        ),
    )
    p.add_argument(
        "--coco",
        metavar="FILE",
        help="also write one COCO instances file of all outputs in --out made with this "
        "model and these parameters",
    )
    p.add_argument(
        "--coco-results",
        metavar="FILE",
        help="also write those masks as COCO results (score = predicted IoU) for "
        "COCO(gt).loadRes / COCOeval",
    )
    p.add_argument(
        "--reference",
        metavar="GT",
        help="ground-truth COCO instances file whose image ids --coco-results uses "
        "(images matched by file name); default: the ids of --coco",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _params(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from samstudio.core.amg_params import AmgParams

    presets: dict[str, Any] = {
        "default": AmgParams,
        "paper": AmgParams.paper,
        "fast": AmgParams.fast,
    }
    base = presets[args.preset]()
    overrides: dict[str, Any] = {}
    for name in (
        "points_per_side",
        "points_per_batch",
        "crop_n_layers",
        "pred_iou_thresh",
        "stability_score_thresh",
        "min_mask_region_area",
    ):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.points_per_side is not None and base.adaptive_points_per_side is not None:
        # the preset's coarse grid (fast: 16 of 32) follows the grid asked for: half of it
        overrides["adaptive_points_per_side"] = None
    if args.adaptive:
        overrides["adaptive"] = True
    return replace(base, **overrides)


def find_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Image files named or found (sorted, not recursive) in folders; and input problems."""
    from samstudio.core.images import SUPPORTED_SUFFIXES

    found: list[Path] = []
    problems: list[str] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            files = sorted(
                f for f in path.iterdir() if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
            )
            if not files:
                problems.append(f"{path}: folder holds no images")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    return found, problems


_MAX_NAME_BYTES = 200  # the atomic writer's temp name adds ~15 bytes; most file systems allow 255


def common_root(images: list[Path]) -> Path:
    """The deepest folder holding every image (absolute, symlinks not followed)."""
    folders = {os.path.dirname(os.path.abspath(image)) for image in images}
    return Path(os.path.commonpath(sorted(folders)))


def relative_names(images: list[Path]) -> list[str]:
    """Each image's path relative to the inputs' common root, with '/' separators."""
    root = common_root(images)
    return [Path(os.path.abspath(image)).relative_to(root).as_posix() for image in images]


def output_name(image: Path, hashed: bool = False) -> str:
    """The JSON file name of `image`: `x.png` -> `x.png.json`; with `hashed`, or when the
    name would pass 200 bytes, `x.png.<hash>.json`, the hash of the image's absolute path.
    Fixed for a given file whatever else the run is given, so a run on fewer inputs
    finds the outputs of an earlier, larger one."""
    import hashlib

    base = image.name
    tag = hashlib.sha1(os.path.abspath(image).encode("utf-8", "surrogateescape")).hexdigest()
    encoded = base.encode("utf-8", "surrogateescape")
    if not hashed and len(encoded) + len(DONE_SUFFIX) <= _MAX_NAME_BYTES:
        return base + DONE_SUFFIX
    room = _MAX_NAME_BYTES - len(DONE_SUFFIX) - 10 - 1
    cut = encoded[:room].decode("utf-8", "ignore") if len(encoded) > room else base
    return f"{cut}.{tag[:10]}{DONE_SUFFIX}"


def output_targets(
    images: list[Path], out: Path, sources: list[str]
) -> tuple[list[Path], list[Marker | None]]:
    """One output file per image, and what `_read_marker` found in it (each file is read
    once). An existing output of ours made from the same image (plain or hashed name) is
    found again; otherwise the plain name, unless another input has the same file name or
    the plain name holds our output of another image (then the hashed name). A file we
    did not write under the plain name is left for `_state` to report, never
    overwritten."""
    from collections import Counter

    counts = Counter(image.name for image in images)
    targets: list[Path] = []
    founds: list[Marker | None] = []
    for image, source in zip(images, sources, strict=True):
        plain, hashed = out / output_name(image), out / output_name(image, hashed=True)
        read = {c: _read_marker(c) if os.path.lexists(c) else None for c in (plain, hashed)}
        chosen = next(
            (
                c
                for c, found in read.items()
                if found is not None and found[1].get("source") == source
            ),
            None,
        )
        if chosen is None:
            chosen = hashed if counts[image.name] > 1 or read[plain] is not None else plain
        targets.append(chosen)
        founds.append(read[chosen])
    return targets, founds


def _model_id(spec: str | None) -> str:
    if spec is None:
        return "demo"
    return os.path.abspath(spec) if os.path.exists(spec) else spec


def _file_sha256(path: Path) -> str:
    from samstudio.inference.checkpoints import file_sha256

    return file_sha256(path)


def _model_sha256(spec: str | None) -> str | None:
    """SHA-256 of the content of the model `open_model(spec)` opens, found as it finds it
    (the demo model, an existing path, else a catalog or imported name) but without
    loading it: of the checkpoint file, or, for an ONNX folder, of its manifest and the
    files of its encoder and decoder (graphs and external weights; the optional prepared
    pair gives the same masks and is left out: the model loads without it). None when
    the model cannot be found or read; then no output counts as made with it. Reads the whole model once
    (SHA-256 runs at about 1.5 GB/s: ~0.25 s for ViT-B, ~1.5 s for ViT-H, milliseconds
    for the demo model)."""
    import hashlib
    import json

    from samstudio.inference.errors import ModelLoadError
    from samstudio.inference.loader import model_path

    try:
        path = model_path(spec)  # what open_model opens; an unknown name raises
        if not path.is_dir():
            return _file_sha256(path)
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        names = {"manifest.json"}
        files = manifest.get("files") if isinstance(manifest, dict) else None
        required = [files.get(k) for k in ("encoder", "decoder")] if isinstance(files, dict) else []
        for entry in required:
            data = entry.get("data") if isinstance(entry, dict) else None
            for item in (entry, data):
                if isinstance(item, dict) and isinstance(item.get("path"), str):
                    names.add(item["path"])
        digest = hashlib.sha256()
        for name in sorted(names):
            digest.update(f"{name}\0{_file_sha256(path / name)}\n".encode())
        return digest.hexdigest()
    except (ModelLoadError, OSError, ValueError):
        return None


def _source(image: Path, out: Path) -> str:
    """The image's path as recorded in its output: relative to the output folder."""
    try:
        return Path(os.path.relpath(os.path.abspath(image), os.path.abspath(out))).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(os.path.abspath(image)).as_posix()


def run(args: argparse.Namespace) -> int:
    from samstudio.cli.autoseg_collect import number_folder
    from samstudio.cli.autoseg_merge import merged_files, write_merged
    from samstudio.core.amg_params import AmgParamsError

    try:
        params = _params(args)
    except AmgParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    images, problems = find_images(args.inputs)
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not images:
        print("error: no images to segment", file=sys.stderr)
        return 2
    # the same file named twice (a folder and a file in it) is segmented once
    unique: dict[str, Path] = {}
    for image in images:
        unique.setdefault(os.path.abspath(image), image)
    images = list(unique.values())
    out = Path(args.out)
    relatives = relative_names(images)
    model_sha256 = _model_sha256(args.model)
    if model_sha256 is None:
        print(
            f"warning: the model {args.model or '(demo)'} could not be read to identify it; "
            "no earlier output is reused",
            file=sys.stderr,
        )
    sources = [_source(image, out) for image in images]
    targets, previous = output_targets(images, out, sources)
    marks = [
        _marker(image, sources[i], args, params, model_sha256, previous[i])
        for i, image in enumerate(images)
    ]
    files = merged_files(args, targets)
    if files is None:
        return 2
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot create output folder {out}: {exc.strerror}", file=sys.stderr)
        return 2
    failures = len(problems)
    todo = []
    skipped = older = 0
    for i, target in enumerate(targets):
        state = _state(target, images[i], marks[i], previous[i])
        if state == "done":
            skipped += 1
        elif state == "older":
            older += 1
            todo.append(i)
        elif state == "foreign":
            print(
                f"skipped {images[i]}: {target} exists and was not written by samstudio "
                "auto-segment; not overwriting it (move it away or choose another --out)",
                file=sys.stderr,
            )
            failures += 1
        else:
            todo.append(i)
    if skipped:
        print(
            f"{skipped} of {len(images)} images already done in {out}; skipping them",
            file=sys.stderr,
        )
    if older:
        print(
            f"{older} output{'s' if older > 1 else ''} in {out} made by an earlier version of "
            "samstudio auto-segment (no SHA-256 of image and model recorded): made again",
            file=sys.stderr,
        )
    try:
        if todo:
            failures += _segment_all(args, params, images, targets, relatives, marks, todo)
    finally:  # an interrupted run leaves the folder numbered too
        outputs = number_folder(out)
    failures += write_merged(files, outputs, dict(zip(targets, marks, strict=True)), out)
    return 1 if failures else 0


def _marker(
    image: Path,
    source: str,
    args: argparse.Namespace,
    params: Any,
    model_sha256: str | None,
    previous: Marker | None = None,
) -> dict[str, Any]:
    """What an output records about how it was made (compared on resume). The image is
    hashed here, before it is read for segmentation: should it change in between, the
    output records the old content and the next run redoes it. `previous`: the image's
    existing output (`_read_marker`); when it recorded this byte size and modification
    time, its SHA-256 is taken instead of reading the image again."""
    import time

    mtime: int | None = None
    now = time.time_ns()  # before the hash: a slow hash must not make a fresh file settled
    try:
        stat = image.stat()
        nbytes: int | None = stat.st_size
        sha256 = _recorded_sha256(previous, source, stat.st_size, stat.st_mtime_ns)
        if sha256 is None:
            sha256 = _file_sha256(image)
        if now - stat.st_mtime_ns >= SETTLED_S * 1e9:
            mtime = stat.st_mtime_ns
    except OSError:
        nbytes = sha256 = None
    import json

    mark = {
        "tool": "samstudio auto-segment",
        "source": source,
        "source_bytes": nbytes,
        "source_mtime_ns": mtime,
        "source_sha256": sha256,
        "model": _model_id(args.model),
        "model_sha256": model_sha256,
        "params": params.to_dict(),
    }
    return dict(json.loads(json.dumps(mark)))  # as read back from the file (lists, not tuples)


def _recorded_sha256(previous: Marker | None, source: str, nbytes: int, mtime: int) -> str | None:
    """The SHA-256 an earlier output recorded for this image, when it recorded the same
    source, byte size and (settled) modification time; None otherwise."""
    if previous is None:
        return None
    old = previous[1]
    sha256 = old.get("source_sha256")
    if (
        old.get("source") == source
        and old.get("source_bytes") == nbytes
        and isinstance(old.get("source_mtime_ns"), int)
        and old["source_mtime_ns"] == mtime
        and isinstance(sha256, str)
    ):
        return sha256
    return None


def _read_marker(path: Path) -> Marker | None:
    """(image object, marker) of an SA-1B file written by this tool; None otherwise."""
    doc = read_output(path)
    if doc is None:
        return None
    return doc["image"], doc["image"][MARKER]


def _state(
    target: Path,
    image: Path,
    mark: dict[str, Any],
    found: Marker | None,
) -> str:
    """'todo' (no output, or ours but made from another image/model/parameters, or while
    the image or model cannot be hashed), 'older' (ours, by a version that recorded no
    SHA-256: redone), 'done', or 'foreign' (a file this tool did not write: never
    overwritten). `found`: `_read_marker(target)`. A changed modification time alone
    (the same bytes) does not make an output stale."""
    from samstudio.core.images import image_size

    if not os.path.lexists(target):
        return "todo"
    if found is None:
        return "foreign"
    record, old = found
    if "source_sha256" not in old:
        return "older"
    if not same_marker(old, mark) or mark["source_sha256"] is None or mark["model_sha256"] is None:
        return "todo"
    try:
        height, width = image_size(image)
    except Exception:  # unreadable now: redo, and the run reports it
        return "todo"
    if (record.get("height"), record.get("width")) != (height, width):
        return "todo"
    return "done"


def _segment_all(
    args: argparse.Namespace,
    params: Any,
    images: list[Path],
    targets: list[Path],
    relatives: list[str],
    marks: list[dict[str, Any]],
    todo: list[int],
) -> int:
    from tqdm import tqdm

    from samstudio.core.amg import iter_masks
    from samstudio.core.images import ImageLoadError, load_image
    from samstudio.inference.errors import InferenceError, ModelLoadError
    from samstudio.inference.loader import open_model

    try:
        segmenter = open_model(args.model, device=args.device)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return len(todo)
    failures = 0
    bar_images = tqdm(todo, desc="images", unit="img", disable=args.quiet, file=sys.stderr)
    for index in bar_images:
        path = images[index]
        try:
            image = load_image(path)
        except ImageLoadError as exc:
            tqdm.write(f"skipped {path}: {exc.reason}", file=sys.stderr)
            failures += 1
            continue
        bar = tqdm(
            total=1, desc=path.name, unit="pt", leave=False, disable=args.quiet, file=sys.stderr
        )
        try:
            records = None
            for progress in iter_masks(segmenter, image, params):
                bar.total = max(progress.points_total, 1)
                bar.n = progress.points_done
                bar.set_postfix(masks=progress.candidates, refresh=False)
                bar.refresh()
                if progress.stage == "done":
                    records = progress.masks
        except (InferenceError, ValueError, MemoryError) as exc:
            tqdm.write(f"skipped {path}: mask generation failed: {exc}", file=sys.stderr)
            failures += 1
            continue
        finally:
            bar.close()
        assert records is not None
        target = targets[index]
        try:
            # ids provisional: `number_folder` gives the folder's ids at the end of the run
            _write_sa1b(target, relatives[index], marks[index], image.shape[:2], index + 1, records)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            tqdm.write(f"skipped {path}: cannot write {target}: {reason}", file=sys.stderr)
            failures += 1
    return failures


def _write_sa1b(
    target: Path,
    relative: str,
    mark: dict[str, Any],
    size: tuple[int, int],
    image_id: int,
    records: Any,
) -> None:
    from samstudio.core.atomic import atomic_write_json
    from samstudio.core.formats.records import Annotation, Dataset, ImageRecord
    from samstudio.core.formats.sa1b import sa1b_document

    height, width = size
    image = ImageRecord(
        id=image_id, file_name=relative, width=width, height=height, extra={MARKER: mark}
    )
    dataset = Dataset(images=[image])
    for number, record in enumerate(records, start=1):
        dataset.annotations.append(
            Annotation(
                id=number,
                image_id=image_id,
                category_id=None,
                segmentation=dict(record.segmentation),
                bbox=list(record.bbox),
                predicted_iou=float(record.predicted_iou),
                stability_score=float(record.stability_score),
                point_coords=[[float(x), float(y)] for x, y in record.point_coords],
                crop_box=[float(v) for v in record.crop_box],
            )
        )
    atomic_write_json(target, sa1b_document(dataset, image))
