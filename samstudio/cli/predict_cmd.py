"""`samstudio predict` and `samstudio embed`: masks and embeddings from the command line.

    samstudio predict --model M --image IMG [--point X,Y[,LABEL]]... [--box X0,Y0,X1,Y1]
                      [--mask-input FILE.npy] [--single-mask] --out result.npz
    samstudio embed --model M IMAGES...

Coordinates are pixels of the image as displayed (EXIF orientation applied), the same
frame as the output masks. LABEL is 1 for a foreground point (default), 0 for background.
Every point must lie on the image and a box must overlap it (it may reach past the edge):
prompts off the image are an error, not an empty mask.
`--model` takes a catalog name, a `.pth` checkpoint or an exported ONNX folder; without
it the shipped demo model is used.

Only the standard library is imported at module level; numpy, the inference layer and
torch (for checkpoints) are imported inside the command functions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """Bad command-line input; the message is shown to the user as is."""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "predict",
        help="segment one image from point/box/mask prompts and save the masks (.npz)",
        description=(
            "Run the model on IMAGE with the given prompts and write masks (N,H,W bool, "
            "image frame), iou_predictions (N,) and low_res_logits (N,256,256) to --out. "
            "One point and multimask give 3 masks ranked by predicted IoU; otherwise one."
        ),
    )
    p.add_argument("--model", help="catalog name, .pth checkpoint or ONNX folder (default: demo)")
    p.add_argument("--image", required=True, help="the image file")
    p.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y[,LABEL]",
        help="a point in image pixels; LABEL 1 foreground (default) or 0 background; repeatable",
    )
    p.add_argument(
        "--box", metavar="X0,Y0,X1,Y1", help="a box in image pixels (top-left, bottom-right)"
    )
    p.add_argument(
        "--mask-input",
        metavar="FILE.npy",
        help="low-res logits (256x256 or 1x256x256) of a previous prediction to refine",
    )
    p.add_argument(
        "--single-mask",
        action="store_true",
        help="return only the single-mask output, even for one point",
    )
    p.add_argument("--out", required=True, help="the .npz file to write")
    p.add_argument("--device", choices=["cpu", "cuda"], help="force a device (default: auto)")
    p.add_argument(
        "--cache",
        action="store_true",
        help="reuse and fill the embedding cache (stored as float16: logits may move by ~1e-4)",
    )
    p.set_defaults(func=run_predict)

    e = sub.add_parser(
        "embed",
        help="compute image embeddings into the cache (speeds up opening the images later)",
    )
    e.add_argument("--model", help="catalog name, .pth checkpoint or ONNX folder (default: demo)")
    e.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    e.add_argument("--device", choices=["cpu", "cuda"], help="force a device (default: auto)")
    e.set_defaults(func=run_embed)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _numbers(text: str, what: str, counts: tuple[int, ...]) -> list[float]:
    parts = [s.strip() for s in text.split(",")]
    try:
        values = [float(s) for s in parts]
    except ValueError:
        raise UsageError(f"{what} {text!r}: expected comma-separated numbers") from None
    if len(values) not in counts:
        expected = " or ".join(str(c) for c in counts)
        raise UsageError(f"{what} {text!r}: expected {expected} numbers, got {len(values)}")
    if not all(abs(v) < float("inf") for v in values):
        raise UsageError(f"{what} {text!r}: numbers must be finite")
    return values


def parse_point(text: str) -> tuple[float, float, int]:
    """ "X,Y" or "X,Y,LABEL" -> (x, y, label); label 1 (foreground) by default."""
    values = _numbers(text, "--point", (2, 3))
    label = 1 if len(values) == 2 else values[2]
    if label not in (0, 1):
        raise UsageError(f"--point {text!r}: LABEL must be 1 (foreground) or 0 (background)")
    return values[0], values[1], int(label)


def parse_box(text: str) -> tuple[float, float, float, float]:
    """ "X0,Y0,X1,Y1" -> the box, corners ordered top-left then bottom-right."""
    x0, y0, x1, y1 = _numbers(text, "--box", (4,))
    if x1 < x0 or y1 < y0:
        raise UsageError(f"--box {text!r}: give the top-left corner first, then the bottom-right")
    return x0, y0, x1, y1


def _load_image(path: str) -> Any:
    """(H, W, 3) uint8 RGB as displayed; UsageError naming the file when unreadable."""
    from samstudio.core.images import ImageLoadError, load_image

    if not Path(path).is_file():
        raise UsageError(f"image file {path} does not exist")
    try:
        return load_image(path)
    except ImageLoadError as exc:
        raise UsageError(str(exc)) from None


def _load_mask_input(path: str) -> Any:
    import numpy as np

    if not Path(path).is_file():
        raise UsageError(f"--mask-input file {path} does not exist")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UsageError(f"--mask-input file {path} is not a .npy array ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise UsageError(f"--mask-input file {path} holds several arrays; give one .npy array")
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise UsageError(
            f"--mask-input file {path} has shape {array.shape}; expected low-res logits "
            "of shape (256, 256) or (1, 256, 256), e.g. one of low_res_logits of a "
            "previous result"
        )
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise UsageError(f"--mask-input file {path} must hold finite numbers")
    return array.astype(np.float32)


def run_predict(args: argparse.Namespace) -> int:
    try:
        points = [parse_point(p) for p in args.point]
        box = parse_box(args.box) if args.box else None
        if not points and box is None and not args.mask_input:
            raise UsageError("give at least one --point, a --box or a --mask-input")
        out = Path(args.out)
        if out.suffix.lower() != ".npz":
            raise UsageError(f"--out {out}: the result is written as a .npz file")
        if not out.parent.is_dir():
            raise UsageError(f"--out {out}: folder {out.parent} does not exist")
        mask_input = _load_mask_input(args.mask_input) if args.mask_input else None
        image = _load_image(args.image)
    except UsageError as exc:
        return _fail(str(exc))

    import numpy as np

    from samstudio.core.atomic import atomic_write
    from samstudio.inference.errors import InferenceError, PromptError
    from samstudio.inference.loader import open_model
    from samstudio.inference.preprocess import check_prompts_on_image
    from samstudio.inference.types import Prompts

    try:
        prompts = Prompts(
            points=np.array([p[:2] for p in points], np.float32).reshape(-1, 2),
            labels=np.array([p[2] for p in points], np.int32),
            box=None if box is None else np.array(box, np.float32),
            mask_input=mask_input,
        )
        # decode checks this too; here it fails before the model is loaded.
        try:
            check_prompts_on_image(prompts, image.shape[:2])
        except PromptError as exc:
            return _fail(f"{args.image}: {exc}")
        model = open_model(args.model, device=args.device)
        embedding = _embedding(model, image, use_cache=args.cache)
        prediction = model.decode(embedding, prompts, multimask=not args.single_mask)
        masks = prediction.masks
    except InferenceError as exc:
        return _fail(str(exc))

    def write(fh: Any) -> None:
        np.savez_compressed(
            fh,
            masks=masks,
            iou_predictions=prediction.iou_predictions,
            low_res_logits=prediction.low_res_logits,
            stability_scores=prediction.stability_scores,
        )

    try:
        atomic_write(out, write)
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc.strerror or exc}")
    scores = ", ".join(f"{v:.3f}" for v in prediction.iou_predictions)
    print(f"{len(prediction)} mask(s) of {masks.shape[2]}x{masks.shape[1]} -> {out} (IoU {scores})")
    return 0


def _embedding(model: Any, image: Any, use_cache: bool) -> Any:
    """model.encode(image), through the embedding cache when `use_cache`."""
    if not use_cache:
        return model.encode(image)
    from samstudio.inference.cache import EmbeddingCache, cache_key, image_content_hash

    info = model.info
    key = cache_key(image_content_hash(image), info.model_id, info.preprocessing_id)
    return EmbeddingCache().get_or_compute(key, lambda: model.encode(image))


def run_embed(args: argparse.Namespace) -> int:
    """Encode every image not yet in the cache, with a progress bar. Images that cannot
    be read are reported and skipped; the exit code is 1 when any failed."""
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        return _fail(f"image file {missing[0]} does not exist")

    from tqdm import tqdm

    from samstudio.inference.cache import EmbeddingCache, cache_key, image_content_hash
    from samstudio.inference.errors import InferenceError
    from samstudio.inference.loader import open_model

    try:
        model = open_model(args.model, device=args.device)
    except InferenceError as exc:
        return _fail(str(exc))
    info = model.info
    cache = EmbeddingCache()
    computed = reused = 0
    failed: list[str] = []
    with tqdm(args.images, unit="image", desc=f"embedding ({info.model_id})") as bar:
        for path in bar:
            bar.set_postfix_str(Path(path).name)
            try:
                image = _load_image(path)
            except UsageError as exc:
                tqdm.write(f"error: {exc}", file=sys.stderr)
                failed.append(path)
                continue
            key = cache_key(image_content_hash(image), info.model_id, info.preprocessing_id)
            if cache.get(key) is not None:
                reused += 1
                continue
            try:
                cache.put(key, model.encode(image))
            except OSError as exc:  # a full or read-only cache disk: later images fail too
                tqdm.write(f"error: {exc}; stopped", file=sys.stderr)
                failed.append(path)
                break
            computed += 1
    print(
        f"{computed} embedded, {reused} already cached, {len(failed)} failed (cache: {cache.root})"
    )
    return 1 if failed else 0
