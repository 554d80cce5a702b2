"""Where images come from: a folder, a zip archive (read in place), a CSV/TXT list of paths or
URLs, or a named dataset manifest (``dataset:<name>[/<subset>]``).

A source is an iterable of :class:`ImageItem` (an address plus label, group and family);
:func:`iter_images` decodes them on a small thread pool and yields a :class:`Failure` for an
unreadable one instead of raising, so one bad file never stops a run of thousands.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from oneclass.data.decode import MAX_PIXELS, decode_image
from oneclass.data.errors import DecodeError, ImageLoadError
from oneclass.data.uri import ZIP_SCHEME, is_url, open_zip, read_uri, zip_uri

__all__ = ["DecodeError", "Failure", "FolderSource", "IMAGE_EXTENSIONS", "ImageItem",
           "ImageLoadError", "ItemsSource", "ListSource", "Source", "ZipSource", "iter_images",
           "load_images", "open_source"]

#: file endings listed as images by folder and zip sources (decoding still sniffs the content)
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib", ".tif", ".tiff", ".webp",
    ".ppm", ".pgm", ".pbm", ".pnm", ".ico", ".avif", ".jp2", ".j2k", ".qoi", ".mpo",
})
_LIST_HEADERS = {"url", "uri", "path", "file", "filename", "image", "image_url", "location"}


@dataclass(frozen=True)
class ImageItem:
    """One image's address and metadata.

    ``id`` is unique within its source (relative path, zip member, URL); ``uri`` is a path,
    ``zip:///abs/archive.zip!member`` or an http(s) URL; ``label`` e.g. the sub-folder, person or
    class; ``group`` a near-duplicate/event group for group-aware splits; ``family`` the set it
    comes from (e.g. a negative family: ``"trump"``, ``"lfw"``).
    """

    id: str
    uri: str
    label: str | None = None
    group: str | None = None
    family: str | None = None

    def read_bytes(self) -> bytes:
        """The raw bytes; raises :class:`ImageLoadError` (URLs come through the download cache)."""
        return read_uri(self.uri)


@dataclass
class Failure:
    """An item that could not be read or decoded, and why."""

    item: ImageItem
    reason: str

    def __str__(self) -> str:
        return f"{self.item.uri}: {self.reason}"


def _wanted(name: str, extensions: Iterable[str] | None) -> bool:
    base = name.rsplit("/", 1)[-1]
    if not base or base.startswith(".") or base in ("Thumbs.db", "desktop.ini"):
        return False
    return extensions is None or os.path.splitext(base)[1].lower() in extensions


def _norm_ext(extensions: Iterable[str] | None) -> frozenset[str] | None:
    if extensions is None:
        return None
    return frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)


class Source:
    """An iterable of :class:`ImageItem`, listed once on first use."""

    spec: str = ""

    def _list(self) -> list[ImageItem]:
        raise NotImplementedError

    def items(self) -> list[ImageItem]:
        if getattr(self, "_items", None) is None:
            self._items = self._list()
        return list(self._items)

    def __iter__(self) -> Iterator[ImageItem]:
        return iter(self.items())

    def __len__(self) -> int:
        return len(self.items())

    def labels(self) -> list[str | None]:
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
    (``None`` at the top level); ``id`` = path relative to ``root``. Hidden files are skipped."""

    def __init__(self, root: str | Path, *, extensions: Iterable[str] | None = IMAGE_EXTENSIONS,
                 recursive: bool = True, family: str | None = None):
        self.root = Path(root)
        self.spec = str(root)
        self.extensions = _norm_ext(extensions)
        self.recursive = recursive
        self.family = family
        if not self.root.is_dir():
            raise ValueError(f"{self.root}: not a folder" if self.root.exists()
                             else f"{self.root}: no such folder")

    def _list(self) -> list[ImageItem]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames
                                 if self.recursive and not d.startswith(".") and d != "__MACOSX")
            rel_dir = Path(dirpath).relative_to(self.root)
            label = rel_dir.name if rel_dir.parts else None
            for name in sorted(filenames):
                if _wanted(name, self.extensions):
                    path = Path(dirpath) / name
                    out.append(ImageItem(id=(rel_dir / name).as_posix(), uri=str(path.resolve()),
                                         label=label, family=self.family))
        return out


class ZipSource(Source):
    """Image members of a zip archive under ``prefix``, read in place (never extracted);
    label = name of the folder holding a member (``None`` directly under the prefix)."""

    def __init__(self, path: str | Path, prefix: str = "", *,
                 extensions: Iterable[str] | None = IMAGE_EXTENSIONS, family: str | None = None):
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
            rel = name[len(self.prefix):]
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

    def __init__(self, path: str | Path, *, base: str | Path | None = None,
                 label: str | None = None, family: str | None = None):
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


_ZIP_PREFIX = re.compile(r"^(.+?\.zip)!(.*)$", re.IGNORECASE)


def open_source(spec: str | Path, **kw) -> Source:
    """A source from a spec: a folder, ``a.zip`` or ``a.zip!prefix/``, a ``.csv``/``.txt`` list,
    one image file, or ``dataset:<name>[/<subset>]``. Keywords go to the source class."""
    spec = str(spec)
    if spec.startswith("dataset:"):
        from oneclass.data.manifests import dataset_items

        name, _, subset = spec[len("dataset:"):].partition("/")
        return ItemsSource(dataset_items(name, subset or None, **kw), spec)
    m = _ZIP_PREFIX.match(spec)
    if m:
        return ZipSource(m[1], m[2], **kw)
    path = Path(spec).expanduser()
    if path.is_dir():
        return FolderSource(path, **kw)
    if not path.exists():
        raise ValueError(f"{spec}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return ZipSource(path, **kw)
    if suffix in (".csv", ".txt"):
        return ListSource(path, **kw)
    if suffix in IMAGE_EXTENSIONS:
        return ItemsSource([ImageItem(id=path.name, uri=str(path.resolve()), **kw)], spec)
    raise ValueError(f"{spec}: cannot open as an image source (expected a folder, a .zip, "
                     f"a .csv/.txt list, an image file or dataset:<name>)")


def _as_item(x: ImageItem | str | Path) -> ImageItem:
    return x if isinstance(x, ImageItem) else ImageItem(id=str(x), uri=str(x))


def iter_images(items: Iterable[ImageItem | str | Path], *, progress: bool = True,
                workers: int = 4, max_pixels: int = MAX_PIXELS,
                size_hint: tuple[int, int] | int | None = None, desc: str = "decode",
                ) -> Iterator[tuple[ImageItem, Image.Image | Failure]]:
    """Yield ``(item, RGB image)`` or ``(item, Failure)`` for each item, in input order.

    Decoding runs on ``workers`` threads (Pillow releases the GIL) with a bounded number in
    flight; ``workers <= 1`` decodes in the calling thread.
    """
    items = [_as_item(x) for x in items]

    def work(item: ImageItem) -> Image.Image | Failure:
        try:
            return decode_image(item.read_bytes(), item.uri, max_pixels=max_pixels,
                                size_hint=size_hint)
        except ImageLoadError as exc:
            return Failure(item, exc.reason)

    failed = 0
    with tqdm(total=len(items), disable=not progress, unit="img", desc=desc) as bar:
        if workers <= 1:
            results: Iterator = ((it, work(it)) for it in items)
            pool = None
        else:
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="oneclass-decode")
            results = _ordered(pool, work, items, window=4 * workers)
        try:
            for item, result in results:
                if isinstance(result, Failure):
                    failed += 1
                    bar.set_postfix(failed=failed, refresh=False)
                bar.update(1)
                yield item, result
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


def _ordered(pool: ThreadPoolExecutor, fn, items: list, window: int) -> Iterator[tuple]:
    pending: deque = deque()
    queue = iter(items)
    for item in queue:
        pending.append((item, pool.submit(fn, item)))
        if len(pending) >= window:
            break
    while pending:
        item, future = pending.popleft()
        nxt = next(queue, None)
        if nxt is not None:
            pending.append((nxt, pool.submit(fn, nxt)))
        yield item, future.result()


def load_images(items: Iterable[ImageItem | str | Path], **kw,
                ) -> tuple[list[ImageItem], list[Image.Image], list[Failure]]:
    """Decode all items: (items decoded, their images, failures); keywords as iter_images."""
    ok_items, images, failures = [], [], []
    for item, result in iter_images(items, **kw):
        if isinstance(result, Failure):
            failures.append(result)
        else:
            ok_items.append(item)
            images.append(result)
    return ok_items, images, failures
