"""Models the user imported (`samstudio model import PATH`): a small JSON registry.

The registry is `data_dir()/model_registry.json`, rewritten atomically on every change:
{"version": 1, "models": {NAME: {"path", "kind", "architecture", "size", "sha256",
"imported_at", "copied"}}}. A registered model is a reference to the user's file or ONNX
folder (or, with `copy=True`, to a copy in `models_dir()/imported/`).

Names are unique: importing a different file under a taken name is refused (the same
path again refreshes the entry), and the catalog's names and aliases are reserved for the
catalog's own files (same SHA-256).

Validation on import is quick and torch-free where it can be: an ONNX folder needs a
readable `manifest.json` and the `.onnx` files it names; a checkpoint must look like a
PyTorch file (zip or pickle) and is then loaded with
`samstudio.inference.checkpoints.load_sam_checkpoint` (torch, weights_only=True), which
also detects the architecture.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
    copied: True when this entry owns a copy in `models_dir()/imported/` (made by
    `import_model(copy=True)`), which is deleted with the last entry that refers to it;
    None for entries written before this was recorded.
    """

    name: str
    path: Path
    kind: str
    architecture: str | None
    size: int
    sha256: str | None
    imported_at: str
    copied: bool | None = None

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
                copied=None if item.get("copied") is None else bool(item["copied"]),
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


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def _owns_copy(item: ImportedModel) -> bool:
    """Whether `item` owns its file as a copy made by `import_model(copy=True)`. Entries
    from before `copied` was recorded own a file in `models_dir()/imported/`."""
    if item.copied is not None:
        return item.copied
    return item.path.parent == models_dir() / "imported"


def unregister(name: str) -> ImportedModel:
    """Forget an imported model. Its file is left alone unless this entry's import copied
    it into `models_dir()/imported/` and no other entry refers to it; then the copy is
    deleted. (When another entry still refers to the copy, that entry now owns it.)
    Returns the removed entry."""
    delete = False
    with _registry_locked():
        models = load_registry()
        if name not in models:
            raise ModelLoadError(f"no imported model is called '{name}'")
        item = models.pop(name)
        if _owns_copy(item):
            others = [m for m in models.values() if _same_path(m.path, item.path)]
            if others:
                heir = others[0]
                models[heir.name] = dataclasses.replace(heir, copied=True)
            else:
                delete = True
        _save_registry(models)
    if delete and item.path.is_file():
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
    unique: bool = False,
) -> ImportedModel:
    """Validate and register a model the user already has.

    path: a `.pth`/`.pt` SAM checkpoint, or a folder with an ONNX export and manifest.json.
    name: how to call it; default: the catalog name when the file is a known official
    checkpoint (by SHA-256), else the file or folder name without suffix. copy: also copy a
    checkpoint into `models_dir()/imported/` so the registration survives moving the
    original. status: receives short progress messages. unique (for the GUI, which asks
    no name): when no name is given and the default one is taken by another model or is
    a catalog name the file may not have, use the first free of NAME-2, NAME-3, ...
    Raises ModelLoadError naming the file and the problem.
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
        if unique and not official:
            name = _first_free_name(name, src, load_registry())
    given = name
    name = canonical_name(name)
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ModelLoadError(f"'{name}' is not a usable model name")
    if name == DEMO_MODEL:
        raise ModelLoadError(f"'{given}' is the shipped demo model's name; pick another --name")
    if name in CATALOG:
        official_sha = CATALOG[name].sha256
        called = f"'{given}'" if given == name else f"'{given}' (alias of '{name}')"
        if digest is None:
            raise ModelLoadError(
                f"{src}: cannot register as {called}: that is a catalog model's name, "
                "reserved for its official checkpoint (an ONNX export cannot be checked "
                "against its SHA-256); choose another --name"
            )
        if official_sha != digest:
            raise ModelLoadError(
                f"{src}: cannot register as {called}: that is a catalog model's name, and "
                f"this file's SHA-256 {digest} differs from the official "
                f"{official_sha or '(unknown)'}; choose another --name"
            )
    copied = copy and kind == "checkpoint"
    target = src
    if copied:
        target = models_dir() / "imported" / f"{name}{src.suffix.lower()}"
    copy_sha = digest if copied else None
    _check_name_free(load_registry(), name, target, copy_sha)  # fail before a long copy
    tmp: Path | None = None
    if copied:
        dest_dir = target.parent
        dest_dir.mkdir(parents=True, exist_ok=True)
        say(f"copying to {target}")
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=dest_dir)
            os.close(fd)
            tmp = Path(tmp_name)
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
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
        copied=copied,
    )
    try:
        with _registry_locked():
            models = load_registry()
            # checked again under the lock: another process may have taken the name
            previous = _check_name_free(models, name, target, copy_sha)
            if tmp is not None:
                try:
                    os.replace(tmp, target)
                except OSError as exc:
                    raise ModelLoadError(f"cannot copy {src} to {target}: {exc}") from exc
                tmp = None
            if previous is not None and _owns_copy(previous):
                item = dataclasses.replace(item, copied=True)  # a refresh keeps ownership
            models[name] = item
            _save_registry(models)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return item


def _first_free_name(base: str, target: Path, models: dict[str, ImportedModel]) -> str:
    """`base`, or base-2, base-3, ...: the first name that is neither a catalog/demo name
    nor registered for another file."""
    from samstudio.inference.catalog import CATALOG, DEMO_MODEL, canonical_name

    def free(candidate: str) -> bool:
        name = canonical_name(candidate)
        if name in CATALOG or name == DEMO_MODEL:
            return False
        return name not in models or Path(models[name].path) == target

    n = 1
    candidate = base
    while not free(candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _check_name_free(
    models: dict[str, ImportedModel], name: str, target: Path, copy_sha256: str | None
) -> ImportedModel | None:
    """The entry already called `name` when it is for `target` (a refresh), None when the
    name is free; ModelLoadError when it names another file or folder. copy_sha256: the
    digest of the file about to be copied to `target`; a copy refreshes an entry only
    when it has the same content (else it would overwrite the entry's file)."""
    existing = models.get(name)
    if existing is None:
        return None
    if _same_path(existing.path, target) and (
        copy_sha256 is None or existing.sha256 == copy_sha256
    ):
        return existing
    raise ModelLoadError(
        f"a model called '{name}' is already imported ({existing.path}); choose another "
        f"name with --name NAME, or run `samstudio model remove {name}` first"
    )
