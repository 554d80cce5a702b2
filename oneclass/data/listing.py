"""Listing images: a folder, a zip archive (read in place) or a CSV/TXT list of paths or URLs.

Each :class:`Source` is an iterable of :class:`~oneclass.data.items.ImageItem`, listed once on
first use. Nothing is read or decoded here (see :mod:`oneclass.data.sources`).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from oneclass.data.errors import ImageLoadError
from oneclass.data.items import ImageItem
from oneclass.data.uri import ZIP_SCHEME, is_url, open_zip, path_uri, printable, zip_uri

__all__ = ["IMAGE_EXTENSIONS", "FolderSource", "ItemsSource", "ListSource", "Source", "ZipSource"]

#: file endings listed as images by folder and zip sources (decoding still sniffs the content)
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib", ".tif", ".tiff", ".webp",
    ".ppm", ".pgm", ".pbm", ".pnm", ".ico", ".avif", ".jp2", ".j2k", ".qoi", ".mpo",
})  # fmt: skip
_LIST_HEADERS = {"url", "uri", "path", "file", "filename", "image", "image_url", "location"}


def _wanted(name: str, extensions: Iterable[str] | None) -> bool:
    base = name.rsplit("/", 1)[-1]
    if not base or base.startswith(".") or base in ("Thumbs.db", "desktop.ini"):
        return False
    return extensions is None or os.path.splitext(base)[1].lower() in extensions


def _norm_ext(extensions: Iterable[str] | None) -> frozenset[str] | None:
    if extensions is None:
        return None
    return frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)


def file_item(path: str | Path, *, id: str | None = None, **kw) -> ImageItem:
    """An item for one local file (its name or ``id`` as id, its absolute path as address).

    Returns:
        The :class:`ImageItem`; names that are not UTF-8 become plain text (see ``path_uri``).
    """
    path = Path(path)
    return ImageItem(
        id=printable(id if id is not None else path.name), uri=path_uri(path.resolve()), **kw
    )


class Source:
    """An iterable of :class:`ImageItem`, listed once on first use."""

    spec: str = ""
    _items: list[ImageItem] | None = None

    def _list(self) -> list[ImageItem]:
        raise NotImplementedError

    def items(self) -> list[ImageItem]:
        """Returns the items (listed on the first call, then remembered)."""
        if self._items is None:
            self._items = self._list()
        return list(self._items)

    def __iter__(self) -> Iterator[ImageItem]:
        return iter(self.items())

    def __len__(self) -> int:
        return len(self.items())

    def labels(self) -> list[str | None]:
        """Returns the label of each item, in order."""
        return [it.label for it in self.items()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


class ItemsSource(Source):
    """A ready list of items (e.g. from a dataset manifest)."""

    def __init__(self, items: Iterable[ImageItem], spec: str = "items"):
        self.spec = spec
        self._items = list(items)


class FolderSource(Source):
    """Image files under ``root`` (recursive, sorted); label = name of the folder holding a file
    (``None`` at the top level); ``id`` = path relative to ``root``. Hidden files are skipped.

    Special files (FIFOs, devices, sockets) with an image ending are listed: reading them fails
    with the reason (they are never opened), so they show in the failures of a run.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        extensions: Iterable[str] | None = IMAGE_EXTENSIONS,
        recursive: bool = True,
        family: str | None = None,
    ):
        self.root = Path(root)
        self.spec = printable(str(root))
        self.extensions = _norm_ext(extensions)
        self.recursive = recursive
        self.family = family
        if not self.root.is_dir():
            raise ValueError(
                f"{self.spec}: not a folder"
                if self.root.exists()
                else f"{self.spec}: no such folder"
            )

    def _list(self) -> list[ImageItem]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(
                d for d in dirnames if self.recursive and not d.startswith(".") and d != "__MACOSX"
            )
            rel_dir = Path(dirpath).relative_to(self.root)
            label = printable(rel_dir.name) if rel_dir.parts else None
            for name in sorted(filenames):
                if _wanted(name, self.extensions):
                    out.append(
                        file_item(
                            Path(dirpath) / name,
                            id=(rel_dir / name).as_posix(),
                            label=label,
                            family=self.family,
                        )
                    )
        return out


class ZipSource(Source):
    """Image members of a zip archive under ``prefix``, read in place (never extracted);
    label = name of the folder holding a member (``None`` directly under the prefix)."""

    def __init__(
        self,
        path: str | Path,
        prefix: str = "",
        *,
        extensions: Iterable[str] | None = IMAGE_EXTENSIONS,
        family: str | None = None,
    ):
        self.path = Path(path)
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.spec = f"{path}!{prefix}" if prefix else str(path)
        self.extensions = _norm_ext(extensions)
        self.family = family
        if not self.path.is_file():
            raise ValueError(f"{self.path}: no such zip file")

    def _list(self) -> list[ImageItem]:
        try:
            zf = open_zip(self.path)
        except ImageLoadError as exc:
            raise ValueError(str(exc)) from None
        out = []
        head = zip_uri(self.path, "")
        for info in zf.infolist():
            name = info.filename
            if info.is_dir() or not name.startswith(self.prefix) or "__MACOSX/" in name:
                continue
            if not _wanted(name, self.extensions):
                continue
            rel = name[len(self.prefix) :]
            label = rel.rsplit("/", 2)[-2] if "/" in rel else None
            out.append(ImageItem(id=name, uri=head + name, label=label, family=self.family))
        if self.prefix and not out:
            raise ValueError(f"{self.path}: no images under {self.prefix!r} in the archive")
        return sorted(out, key=lambda it: it.id)


class ListSource(Source):
    """A CSV or TXT list: one path or URL a line (CRLF or LF, blank lines and ``#`` comments
    skipped, no header needed; a first line ``url``/``path`` is taken as a header).

    In a CSV an optional second column is the label. Relative paths are resolved against the
    list's folder (or ``base``). A repeated entry is kept once; the repeats are in
    ``duplicates``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        base: str | Path | None = None,
        label: str | None = None,
        family: str | None = None,
    ):
        self.path = Path(path)
        self.spec = str(path)
        self.base = Path(base) if base is not None else self.path.parent
        self.label = label
        self.family = family
        self.duplicates: list[str] = []
        if not self.path.is_file():
            raise ValueError(f"{self.path}: no such list file")

    def _rows(self) -> Iterator[list[str]]:
        try:
            text = self.path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{self.path}: not a UTF-8 text list ({exc})") from None
        if self.path.suffix.lower() == ".csv":
            yield from csv.reader(io.StringIO(text))
        else:
            yield from ([line] for line in text.splitlines())

    def _list(self) -> list[ImageItem]:
        out: dict[str, ImageItem] = {}
        self.duplicates = []
        for row in self._rows():
            cells = [c.strip() for c in row]
            if not cells or not cells[0] or cells[0].startswith("#"):
                continue
            loc = cells[0]
            if not out and not self.duplicates and loc.lower() in _LIST_HEADERS:
                continue  # a header line
            if loc in out:
                self.duplicates.append(loc)
                continue
            if is_url(loc) or loc.startswith(ZIP_SCHEME):
                uri = loc
            else:
                p = Path(loc[7:] if loc.startswith("file://") else loc).expanduser()
                uri = str(p if p.is_absolute() else (self.base / p).resolve())
            label = cells[1] if len(cells) > 1 and cells[1] else self.label
            out[loc] = ImageItem(id=loc, uri=uri, label=label, family=self.family)
        return list(out.values())
