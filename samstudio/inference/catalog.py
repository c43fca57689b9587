"""The model catalog: which models SAM Studio knows, and where each one lives on disk.

Three kinds of model:
- *downloadable*: Meta's official SAM checkpoints (vit_b, vit_l, vit_h). Their URLs,
  sizes and SHA-256 are pinned below; `samstudio model download NAME` fetches them into
  `models_dir()`.
- *shipped*: the project's demo model, in the repository's `resources/models/samstudio-demo/`.
  Its checksum is read from the `SHA256SUMS` file beside it.
- *imported*: files the user already had, registered with `samstudio model import`
  (see `samstudio.inference.registry`).

Sizes and SHA-256 of the official checkpoints were cross-checked between independent
public sources (micro-sam's pooch registry in `micro_sam/util.py`, and several unrelated
projects' download manifests listing byte sizes and SHA-256 for the same URLs).

This module imports only the standard library (and samstudio's own Qt-free modules).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from samstudio.core.paths import models_dir
from samstudio.inference.errors import ModelLoadError

DEMO_MODEL = "samstudio-demo"
"""Catalog name of the model shipped with SAM Studio (the default model)."""

_SAM_LICENSE = "Apache-2.0"
_SAM_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_DEMO_LICENSE = "see resources/models/samstudio-demo"


@dataclass(frozen=True)
class CatalogEntry:
    """One model the catalog knows.

    url: where to download it (None for shipped models). filename: the file's name in
    `models_dir()` (downloadable) or inside the shipped folder. size: bytes, or None when
    unknown. sha256: lowercase hex digest, or None when unknown (a download then refuses to
    finish unless the caller explicitly accepts an unverified file).
    """

    name: str
    architecture: str
    url: str | None
    filename: str
    size: int | None
    sha256: str | None
    description: str
    license: str
    shipped: bool = False

    @property
    def downloadable(self) -> bool:
        return self.url is not None and not self.shipped


SAM_CHECKPOINTS: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name="sam_vit_b",
        architecture="vit_b",
        url=_SAM_BASE_URL + "sam_vit_b_01ec64.pth",
        filename="sam_vit_b_01ec64.pth",
        size=375_042_383,
        sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        description="SAM ViT-B (91M parameters): fastest official SAM, about 358 MiB",
        license=_SAM_LICENSE,
    ),
    CatalogEntry(
        name="sam_vit_l",
        architecture="vit_l",
        url=_SAM_BASE_URL + "sam_vit_l_0b3195.pth",
        filename="sam_vit_l_0b3195.pth",
        size=1_249_524_607,
        sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        description="SAM ViT-L (308M parameters): about 1.2 GiB",
        license=_SAM_LICENSE,
    ),
    CatalogEntry(
        name="sam_vit_h",
        architecture="vit_h",
        url=_SAM_BASE_URL + "sam_vit_h_4b8939.pth",
        filename="sam_vit_h_4b8939.pth",
        size=2_564_550_879,
        sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        description="SAM ViT-H (636M parameters): most accurate official SAM, about 2.4 GiB",
        license=_SAM_LICENSE,
    ),
)

CATALOG: dict[str, CatalogEntry] = {e.name: e for e in SAM_CHECKPOINTS}
"""Downloadable entries by name. The shipped demo entry is built on demand by
`catalog_entry(DEMO_MODEL)` because its file may not exist in every checkout."""

ALIASES: dict[str, str] = {
    "vit_b": "sam_vit_b",
    "vit_l": "sam_vit_l",
    "vit_h": "sam_vit_h",
    "demo": DEMO_MODEL,
}


def resources_dir() -> Path:
    """The `resources/` folder of a source checkout (beside the `samstudio` package)."""
    import samstudio

    return Path(samstudio.__file__).resolve().parents[1] / "resources"


def shipped_model_dir() -> Path:
    """Folder of the shipped demo model: `resources/models/samstudio-demo/`."""
    return resources_dir() / "models" / DEMO_MODEL


def _read_sha256sums(folder: Path) -> dict[str, str]:
    """Parse a `sha256sum`-style SHA256SUMS file ("<hex>  <name>" per line) if present."""
    sums: dict[str, str] = {}
    path = folder / "SHA256SUMS"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return sums
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2 and len(parts[0]) == 64:
            sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def _read_manifest(folder: Path) -> dict[str, object]:
    """manifest.json of the shipped folder as a dict ({} when absent or unreadable)."""
    try:
        meta = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _checkpoint_sha256(ckpt: Path, sums: dict[str, str], meta: dict[str, object]) -> str | None:
    """The shipped checkpoint's SHA-256 from SHA256SUMS, a `<file>.sha256` sidecar, or a
    "sha256" field of manifest.json; None when none of them states it."""
    if ckpt.name in sums:
        return sums[ckpt.name]
    sidecar = ckpt.with_name(ckpt.name + ".sha256")
    if sidecar.is_file():
        words = sidecar.read_text(encoding="utf-8").split()
        if words and len(words[0]) == 64:
            return words[0].lower()
    value = meta.get("sha256")
    return value.lower() if isinstance(value, str) and len(value) == 64 else None


def _shipped_entry() -> CatalogEntry | None:
    """The demo model's entry, or None while its folder holds no model.

    An exported ONNX pair (`manifest.json` plus `.onnx` files, in the folder or its `onnx/`
    sub-folder) is preferred: it runs without torch. Otherwise the first `.pth`/`.pt`
    checkpoint, whose SHA-256 comes from SHA256SUMS beside it.
    """
    folder = shipped_model_dir()
    if not folder.is_dir():
        return None
    # the ONNX pair is preferred (it runs without torch, so the app starts faster); it may
    # sit in the folder itself or in its onnx/ sub-folder beside the .pt checkpoint
    for onnx_dir, filename in ((folder, "."), (folder / "onnx", "onnx")):
        if (onnx_dir / "manifest.json").is_file() and any(onnx_dir.glob("*.onnx")):
            return _onnx_entry(onnx_dir, filename)
    meta = _read_manifest(folder)
    arch_value = meta.get("architecture") or meta.get("model_type")
    architecture = str(arch_value) if arch_value else "unknown"
    checkpoints = sorted(folder.glob("*.pth")) + sorted(folder.glob("*.pt"))
    if not checkpoints:
        return None
    ckpt = checkpoints[0]
    return CatalogEntry(
        name=DEMO_MODEL,
        architecture=architecture,
        url=None,
        filename=ckpt.name,
        size=ckpt.stat().st_size,
        sha256=_checkpoint_sha256(ckpt, _read_sha256sums(folder), meta),
        description="SAM Studio demo model, shipped with the application",
        license=_DEMO_LICENSE,
        shipped=True,
    )


def _onnx_entry(onnx_dir: Path, filename: str) -> CatalogEntry:
    """The demo entry for an exported ONNX pair in `onnx_dir` (filename relative to the
    shipped folder: "." or "onnx")."""
    meta = _read_manifest(onnx_dir)
    arch_value = meta.get("architecture") or meta.get("model_type")
    size = sum(p.stat().st_size for p in onnx_dir.iterdir() if p.is_file())
    return CatalogEntry(
        name=DEMO_MODEL,
        architecture=str(arch_value) if arch_value else "unknown",
        url=None,
        filename=filename,
        size=size,
        sha256=None,
        description="SAM Studio demo model (ONNX), shipped with the application",
        license=_DEMO_LICENSE,
        shipped=True,
    )


def canonical_name(name: str) -> str:
    """Resolve aliases ("vit_b" -> "sam_vit_b", "demo" -> "samstudio-demo")."""
    return ALIASES.get(name, name)


def catalog_entry(name: str) -> CatalogEntry:
    """The catalog entry called `name` (aliases accepted). Raises ModelLoadError if unknown."""
    name = canonical_name(name)
    if name == DEMO_MODEL:
        entry = _shipped_entry()
        if entry is None:
            raise ModelLoadError(
                f"the demo model '{DEMO_MODEL}' is not in this installation "
                f"(expected a model in {shipped_model_dir()})"
            )
        return entry
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join([*CATALOG, DEMO_MODEL])
        raise ModelLoadError(f"unknown model '{name}'; catalog models are: {known}") from None


def download_path(entry: CatalogEntry) -> Path:
    """Where a downloadable entry's file lives once downloaded."""
    return models_dir() / entry.filename


def _shipped_path(entry: CatalogEntry) -> Path:
    folder = shipped_model_dir()
    return folder if entry.filename == "." else folder / entry.filename


def find_model_path(name: str) -> Path:
    """The file (a `.pth` checkpoint) or folder (an ONNX export) of the model called `name`.

    Looks, in order, at the shipped demo model, the downloadable catalog (file present in
    `models_dir()`), and the registry of imported models. Raises ModelLoadError with what
    to do when the model is unknown, not downloaded, or its file is missing or truncated.
    """
    from samstudio.inference import registry

    canon = canonical_name(name)
    if canon == DEMO_MODEL:
        return default_model_path()
    if canon in CATALOG:
        entry = CATALOG[canon]
        path = download_path(entry)
        if not path.is_file():
            imported = registry.lookup(canon)
            if imported is not None:
                return registry.checked_path(imported)
            raise ModelLoadError(
                f"model '{canon}' is not downloaded (expected {path}); "
                f"run `samstudio model download {canon}`"
            )
        actual = path.stat().st_size
        if entry.size is not None and actual != entry.size:
            raise ModelLoadError(
                f"{path}: the file is {actual} bytes but '{canon}' is {entry.size} bytes "
                f"(truncated or replaced); run `samstudio model download {canon}` again"
            )
        return path
    imported = registry.lookup(name)
    if imported is not None:
        return registry.checked_path(imported)
    known = ", ".join([*CATALOG, DEMO_MODEL, *registry.load_registry()])
    raise ModelLoadError(f"unknown model '{name}'; known models are: {known}")


def default_model_path() -> Path:
    """Path of the shipped demo model (the default). Raises ModelLoadError while absent."""
    entry = _shipped_entry()
    if entry is None:
        raise ModelLoadError(
            f"the default model '{DEMO_MODEL}' is not installed: {shipped_model_dir()} holds "
            "no model (a .pth checkpoint or an ONNX export with manifest.json). Download an "
            "official one with `samstudio model download sam_vit_b` and pass --model sam_vit_b"
        )
    return _shipped_path(entry)


@dataclass(frozen=True)
class ModelStatus:
    """One row of `samstudio model list`.

    status: "shipped", "downloaded", "partial NN%" (resumable: download again), "imported",
    "not downloaded", or "missing" (an imported file no longer where it was registered).
    """

    name: str
    architecture: str
    status: str
    path: Path | None
    size: int | None
    description: str


def list_models() -> list[ModelStatus]:
    """Every model SAM Studio knows, shipped first, then the catalog, then imported ones."""
    from samstudio.inference import registry

    rows: list[ModelStatus] = []
    shipped = _shipped_entry()
    if shipped is not None:
        rows.append(
            ModelStatus(
                shipped.name,
                shipped.architecture,
                "shipped",
                _shipped_path(shipped),
                shipped.size,
                shipped.description,
            )
        )
    imported = registry.load_registry()
    for entry in CATALOG.values():
        path = download_path(entry)
        present = path.is_file()
        if not present and entry.name in imported:
            continue  # the user's own copy of this checkpoint, listed below as imported
        status = "downloaded" if present else "not downloaded"
        part = path.with_name(path.name + ".part")  # download.partial_path(path)
        if not present and part.is_file():
            done = part.stat().st_size
            status = f"partial {100 * done // entry.size}%" if entry.size else "partial"
        rows.append(
            ModelStatus(
                entry.name,
                entry.architecture,
                status,
                path if present else None,
                entry.size,
                entry.description,
            )
        )
    for name, item in imported.items():
        exists = item.path.exists()
        rows.append(
            ModelStatus(
                name,
                item.architecture or "unknown",
                "imported" if exists else "missing",
                item.path,
                item.size,
                f"imported {item.kind} ({item.imported_at})",
            )
        )
    return rows
