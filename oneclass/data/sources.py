"""Where images come from, and reading them: :func:`open_source` turns a spec (a folder, a zip
archive read in place, a CSV/TXT list of paths or URLs, one image file, or a named dataset
manifest ``dataset:<name>[/<subset>]``) into a source of :class:`ImageItem`;
:func:`open_sources` does it for several specs with ids unique across them.

:func:`iter_images` decodes items on a small thread pool and yields a :class:`Failure` for an
unreadable one instead of raising, so one bad file (corrupt, a FIFO, a zip bomb, an encrypted
zip member, a 1.5 GB file, a name that is not UTF-8) never stops a run of thousands.

The listing classes live in :mod:`oneclass.data.listing` and the item types in
:mod:`oneclass.data.items`; both are re-exported here.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from oneclass.data.decode import MAX_PIXELS, decode_image
from oneclass.data.errors import DecodeError, ImageLoadError
from oneclass.data.items import Failure, ImageItem, unique_ids
from oneclass.data.listing import (
    IMAGE_EXTENSIONS,
    FolderSource,
    ItemsSource,
    ListSource,
    Source,
    ZipSource,
    file_item,
)
from oneclass.data.uri import MAX_FILE_BYTES, printable, read_uri

__all__ = [
    "DecodeError",
    "Failure",
    "FolderSource",
    "IMAGE_EXTENSIONS",
    "ImageItem",
    "ImageLoadError",
    "ItemsSource",
    "ListSource",
    "Source",
    "ZipSource",
    "iter_images",
    "load_image",
    "load_images",
    "open_source",
    "open_sources",
    "unique_ids",
]

_ZIP_PREFIX = re.compile(r"^(.+?\.zip)!(.*)$", re.IGNORECASE)
ImageResult = tuple[ImageItem, Image.Image | Failure]


def open_source(spec: str | Path, **kw) -> Source:
    """Open one image source.

    Args:
        spec: a folder, ``a.zip`` or ``a.zip!prefix/``, a ``.csv``/``.txt`` list, one image file,
            or ``dataset:<name>[/<subset>]``.
        **kw: keywords of the source class (e.g. ``family``).

    Returns:
        The :class:`Source`.

    Raises:
        ValueError: the spec names nothing that can be read as images.
    """
    spec = str(spec)
    if spec.startswith("dataset:"):
        from oneclass.data.manifests import dataset_items

        name, _, subset = spec[len("dataset:") :].partition("/")
        return ItemsSource(dataset_items(name, subset or None, **kw), spec)
    m = _ZIP_PREFIX.match(spec)
    if m:
        return ZipSource(m[1], m[2], **kw)
    path = Path(spec).expanduser()
    if path.is_dir():
        return FolderSource(path, **kw)
    if not path.exists():
        raise ValueError(f"{printable(spec)}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return ZipSource(path, **kw)
    if suffix in (".csv", ".txt"):
        return ListSource(path, **kw)
    if suffix in IMAGE_EXTENSIONS:
        return ItemsSource([file_item(path, **kw)], printable(spec))
    raise ValueError(
        f"{printable(spec)}: cannot open as an image source (expected a folder, a "
        ".zip, a .csv/.txt list, an image file or dataset:<name>)"
    )


def open_sources(specs: Iterable[str | Path | ImageItem], **kw) -> list[ImageItem]:
    """The items of several sources, with ids unique across them.

    With more than one spec, each id is prefixed by the spec it came from (``a/x.jpg`` and
    ``b/x.jpg`` for two folders ``a`` and ``b`` that both hold ``x.jpg``; a spec that is one
    image file keeps the spec as its id); ids that still repeat are made unique by
    :func:`unique_ids`. Items given as :class:`ImageItem` are taken as they are.

    Returns:
        The items, in the order of the specs.
    """
    specs = list(specs)
    several = len(specs) > 1
    items: list[ImageItem] = []
    for spec in specs:
        if isinstance(spec, ImageItem):
            items.append(spec)
            continue
        source = open_source(spec, **kw)
        got = source.items()
        if several:
            name = printable(str(spec)).rstrip("/") or "/"
            if isinstance(source, ItemsSource) and not name.startswith("dataset:"):
                got = [replace(it, id=name) for it in got]  # one image file
            else:
                got = [replace(it, id=f"{name}/{it.id}") for it in got]
        items.extend(got)
    return unique_ids(items)


def _as_item(x: ImageItem | str | Path) -> ImageItem:
    return x if isinstance(x, ImageItem) else ImageItem(id=printable(str(x)), uri=str(x))


def load_image(
    path_or_item: str | Path | ImageItem,
    *,
    max_pixels: int = MAX_PIXELS,
    size_hint: tuple[int, int] | int | None = None,
    max_side: int | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> Image.Image:
    """Read and decode one image (a path, a ``zip://`` or http(s) URI, or an :class:`ImageItem`).

    Returns:
        The RGB image (see :func:`oneclass.data.decode.decode_image` for the options).

    Raises:
        ImageLoadError: naming the image and the reason (``DecodeError`` for bad content).
    """
    if isinstance(path_or_item, ImageItem):
        uri, data = path_or_item.uri, path_or_item.read_bytes(max_bytes=max_bytes)
    else:
        uri = str(path_or_item)
        data = read_uri(uri, max_bytes=max_bytes)
    return decode_image(
        data, printable(uri), max_pixels=max_pixels, size_hint=size_hint, max_side=max_side
    )


def iter_images(
    items: Iterable[ImageItem | str | Path],
    *,
    progress: bool = True,
    workers: int = 4,
    max_pixels: int = MAX_PIXELS,
    size_hint: tuple[int, int] | int | None = None,
    max_side: int | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    desc: str = "decode",
) -> Iterator[ImageResult]:
    """Read and decode items, in input order, never raising for a bad one.

    Decoding runs on ``workers`` threads (Pillow releases the GIL) with a bounded number in
    flight; ``workers <= 1`` decodes in the calling thread. ``max_side``, ``size_hint`` and
    ``max_pixels`` are those of :func:`~oneclass.data.decode.decode_image`; ``max_bytes`` caps
    each file read.

    Returns:
        An iterator of ``(item, RGB image)`` or ``(item, Failure)``.
    """
    todo = [_as_item(x) for x in items]

    def work(item: ImageItem) -> Image.Image | Failure:
        try:
            return load_image(
                item,
                max_pixels=max_pixels,
                size_hint=size_hint,
                max_side=max_side,
                max_bytes=max_bytes,
            )
        except ImageLoadError as exc:
            return Failure(item, exc.reason)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the run
            return Failure(item, f"unexpected error while reading ({type(exc).__name__}: {exc})")

    failed = 0
    with tqdm(total=len(todo), disable=not progress, unit="img", desc=desc) as bar:
        pool = None
        if workers <= 1:
            results: Iterator[ImageResult] = ((it, work(it)) for it in todo)
        else:
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="oneclass-decode")
            results = _ordered(pool, work, todo, window=4 * workers)
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


def _ordered(
    pool: ThreadPoolExecutor,
    fn: Callable[[ImageItem], Image.Image | Failure],
    items: list[ImageItem],
    window: int,
) -> Iterator[ImageResult]:
    pending: deque[tuple[ImageItem, Future]] = deque()
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


def load_images(
    items: Iterable[ImageItem | str | Path],
    **kw,
) -> tuple[list[ImageItem], list[Image.Image], list[Failure]]:
    """Decode all items (keywords as :func:`iter_images`).

    Returns:
        ``(items decoded, their images, failures)``.
    """
    ok_items, images, failures = [], [], []
    for item, result in iter_images(items, **kw):
        if isinstance(result, Failure):
            failures.append(result)
        else:
            ok_items.append(item)
            images.append(result)
    return ok_items, images, failures
