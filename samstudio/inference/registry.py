"""Models the user imported (`samstudio model import PATH`): a small JSON registry.

The registry is `data_dir()/model_registry.json`, rewritten atomically on every change:
{"version": 1, "models": {NAME: {"path", "kind", "architecture", "size", "sha256",
"imported_at"}}}. A registered model is a reference to the user's file or ONNX folder
(or, with `copy=True`, to a copy in `models_dir()`).

Validation on import is quick and torch-free where it can be: an ONNX folder needs a
readable `manifest.json` and the `.onnx` files it names; a checkpoint must look like a
PyTorch file (zip or pickle) and is then loaded with
`samstudio.inference.checkpoints.load_sam_checkpoint` (torch, weights_only=True), which
also detects the architecture.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from samstudio.core.atomic import atomic_write_json
from samstudio.core.paths import data_dir, models_dir
from samstudio.inference.errors import ModelLoadError

REGISTRY_VERSION = 1
CHECKPOINT_SUFFIXES = (".pth", ".pt")


@dataclass(frozen=True)
class ImportedModel:
    """A registered model. kind: "checkpoint" (a .pth file) or "onnx" (a folder).

    sha256 is the checkpoint's digest (None for ONNX folders); imported_at is ISO 8601 UTC.
    """

    name: str
    path: Path
    kind: str
    architecture: str | None
    size: int
    sha256: str | None
    imported_at: str

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        del d["name"]
        return d


def registry_path() -> Path:
    return data_dir() / "model_registry.json"


def load_registry() -> dict[str, ImportedModel]:
    """Every imported model by name (empty when nothing was imported yet)."""
    path = registry_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{path}: the model registry is unreadable ({exc}); delete it and import "
            "your models again"
        ) from exc
    models = raw.get("models") if isinstance(raw, dict) else None
    if not isinstance(models, dict):
        raise ModelLoadError(f"{path}: not a SAM Studio model registry (no 'models' object)")
    out: dict[str, ImportedModel] = {}
    for name, item in models.items():
        try:
            out[name] = ImportedModel(
                name=name,
                path=Path(item["path"]),
                kind=str(item["kind"]),
                architecture=item.get("architecture"),
                size=int(item.get("size", 0)),
                sha256=item.get("sha256"),
                imported_at=str(item.get("imported_at", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{path}: entry '{name}' is malformed ({exc})") from exc
    return out


def _save_registry(models: dict[str, ImportedModel]) -> None:
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "version": REGISTRY_VERSION,
        "models": {name: m.to_json() for name, m in sorted(models.items())},
    }
    atomic_write_json(path, doc, indent=2)


@contextlib.contextmanager
def _registry_locked() -> Iterator[None]:
    """Hold an exclusive lock for a read-modify-write of the registry, so that two
    processes importing at once (the GUI and the CLI, say) do not lose an entry. The lock
    file is never deleted (deleting a held lock file lets a third process in). POSIX
    flock; a no-op where it is missing (Windows)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    lock = registry_path().with_name(registry_path().name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def lookup(name: str) -> ImportedModel | None:
    return load_registry().get(name)


def checked_path(item: ImportedModel) -> Path:
    """The imported model's path, or ModelLoadError if the file or folder has gone."""
    if not item.path.exists():
        raise ModelLoadError(
            f"imported model '{item.name}' was at {item.path}, which no longer exists; "
            f"import it again with `samstudio model import PATH --name {item.name}`"
        )
    return item.path


def unregister(name: str) -> ImportedModel:
    """Forget an imported model (its file is left alone unless it was copied into
    `models_dir()`, in which case the copy is deleted). Returns the removed entry."""
    with _registry_locked():
        models = load_registry()
        if name not in models:
            raise ModelLoadError(f"no imported model is called '{name}'")
        item = models.pop(name)
        _save_registry(models)
    if item.path.is_file() and item.path.parent == models_dir() / "imported":
        item.path.unlink(missing_ok=True)
    return item


def _looks_like_torch_file(path: Path) -> bool:
    """True for the zip container of torch.save (>= 1.6) or a legacy pickle stream, judged
    by the first bytes: a truncated file still passes, so that the loader can say it is
    truncated rather than "not a checkpoint"."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK\x03\x04"):
        return True
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _validate_checkpoint(path: Path) -> str | None:
    """Check that `path` is a loadable SAM checkpoint (weights_only load into Meta's
    modules); return its architecture."""
    if not _looks_like_torch_file(path):
        raise ModelLoadError(
            f"{path}: not a PyTorch checkpoint (neither a torch zip archive nor a pickle)"
        )
    from samstudio.inference.checkpoints import load_sam_checkpoint

    _sam, architecture = load_sam_checkpoint(path)
    return architecture


def _validate_onnx_dir(path: Path) -> str | None:
    """Check an exported ONNX folder: manifest.json plus the .onnx files it names."""
    manifest = path / "manifest.json"
    if not manifest.is_file():
        raise ModelLoadError(f"{path}: not an exported ONNX model (no manifest.json in it)")
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{manifest}: unreadable manifest ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{manifest}: the manifest is not a JSON object")
    named = [v for v in _walk_strings(meta) if v.endswith(".onnx")]
    missing = [v for v in named if not (path / v).is_file()]
    if missing:
        raise ModelLoadError(f"{path}: the manifest names missing files: {', '.join(missing)}")
    files = meta.get("files")
    for item in files.values() if isinstance(files, dict) else ():
        if isinstance(item, dict) and "path" in item and "bytes" in item:
            named_file = path / str(item["path"])
            if not named_file.is_file():
                raise ModelLoadError(f"{named_file}: named in {manifest.name} but missing")
            try:
                expected = int(item["bytes"])
            except (TypeError, ValueError):
                raise ModelLoadError(
                    f"{manifest}: the size of {item['path']} is not a number: {item['bytes']!r}"
                ) from None
            actual = named_file.stat().st_size
            if actual != expected:
                raise ModelLoadError(
                    f"{named_file}: {actual} bytes, but the manifest says "
                    f"{expected} (truncated or replaced)"
                )
    if not named and not any(path.glob("*.onnx")):
        raise ModelLoadError(f"{path}: no .onnx files in this folder")
    arch = meta.get("architecture") or meta.get("model_type")
    return str(arch) if arch else None


def _walk_strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _walk_strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _walk_strings(v)]
    return []


def import_model(
    path: str | os.PathLike[str],
    name: str | None = None,
    *,
    copy: bool = False,
    status: Callable[[str], None] | None = None,
) -> ImportedModel:
    """Validate and register a model the user already has.

    path: a `.pth`/`.pt` SAM checkpoint, or a folder with an ONNX export and manifest.json.
    name: how to call it; default: the catalog name when the file is a known official
    checkpoint (by SHA-256), else the file or folder name without suffix. copy: also copy a
    checkpoint into `models_dir()/imported/` so the registration survives moving the
    original. status: receives short progress messages. Raises ModelLoadError naming the
    file and the problem.
    """
    from samstudio.inference.catalog import CATALOG, DEMO_MODEL, canonical_name

    src = Path(path).expanduser().resolve()
    say = status or (lambda _msg: None)
    if not src.exists():
        raise ModelLoadError(f"{src}: no such file or folder")
    digest: str | None = None
    if src.is_dir():
        kind = "onnx"
        architecture = _validate_onnx_dir(src)
        size = sum(p.stat().st_size for p in src.iterdir() if p.is_file())
    elif src.suffix.lower() in CHECKPOINT_SUFFIXES:
        kind = "checkpoint"
        size = src.stat().st_size
        if size == 0:
            raise ModelLoadError(f"{src}: the file is empty")
        say(f"checking {src.name} ({size / 2**20:.0f} MiB)")
        from samstudio.inference.checkpoints import file_sha256

        digest = file_sha256(src)
        architecture = _validate_checkpoint(src)
    else:
        raise ModelLoadError(
            f"{src}: not a model: expected a .pth checkpoint or a folder with an ONNX "
            "export (manifest.json)"
        )
    if name is None:
        official = [e for e in CATALOG.values() if digest is not None and e.sha256 == digest]
        name = official[0].name if official else src.stem if src.is_file() else src.name
    name = canonical_name(name)
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ModelLoadError(f"'{name}' is not a usable model name")
    if name == DEMO_MODEL:
        raise ModelLoadError(f"'{DEMO_MODEL}' is the shipped demo model's name; pick another")
    if name in CATALOG and digest is not None and CATALOG[name].sha256 not in (None, digest):
        raise ModelLoadError(
            f"{src}: cannot register as '{name}': its SHA-256 {digest} differs from the "
            f"official {CATALOG[name].sha256}; choose another --name"
        )
    target = src
    if copy and kind == "checkpoint":
        dest_dir = models_dir() / "imported"
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / f"{name}{src.suffix.lower()}"
        say(f"copying to {target}")
        tmp: Path | None = None
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=dest_dir)
            os.close(fd)
            tmp = Path(tmp_name)
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise ModelLoadError(f"cannot copy {src} to {target}: {exc}") from exc
    item = ImportedModel(
        name=name,
        path=target,
        kind=kind,
        architecture=architecture,
        size=size,
        sha256=digest,
        imported_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    with _registry_locked():
        models = load_registry()
        models[name] = item
        _save_registry(models)
    return item
