"""Dataset manifests: ``<name>.yaml`` says where a data set lives under the data root,
its layout, counts, licence, public source and checksums.

Manifest fields (paths are relative to the data root)::

    name, description, role, family (default: name), licence, source {repository, commit, path,
    url}, downloads [{url, sha256, md5, note}] (upstream archives, for provenance)
    layout: folder | zip | url-list | arrays
    path: main file or folder;   prefix: zip member prefix
    groups: CSV of near-duplicate groups (columns ``filename,group[,exact_dup_of]``, or the
        columns named by ``groups_columns: {file: COL, group: COL}``)
    group_blocks: N: also group files by blocks of N consecutive numbers in their names
        (``005.jpg`` and ``007.jpg`` share block 0 for N = 8); files linked by either rule share
        one group
    label: "folder" (the folder holding each image) | a constant | null
    count, n_labels, per_label: what verify() checks;   checksums: {relative path: sha256}
    subsets: {name: fields overriding the above}

The data root is ``$ONECLASS_DATA``, else ``data_root:`` in ``./oneclass.yaml``, else a
``shared/data`` folder found walking up from the working directory or from this package's
checkout. Manifests are read from the folders of ``$ONECLASS_DATASETS`` (first match wins) and
then from the package (``oneclass/data/datasets/``, shipped as package data).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from oneclass.config import DATA_ENV, settings
from oneclass.data.errors import DataNotFoundError, ManifestError
from oneclass.data.groups import grouped_items
from oneclass.data.hashing import sha256_file
from oneclass.data.items import ImageItem
from oneclass.data.listing import FolderSource, ListSource, ZipSource

__all__ = [
    "DataNotFoundError",
    "ManifestError",
    "PACKAGE_MANIFESTS",
    "available_datasets",
    "data_root",
    "dataset_items",
    "fetch",
    "fetch_all",
    "load_manifest",
    "manifest_dirs",
    "verify",
]

CONFIG_FILE = "oneclass.yaml"
LAYOUTS = ("folder", "zip", "url-list", "arrays")
#: the manifests shipped inside the package
PACKAGE_MANIFESTS = Path(__file__).resolve().parent / "datasets"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SUBSET_ONLY = ("subsets",)


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _resolve(value: str | Path, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def data_root() -> Path:
    """The folder that holds the data sets (see the module docstring for the search order)."""
    env = settings().data_root
    if env:
        for base in (Path.cwd(), _repo_root()):
            if _resolve(env, base).is_dir():
                return _resolve(env, base)
        raise DataNotFoundError(
            f"{DATA_ENV}={env}: no such folder (relative values are taken "
            f"from the working directory or {_repo_root()})"
        )
    config = Path.cwd() / CONFIG_FILE
    if config.is_file():
        try:
            value = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("data_root")
        except (yaml.YAMLError, AttributeError) as exc:
            raise ManifestError(f"{config}: not a YAML mapping ({exc})") from None
        if value:
            path = _resolve(value, config.parent)
            if not path.is_dir():
                raise DataNotFoundError(f"{config}: data_root {value!r} -> {path}: no such folder")
            return path
    for start in (Path.cwd().resolve(), _repo_root()):
        for folder in (start, *start.parents):
            if (folder / "shared" / "data").is_dir():
                return folder / "shared" / "data"
    raise DataNotFoundError(
        f"no data root found: set {DATA_ENV}=/path/to/data, or data_root: in "
        f"./{CONFIG_FILE}, or put shared/data beside the checkout"
    )


def manifest_dirs() -> list[Path]:
    """Returns the folders searched for ``<name>.yaml``, first match wins: those of
    ``ONECLASS_DATASETS``, then the package's own."""
    return [*settings().dataset_dirs, PACKAGE_MANIFESTS]


def available_datasets() -> list[str]:
    """Names of the data sets that have a manifest."""
    return sorted({p.stem for d in manifest_dirs() if d.is_dir() for p in d.glob("*.yaml")})


def _manifest_file(name: str) -> Path:
    if not _NAME.match(name or ""):
        raise ManifestError(f"invalid dataset name {name!r}")
    for d in manifest_dirs():
        if (d / f"{name}.yaml").is_file():
            return d / f"{name}.yaml"
    raise ManifestError(
        f"unknown dataset {name!r}; available: "
        f"{', '.join(available_datasets()) or 'none'} (manifests are read from "
        f"{', '.join(map(str, manifest_dirs()))})"
    )


def _check_entry(entry: dict[str, Any], where: str) -> None:
    if entry.get("layout") not in LAYOUTS:
        raise ManifestError(
            f"{where}: layout must be one of {', '.join(LAYOUTS)}, got {entry.get('layout')!r}"
        )
    if not isinstance(entry.get("path"), str) or not entry["path"]:
        raise ManifestError(f"{where}: 'path' (relative to the data root) is required")
    if Path(entry["path"]).is_absolute() or ".." in Path(entry["path"]).parts:
        raise ManifestError(f"{where}: 'path' must be relative to the data root, inside it")
    for key in ("count", "n_labels", "per_label"):
        if entry.get(key) is not None and not isinstance(entry[key], int):
            raise ManifestError(f"{where}: {key!r} must be an integer")


def load_manifest(name: str) -> dict[str, Any]:
    """The manifest of ``name`` as a dict (validated); ``file`` says where it was read."""
    path = _manifest_file(name)
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: a manifest must be a YAML mapping")
    if manifest.get("name") != name:
        raise ManifestError(f"{path}: name {manifest.get('name')!r} does not match the file name")
    subsets = manifest.get("subsets") or {}
    if not isinstance(subsets, dict):
        raise ManifestError(f"{path}: 'subsets' must be a mapping of name -> fields")
    for sub, entry in _entries(manifest, None):
        _check_entry(entry, f"{path}" + (f" subset {sub!r}" if sub else ""))
    return {**manifest, "file": str(path)}


def _entries(manifest: dict[str, Any], subset: str | None) -> list[tuple[str | None, dict]]:
    """(subset name, fields) of the chosen subset, or of every subset, or of the whole set."""
    base = {k: v for k, v in manifest.items() if k not in _SUBSET_ONLY}
    subsets = manifest.get("subsets") or {}
    if subset is None:
        return [(k, {**base, **(v or {})}) for k, v in subsets.items()] or [(None, base)]
    if subset not in subsets:
        raise ManifestError(
            f"dataset {manifest['name']!r} has no subset {subset!r}; subsets: "
            f"{', '.join(subsets) or 'none'}"
        )
    return [(subset, {**base, **(subsets[subset] or {})})]


def _entry_items(name: str, entry: dict[str, Any], root: Path, family: str) -> list[ImageItem]:
    layout, path = entry["layout"], root / entry["path"]
    if layout == "arrays":
        raise ManifestError(
            f"dataset {name!r} holds feature arrays, not images: load them with "
            "oneclass.data.adbench"
        )
    if not path.exists():
        raise DataNotFoundError(f"dataset {name!r}: {path} not found under the data root {root}")
    label = entry.get("label")
    if layout == "folder":
        items = FolderSource(path, family=family).items()
    elif layout == "zip":
        items = ZipSource(path, entry.get("prefix", ""), family=family).items()
    else:
        items = ListSource(path, family=family).items()
    if label != "folder":
        items = [ImageItem(it.id, it.uri, label, it.group, it.family) for it in items]
    return grouped_items(name, entry, root, items)


def dataset_items(
    name: str,
    subset: str | None = None,
    *,
    family: str | None = None,
    root: str | Path | None = None,
) -> list[ImageItem]:
    """The images of a data set (all subsets unless one is named), with labels, groups
    (``"<name>:<group>"``) and family (the manifest's ``family``, default the data set name)."""
    manifest = load_manifest(name)
    root = Path(root) if root is not None else data_root()
    family = family or manifest.get("family") or name
    items: list[ImageItem] = []
    for _, entry in _entries(manifest, subset):
        items += _entry_items(name, entry, root, family)
    return items


def _verify_entry(
    name: str,
    sub: str | None,
    entry: dict[str, Any],
    root: Path,
    problems: list[str],
    checked: list[str],
) -> None:
    where = f"{name}/{sub}" if sub else name
    path = root / entry["path"]
    if not path.exists():
        problems.append(f"{where}: {path} is missing")
        return
    if entry["layout"] == "arrays":
        n, labels = len(list(path.rglob("*.npz"))), None
    else:
        try:
            items = _entry_items(name, entry, root, name)
        except (ValueError, OSError) as exc:
            problems.append(f"{where}: {exc}")
            return
        n, labels = len(items), Counter(it.label for it in items)
        if entry.get("groups") and any(it.group is None for it in items):
            missing = sum(it.group is None for it in items)
            problems.append(f"{where}: {missing} images have no row in {entry['groups']}")
    if entry.get("count") is not None and n != entry["count"]:
        problems.append(f"{where}: {n} files, the manifest says {entry['count']}")
    if (
        labels is not None
        and entry.get("n_labels") is not None
        and len(labels) != entry["n_labels"]
    ):
        problems.append(f"{where}: {len(labels)} labels, the manifest says {entry['n_labels']}")
    if labels is not None and entry.get("per_label") is not None:
        off = {k: v for k, v in labels.items() if v != entry["per_label"]}
        if off:
            problems.append(f"{where}: {len(off)} labels without {entry['per_label']} images")
    checked.append(f"{where}: {n} files")


def verify(
    name: str,
    *,
    root: str | Path | None = None,
    checksums: bool = True,
) -> dict[str, Any]:
    """Check a data set against its manifest: files present, counts (and labels) as recorded,
    SHA-256 of the files listed under ``checksums``. Returns ``{name, ok, problems, checked,
    message}``; never raises for a problem with the data (only for a bad manifest)."""
    manifest = load_manifest(name)
    problems: list[str] = []
    checked: list[str] = []
    try:
        root = Path(root) if root is not None else data_root()
    except DataNotFoundError as exc:
        problems.append(str(exc))
    else:
        for sub, entry in _entries(manifest, None):
            _verify_entry(name, sub, entry, root, problems, checked)
        for rel, digest in (manifest.get("checksums") or {}).items() if checksums else ():
            path = root / rel
            if not path.is_file():
                problems.append(f"{rel}: missing")
            elif digest and sha256_file(path) != digest:
                problems.append(f"{rel}: SHA-256 differs from the manifest (changed or corrupt)")
            else:
                checked.append(f"{rel}: sha256 ok")
    message = "; ".join(problems) if problems else ", ".join(checked)
    return {
        "name": name,
        "ok": not problems,
        "problems": problems,
        "checked": checked,
        "message": message,
    }


def _has_urls(manifest: dict[str, Any], subset: str | None) -> bool:
    return any(e["layout"] == "url-list" for _, e in _entries(manifest, subset))


def fetch(
    name: str, subset: str | None = None, *, downloader: Any = None, root: str | Path | None = None
) -> Any:
    """Download the image URLs of a ``url-list`` data set into the download cache.

    Offline (``ONECLASS_OFFLINE=1``), a set that is not fully cached raises
    :class:`~oneclass.data.errors.OfflineError` saying how many images are missing; without a
    network, the downloader gives up after a few connection failures in a row (see
    :class:`~oneclass.data.download.Downloader`) instead of trying every URL.

    Returns:
        The :class:`~oneclass.data.download.DownloadResult`.

    Raises:
        ManifestError: the set has no URLs (its files are local).
    """
    from oneclass.data.download import Downloader

    manifest = load_manifest(name)
    if not _has_urls(manifest, subset):
        raise ManifestError(
            f"dataset {name!r} has no URLs to download: its files are read from "
            f"{manifest['path']} under the data root"
        )
    urls = [
        it.uri
        for it in dataset_items(name, subset, root=root)
        if it.uri.lower().startswith(("http://", "https://"))
    ]
    return (downloader or Downloader()).fetch(urls)


def fetch_all(
    names: list[str] | None = None, *, downloader: Any = None, root: str | Path | None = None
) -> list[tuple[str, bool, str]]:
    """Fetch several data sets (default: every one that has a manifest), never stopping at one.

    A set whose files are local is reported as such when no names were given (an explicitly
    named one is a problem); a set that cannot be fetched (offline, data root missing) is a
    problem row and the next set is tried. Offline, the first set that needs the network
    fails fast and so do the rest.

    Returns:
        ``(name, ok, message)`` per set, in order.
    """
    from oneclass.data.errors import OfflineError

    explicit = bool(names)
    out: list[tuple[str, bool, str]] = []
    for name in names or available_datasets():
        try:
            manifest = load_manifest(name)
            if not _has_urls(manifest, None):
                local = "nothing to download: its files are local (see `datasets verify`)"
                out.append((name, not explicit, local))
                continue
            result = fetch(name, downloader=downloader, root=root)
        except (ManifestError, DataNotFoundError, OfflineError) as exc:
            out.append((name, False, str(exc)))
            continue
        out.append((name, bool(getattr(result, "ok", False)), str(result)))
    return out
