"""The files of an exported ONNX model: manifest, graph files, sessions (no torch).

`read_manifest` reads and validates `manifest.json`; `check_file` checks a graph file
the manifest names (inside the export folder, its size and SHA-256); `open_session`
opens it in ONNX Runtime with `default_session_options`; `check_shape` / `check_io`
compare a graph with the manifest; `open_prepared` opens and checks the optional
prepared pair. Every problem is a `ModelLoadError` naming the file. Used by
`onnx_backend.OnnxSegmenter.from_directory`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from samstudio.inference.checkpoints import file_sha256
from samstudio.inference.errors import ModelLoadError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "samstudio-onnx"
SUPPORTED_VERSIONS = (1,)
_REQUIRED_KEYS = (
    "model_id",
    "architecture",
    "image_size",
    "pixel_mean",
    "pixel_std",
    "embedding_shape",
    "mask_input_size",
    "files",
)
PREPARED_OUTPUTS = ("image_tokens", "t2i_keys", "t2i_values", "i2t_queries")
PREPARED_KEYS = ("prepare", "decoder_prepared")


class PreparedDecoderWarning(UserWarning):
    """The export's prepared pair (prepare.onnx + decoder_prepared.onnx) is missing,
    damaged or from another export: the model runs with decoder.onnx alone (the same
    masks; first clicks slower). The message names the file; `ModelInfo.notes` has it."""


def available_providers() -> list[str]:
    """Execution providers to use, best first: CUDA when present, then the CPU."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    chosen = [p for p in ("CUDAExecutionProvider",) if p in have]
    return chosen + ["CPUExecutionProvider"]


def default_session_options(threads: int | None = None, memory_arena: bool = True) -> Any:
    """ONNX Runtime session options: all graph optimisations, one intra-op thread per
    core this process may use (`threads` overrides), sequential execution.

    memory_arena=False returns memory to the system after each run: for the encoder,
    whose peak (the global-attention maps, several GB for vit_h) would otherwise stay
    allocated for the life of the session.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.enable_cpu_mem_arena = memory_arena
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or cpu_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


def cpu_threads() -> int:
    """SAMSTUDIO_THREADS when set (`samstudio --threads N`), else the cores this
    process may run on."""
    wanted = os.environ.get("SAMSTUDIO_THREADS", "")
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check `directory/manifest.json`; ModelLoadError naming the file if bad."""
    folder = Path(directory)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise ModelLoadError(f"ONNX model directory {folder} does not exist")
    if not path.is_file():
        raise ModelLoadError(
            f"{folder} is not an exported ONNX model: {MANIFEST_NAME} is missing "
            "(export one with `samstudio model export --checkpoint FILE --out DIR`)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not a readable JSON manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ModelLoadError(
            f"{path} is not a SAM Studio ONNX manifest (format != {MANIFEST_FORMAT!r})"
        )
    version = manifest.get("format_version")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise ModelLoadError(
            f"{path} has manifest format_version {version!r}; this SAM Studio reads "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}. Export the model again with this version."
        )
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ModelLoadError(f"{path}: entry 'files' must be an object naming the .onnx files")
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    missing += [f"files.{k}" for k in ("encoder", "decoder") if k not in files]
    if missing:
        raise ModelLoadError(f"{path} lacks the entries {missing}")
    _check_values(path, manifest)
    return manifest


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _check_values(path: Path, manifest: dict[str, Any]) -> None:
    """Types and ranges of the manifest's entries, before any session is built: a wrong
    value is a ModelLoadError naming the entry, never a raw error or an empty mask."""

    def bad(key: str, want: str) -> ModelLoadError:
        return ModelLoadError(f"{path}: entry {key!r} must be {want}, got {manifest.get(key)!r}")

    for key, entry in manifest["files"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ModelLoadError(f"{path}: entry 'files.{key}' must be an object with a 'path'")
        if "bytes" in entry and not _is_int(entry["bytes"]):
            raise ModelLoadError(f"{path}: entry 'files.{key}.bytes' must be an integer")
    size = manifest["image_size"]
    if not _is_int(size) or size <= 0:
        raise bad("image_size", "a positive integer")
    for key in ("pixel_mean", "pixel_std"):
        values = manifest[key]
        if not isinstance(values, list) or len(values) != 3 or not all(map(_is_number, values)):
            raise bad(key, "3 numbers")
    if not all(v > 0 for v in manifest["pixel_std"]):
        raise bad("pixel_std", "3 positive numbers")
    for key, n in (("embedding_shape", 3), ("mask_input_size", 2)):
        values = manifest[key]
        if not isinstance(values, list) or len(values) != n:
            raise bad(key, f"{n} positive integers")
        if not all(_is_int(v) and v > 0 for v in values):
            raise bad(key, f"{n} positive integers")
    if "mask_threshold" in manifest and not _is_number(manifest["mask_threshold"]):
        raise bad("mask_threshold", "a number")


def file_path(folder: Path, entry: dict[str, Any], what: str) -> Path:
    """The path of a manifest file entry; ModelLoadError when it leaves the folder."""
    relative = Path(str(entry.get("path", "")))
    if relative.is_absolute() or ".." in relative.parts:
        raise ModelLoadError(
            f"{folder / MANIFEST_NAME}: the {what} file {entry.get('path')!r} is outside the "
            "export folder; an export names only files inside it"
        )
    return folder / relative


def check_file(folder: Path, entry: dict[str, Any], what: str, verify: bool) -> Path:
    """The file of a manifest entry, present with its size and SHA-256 (when `verify`);
    ModelLoadError naming the file otherwise."""
    path = file_path(folder, entry, what)
    if not path.exists():
        raise ModelLoadError(
            f"the {what} file {path} is missing (named in {folder / MANIFEST_NAME})"
        )
    if not path.is_file():
        raise ModelLoadError(
            f"the {what} file {path} is not a regular file (named in {folder / MANIFEST_NAME})"
        )
    try:
        size = path.stat().st_size
        expected_bytes = entry.get("bytes")
        if expected_bytes is not None and size != expected_bytes:
            raise ModelLoadError(
                f"the {what} file {path} has {size} bytes, the manifest says "
                f"{expected_bytes}: it is truncated or was replaced; export the model again"
            )
        if verify and entry.get("sha256") and file_sha256(path) != entry["sha256"]:
            raise ModelLoadError(
                f"the {what} file {path} does not match the SHA-256 in "
                f"{folder / MANIFEST_NAME}: it is corrupt or was replaced; export the model again"
            )
    except OSError as exc:
        raise ModelLoadError(
            f"the {what} file {path} cannot be read: {exc.strerror or exc}"
        ) from None
    return path


def open_session(what: str, file: Path, threads: int | None, providers: list[str]) -> Any:
    """An ONNX Runtime session for `file`; ModelLoadError naming it when it cannot load."""
    import onnxruntime as ort

    options = default_session_options(threads, memory_arena=what != "encoder")
    try:
        return ort.InferenceSession(str(file), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"the {what} file {file} could not be loaded by ONNX Runtime: {first}"
        ) from None


def check_shape(session: Any, name: str, want: tuple[int, ...], path: Path, folder: Path) -> None:
    """The graph's input `name` must accept `want` (the manifest's sizes); symbolic
    dimensions accept anything."""
    shape = next((i.shape for i in session.get_inputs() if i.name == name), None)
    if shape is None:
        return
    fits = len(shape) == len(want) and all(
        not isinstance(d, int) or d == v for d, v in zip(shape, want, strict=True)
    )
    if not fits:
        raise ModelLoadError(
            f"{path}: its input {name!r} has shape {list(shape)}, but "
            f"{folder / MANIFEST_NAME} says {list(want)}: the graph and the manifest come "
            "from different exports; export the model again"
        )


def check_io(session: Any, names: tuple[str, ...], path: Path, kind: str = "inputs") -> None:
    """The graph must have the inputs (or, kind="outputs", the outputs) `names`."""
    have = {i.name for i in (session.get_outputs() if kind == "outputs" else session.get_inputs())}
    missing = [n for n in names if n not in have]
    if missing:
        raise ModelLoadError(f"{path} is not a SAM Studio graph: it lacks the {kind} {missing}")


def _fits(a: Any, b: Any) -> bool:
    """Two ONNX shapes can hold the same tensor (symbolic dimensions fit any size)."""
    return len(a) == len(b) and all(
        not isinstance(x, int) or not isinstance(y, int) or x == y
        for x, y in zip(a, b, strict=True)
    )


def open_prepared(
    folder: Path,
    manifest: dict[str, Any],
    decoder: Any,
    threads: int | None,
    providers: list[str],
    verify: bool,
) -> tuple[Any, Any]:
    """The (prepare, decoder_prepared) sessions of an export, checked against the
    manifest, each other and the plain decoder; ModelLoadError naming the file that
    is missing, damaged or from another export."""
    files = manifest["files"]
    paths = {key: check_file(folder, files[key], key, verify) for key in PREPARED_KEYS}
    for key in PREPARED_KEYS:
        if files[key].get("data"):
            check_file(folder, files[key]["data"], f"{key} weights", verify)
    prepare = open_session("prepare", paths["prepare"], threads, providers)
    decoder_prepared = open_session(
        "decoder_prepared", paths["decoder_prepared"], threads, providers
    )
    check_io(prepare, ("image_embeddings",), paths["prepare"])
    check_io(prepare, PREPARED_OUTPUTS, paths["prepare"], "outputs")
    check_io(
        decoder_prepared,
        (*PREPARED_OUTPUTS, "point_coords", "point_labels"),
        paths["decoder_prepared"],
    )
    check_io(
        decoder_prepared,
        ("low_res_logits", "iou_predictions"),
        paths["decoder_prepared"],
        "outputs",
    )
    c, h, w = manifest["embedding_shape"]
    check_shape(prepare, "image_embeddings", (1, c, h, w), paths["prepare"], folder)
    _check_fits(
        decoder_prepared.get_inputs(),
        prepare.get_outputs(),
        "input",
        paths["decoder_prepared"],
        f"{paths['prepare']} gives",
        "the two prepared graphs come from different exports",
    )
    _check_fits(
        decoder_prepared.get_outputs(),
        decoder.get_outputs(),
        "output",
        paths["decoder_prepared"],
        "the decoder gives",
        "it comes from another export",
    )
    return prepare, decoder_prepared


def _check_fits(items: Any, reference: Any, kind: str, path: Path, source: str, why: str) -> None:
    """Each of `items` (graph inputs or outputs) named like one of `reference` must have
    a shape that fits it; ModelLoadError naming `path` otherwise."""
    given = {o.name: o.shape for o in reference}
    for item in items:
        if item.name in given and not _fits(item.shape, given[item.name]):
            raise ModelLoadError(
                f"{path}: its {kind} {item.name!r} has shape {list(item.shape)}, but "
                f"{source} {list(given[item.name])}: {why}; export the model again"
            )
