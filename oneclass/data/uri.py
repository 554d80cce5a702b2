"""Image addresses: a file path, ``zip:///abs/archive.zip!member/path``, or an http(s) URL.

Zip archives are read in place (never extracted); their handles are cached, so reading the
20,000 members of an archive does not parse its directory 20,000 times.
"""

from __future__ import annotations

import threading
import zipfile
from collections import OrderedDict
from pathlib import Path

from oneclass.data.errors import ImageLoadError

ZIP_SCHEME = "zip://"
_MAX_OPEN_ZIPS = 8
_zips: OrderedDict[tuple[str, int, int], zipfile.ZipFile] = OrderedDict()
_zips_lock = threading.Lock()


def is_url(uri: str) -> bool:
    """True for an http(s) URL."""
    return uri[:8].lower().startswith(("http://", "https://"))


def zip_uri(archive: str | Path, member: str) -> str:
    """``zip://`` URI of ``member`` inside ``archive`` (made absolute)."""
    return f"{ZIP_SCHEME}{Path(archive).resolve().as_posix()}!{member}"


def parse_zip_uri(uri: str) -> tuple[Path, str]:
    """``zip:///a/b.zip!x/y.jpg`` -> (Path("/a/b.zip"), "x/y.jpg")."""
    rest = uri[len(ZIP_SCHEME):]
    cut = rest.lower().find(".zip!")
    if not uri.startswith(ZIP_SCHEME) or cut < 0:
        raise ImageLoadError(uri, "malformed zip URI (expected zip:///path/archive.zip!member)")
    return Path(rest[:cut + 4]), rest[cut + 5:]


def open_zip(path: str | Path) -> zipfile.ZipFile:
    """A cached read-only handle on ``path`` (reopened if the file changed)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageLoadError(str(path), "zip archive not found") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    with _zips_lock:
        zf = _zips.get(key)
        if zf is not None:
            _zips.move_to_end(key)
            return zf
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ImageLoadError(str(path), f"not a readable zip archive ({exc})") from None
        _zips[key] = zf
        while len(_zips) > _MAX_OPEN_ZIPS:  # dropped, not closed: a reader may still use it
            _zips.popitem(last=False)
        return zf


def read_uri(uri: str) -> bytes:
    """The bytes at ``uri``; raises :class:`ImageLoadError` naming it and the reason.

    URLs go through the default downloader (its on-disk cache; ``ONECLASS_OFFLINE=1`` honoured).
    """
    uri = str(uri)
    if is_url(uri):
        from oneclass.data.download import default_downloader

        return default_downloader().fetch_one(uri).read_bytes()
    if uri.startswith(ZIP_SCHEME):
        archive, member = parse_zip_uri(uri)
        zf = open_zip(archive)
        try:
            return zf.read(member)
        except KeyError:
            raise ImageLoadError(uri, "no such member in the zip archive") from None
        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # bad CRC, truncated archive
            raise ImageLoadError(uri, f"corrupt zip member ({exc})") from None
    path = Path(uri[7:] if uri.startswith("file://") else uri)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageLoadError(uri, "file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(uri, "is a directory, not an image file") from None
    except OSError as exc:
        raise ImageLoadError(uri, f"cannot read file ({exc.strerror or exc})") from None
