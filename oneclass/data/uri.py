"""Image addresses and reading their bytes, bounded: a file path, ``file://`` URI,
``zip:///abs/archive.zip!member/path`` or an http(s) URL.

Every read is bounded and never blocks on a special file:

- a path is ``stat``-ed (symlinks followed) before it is opened: FIFOs, sockets, character and
  block devices (a symlink to ``/dev/zero`` named ``.jpg``) are refused without being opened;
- a file over ``max_bytes`` (default :data:`MAX_FILE_BYTES`) is refused from its size alone, and
  a large file whose first bytes are no image format is refused after reading those bytes only;
- a zip member that is encrypted, declares or decompresses to more than ``max_bytes`` (a zip
  bomb), or is corrupt is refused with the reason; archives are read in place (never extracted),
  so member names such as ``../../x`` never reach the file system.

Zip handles are cached, so reading the 20,000 members of an archive does not parse its
directory 20,000 times. Names that are not valid UTF-8 (Linux file names are bytes) get a
``file://`` URI with percent-escapes (:func:`path_uri`) that is plain text and still opens the file.
"""

from __future__ import annotations

import os
import stat
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path
from urllib.parse import quote_from_bytes, unquote_to_bytes

from oneclass.data.decode import looks_like_image, not_image_reason
from oneclass.data.errors import DecodeError, ImageLoadError

__all__ = [
    "MAX_FILE_BYTES",
    "SNIFF_ABOVE",
    "ZIP_SCHEME",
    "is_url",
    "open_zip",
    "parse_zip_uri",
    "path_uri",
    "printable",
    "read_uri",
    "uri_path",
    "zip_uri",
]

ZIP_SCHEME = "zip://"
#: largest image file read (bytes): a bigger file, or zip member, is refused before it is read;
#: 256 MiB holds an uncompressed 89.5-megapixel RGB image (Pillow's pixel cap) with room to spare
MAX_FILE_BYTES: int = 256 * 2**20
#: files over this many bytes have their first bytes checked for an image format before the
#: rest is read, so a 1.5 GB video named ``.jpg`` is refused after reading 16 bytes
SNIFF_ABOVE: int = 4 * 2**20
_SNIFF = 4096
_MAX_OPEN_ZIPS = 8
_zips: OrderedDict[tuple[str, int, int], zipfile.ZipFile] = OrderedDict()
_zips_lock = threading.Lock()
_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def is_url(uri: str) -> bool:
    """Returns True for an http(s) URL."""
    return uri[:8].lower().startswith(("http://", "https://"))


def printable(name: str) -> str:
    """A file name as text: undecodable bytes (kept by Python as surrogates) become ``\\xNN``.

    Returns:
        ``name`` itself when it is valid UTF-8, else a readable escaped copy.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


def path_uri(path: str | Path) -> str:
    """The address of a local file as text that any CSV or JSON can hold.

    Returns:
        The path itself when it is valid UTF-8, else ``file://`` + its percent-escaped bytes.
    """
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "file://" + quote_from_bytes(os.fsencode(text), safe="/")
    return text


def uri_path(uri: str) -> Path:
    """Returns the local path of a plain path or ``file://`` URI (percent-escapes decoded)."""
    if uri.startswith("file://"):
        return Path(os.fsdecode(unquote_to_bytes(uri[7:])))
    return Path(uri)


def zip_uri(archive: str | Path, member: str) -> str:
    """Returns the ``zip://`` URI of ``member`` inside ``archive`` (made absolute)."""
    return f"{ZIP_SCHEME}{Path(archive).resolve().as_posix()}!{member}"


def parse_zip_uri(uri: str) -> tuple[Path, str]:
    """Split a zip URI.

    Returns:
        ``(archive, member)``: ``zip:///a/b.zip!x/y.jpg`` -> ``(Path("/a/b.zip"), "x/y.jpg")``.
    """
    rest = uri[len(ZIP_SCHEME) :]
    cut = rest.lower().find(".zip!")
    if not uri.startswith(ZIP_SCHEME) or cut < 0:
        raise ImageLoadError(uri, "malformed zip URI (expected zip:///path/archive.zip!member)")
    return Path(rest[: cut + 4]), rest[cut + 5 :]


def open_zip(path: str | Path) -> zipfile.ZipFile:
    """Returns a cached read-only handle on ``path`` (reopened if the file changed)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageLoadError(str(path), "zip archive not found") from None
    if not stat.S_ISREG(st.st_mode):
        raise ImageLoadError(str(path), "not a readable zip archive (not a regular file)")
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    with _zips_lock:
        zf = _zips.get(key)
        if zf is not None:
            _zips.move_to_end(key)
            return zf
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ImageLoadError(str(path), f"not a readable zip archive ({exc})") from None
        _zips[key] = zf
        while len(_zips) > _MAX_OPEN_ZIPS:  # dropped, not closed: a reader may still use it
            _zips.popitem(last=False)
        return zf


def _too_large(size: int, cap: int, what: str) -> str:
    return (
        f"{what} too large: {size:,} bytes exceeds the cap of {cap:,} bytes (max_bytes; "
        "refused before reading)"
    )


def read_zip_member(uri: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read one member of a zip archive, bounded.

    Returns:
        The member's bytes.

    Raises:
        ImageLoadError: no such member, encrypted, over ``max_bytes`` (declared or actual), or
            corrupt (bad CRC, truncated, unsupported compression).
    """
    archive, member = parse_zip_uri(uri)
    zf = open_zip(archive)
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise ImageLoadError(uri, "no such member in the zip archive") from None
    if info.flag_bits & 0x1:
        raise ImageLoadError(uri, "encrypted (password-protected) zip member: cannot be read")
    if info.file_size > max_bytes:
        raise ImageLoadError(uri, _too_large(info.file_size, max_bytes, "zip member (declared)"))
    try:
        with zf.open(info) as fh:
            data = fh.read(max_bytes + 1)
    except Exception as exc:  # noqa: BLE001 - zipfile/zlib/bz2/lzma raise many kinds
        raise ImageLoadError(uri, f"corrupt zip member ({type(exc).__name__}: {exc})") from None
    if len(data) > max_bytes:
        raise ImageLoadError(
            uri, f"zip member decompresses to more than {max_bytes:,} bytes (a zip bomb?): refused"
        )
    return data


def _kind(mode: int) -> str | None:
    for test, name in _KINDS:
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def read_file(path: str | Path, uri: str | None = None, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read a local file, bounded; special files are refused without being opened.

    Returns:
        The file's bytes.

    Raises:
        ImageLoadError: missing, a directory or special file, unreadable, or over ``max_bytes``.
        DecodeError: a file over :data:`SNIFF_ABOVE` bytes whose first bytes are no image.
    """
    name = printable(uri or str(path))
    try:
        st = os.stat(path)  # follows symlinks: the kind of the target counts
    except (FileNotFoundError, NotADirectoryError):
        raise ImageLoadError(name, "file not found") from None
    except OSError as exc:
        raise ImageLoadError(name, f"cannot read file ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageLoadError(name, "is a directory, not an image file")
    kind = _kind(st.st_mode)
    if kind is not None:
        raise ImageLoadError(name, f"{kind}, not a regular file: skipped, never opened")
    if st.st_size > max_bytes:
        raise ImageLoadError(name, _too_large(st.st_size, max_bytes, "file"))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO swapped in after stat cannot block
    except OSError as exc:
        raise ImageLoadError(name, f"cannot read file ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ImageLoadError(name, "not a regular file (changed while opening): skipped")
            head = b""
            if st.st_size > SNIFF_ABOVE:
                head = fh.read(_SNIFF)
                if not looks_like_image(head):
                    raise DecodeError(
                        name,
                        not_image_reason(head) + " (checked before reading "
                        f"the rest of {st.st_size:,} bytes)",
                    )
            data = head + fh.read(max_bytes + 1 - len(head))
        except OSError as exc:
            raise ImageLoadError(name, f"cannot read file ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise ImageLoadError(name, f"file grew past the cap of {max_bytes:,} bytes while read")
    return data


def read_uri(uri: str, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read the bytes at ``uri`` (see the module docstring for the bounds).

    URLs go through the default downloader (its on-disk cache; ``ONECLASS_OFFLINE=1`` honoured).

    Returns:
        The bytes.

    Raises:
        ImageLoadError: naming the address and the reason.
    """
    uri = str(uri)
    if is_url(uri):
        from oneclass.data.download import default_downloader

        return default_downloader().fetch_one(uri).read_bytes()
    if uri.startswith(ZIP_SCHEME):
        return read_zip_member(uri, max_bytes)
    return read_file(uri_path(uri), uri, max_bytes)
