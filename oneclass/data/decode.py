"""Decoding that survives real files: any readable image in, an 8-bit RGB image out, or a
:class:`DecodeError` that names the file and the reason. Never a substitute image.

- The format is sniffed from the content (never from the extension); only raster formats that
  Pillow decodes itself are accepted (no EPS/Ghostscript, no guessing formats such as TGA).
- EXIF orientation is applied; the first frame of animated or multi-page files is used.
- Grayscale, CMYK, palette, 16-bit (``I;16``), 32-bit (``I``, ``F``) become RGB; transparency
  (RGBA, LA, palette or colour-key transparency) is composited on white.
- Images over ``max_pixels`` are refused before decoding (decompression bombs).
- ``max_side`` bounds the result's longer side early (JPEG draft while decoding, then a Lanczos
  resize: :func:`downscale`), so a 9000x9000 PNG does not reach face search at full size.
- :func:`looks_like_image` checks a file's first bytes the way Pillow does, so a huge file that
  is no image is refused before it is read (see :mod:`oneclass.data.uri`).
- Empty, truncated or corrupt files and non-images (an HTML page saved as ``.jpg``) raise.

Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` must stay False (its default): set to True it
makes Pillow fill truncated images with grey, which this module cannot tell apart.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from oneclass.data.errors import DecodeError, ImageLoadError

__all__ = [
    "DecodeError",
    "FORMATS",
    "ImageLoadError",
    "MAX_PIXELS",
    "decode_image",
    "downscale",
    "looks_like_image",
    "not_image_reason",
]

#: default pixel cap (width * height): Pillow's own decompression-bomb limit (about 89.5 MP)
MAX_PIXELS: int = 89_478_485

_SAFE_FORMATS = (
    "JPEG",
    "MPO",
    "PNG",
    "GIF",
    "BMP",
    "TIFF",
    "WEBP",
    "PPM",
    "ICO",
    "AVIF",
    "JPEG2000",
    "QOI",
)
Image.init()
#: raster formats accepted (those of ``_SAFE_FORMATS`` this Pillow build can open)
FORMATS: tuple[str, ...] = tuple(f for f in _SAFE_FORMATS if f in Image.OPEN)

# ``warnings.catch_warnings`` swaps a process-wide filter list: serialise it (header parsing only)
_OPEN_LOCK = threading.Lock()
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ROTATING = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF8", "GIF"),
    (b"RIFF", "WebP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def looks_like_image(prefix: bytes) -> bool:
    """Whether the first bytes of a file are those of an accepted raster format.

    Uses the same signature tests as ``PIL.Image.open`` (on the first 16 bytes), so a large file
    that is no image can be refused before the rest of it is read.

    Returns:
        True when one of :data:`FORMATS` accepts the prefix.
    """
    head = bytes(prefix[:16])
    for fmt in FORMATS:
        accept = Image.OPEN[fmt][1]
        try:
            if accept is None or accept(head):
                return True
        except Exception:  # noqa: BLE001 - a plugin's check failing on short input: not it
            continue
    return False


def not_image_reason(data: bytes) -> str:
    """Why bytes that no decoder accepts are not an image, as specific as the bytes allow.

    Returns:
        A short reason, e.g. ``"not an image: the content is an HTML page"``.
    """
    for magic, name in _MAGIC:
        if data.startswith(magic) and (name != "WebP" or data[8:12] == b"WEBP"):
            return f"truncated or corrupt {name} header ({len(data)} bytes)"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head:
        return "not an image: the content is an HTML page"
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "not a raster image: SVG (vector) content"
    if head.startswith((b"<?xml", b"<")):
        return "not an image: the content is XML/markup text"
    if head.startswith((b"{", b"[")):
        return "not an image: the content looks like JSON text"
    if head.startswith(b"%pdf"):
        return "not an image: a PDF document"
    if head.startswith((b"pk\x03\x04", b"\x1f\x8b")):
        return "not an image: an archive (zip/gzip)"
    if b"ftypheic" in data[:32] or b"ftypheix" in data[:32] or b"ftypmif1" in data[:32]:
        return "unsupported image format: HEIC/HEIF (no decoder installed)"
    return f"not a recognised image format (first bytes {data[:12]!r})"


def _bomb_reason(width: int, height: int, cap: int) -> str:
    return (
        f"refused as a possible decompression bomb: {width}x{height} = {width * height:,} "
        f"pixels exceeds the cap of {cap:,} (raise max_pixels to allow it)"
    )


def _open(data: bytes, source: str, max_pixels: int) -> Image.Image:
    """Parse the header (content-sniffed), turning Pillow's bomb warning into a DecodeError."""
    pillow_cap = Image.MAX_IMAGE_PIXELS
    action: Literal["error", "ignore"] = (
        "error" if pillow_cap is None or max_pixels <= pillow_cap else "ignore"
    )
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter(action, Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.UnidentifiedImageError:
        raise DecodeError(source, not_image_reason(data)) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DecodeError(source, f"refused as a possible decompression bomb ({exc})") from None
    except Exception as exc:  # Pillow plugins raise many kinds on malformed headers
        reason = f"truncated or corrupt image header ({type(exc).__name__}: {exc})"
        raise DecodeError(source, reason) from None


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:  # malformed EXIF: treat as unrotated
        return 1


def _scaled_to_8bit(im: Image.Image) -> Image.Image:
    """``I;16``/``I``/``F`` single-channel images as 8-bit ``L``."""
    a = np.asarray(im)
    if im.mode in _SIXTEEN_BIT:
        a8 = a.astype(np.float64) / 257.0
    else:
        a = a.astype(np.float64)
        finite = a[np.isfinite(a)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if im.mode == "F" and lo >= 0.0 and hi <= 1.0:
            a8 = a * 255.0  # float images in [0, 1]
        elif lo >= 0.0 and hi <= 255.0:
            a8 = a
        elif lo >= 0.0 and hi <= 65535.0:
            a8 = a / 257.0  # 16-bit data held in a 32-bit mode
        else:
            a8 = (a - lo) * (255.0 / max(hi - lo, 1e-12))
    a8 = np.rint(np.nan_to_num(np.clip(a8, 0, 255), nan=0.0))
    return Image.fromarray(a8.astype(np.uint8), "L")


def _on_white(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return im
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        return _scaled_to_8bit(im).convert("RGB")
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info:
        return _on_white(im)
    return im.convert("RGB")


def downscale(im: Image.Image, max_side: int) -> Image.Image:
    """Shrink an image so that its longer side is at most ``max_side`` pixels (aspect kept).

    Returns:
        ``im`` itself when it is already small enough, else a Lanczos-resized copy.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side!r}")
    width, height = im.size
    longest = max(width, height)
    if longest <= max_side:
        return im
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _draft_size(
    width: int,
    height: int,
    orientation: int,
    size_hint: tuple[int, int] | int | None,
    max_side: int | None,
) -> tuple[int, int]:
    """The smallest stored size a JPEG may be drafted to (Pillow keeps at least this size)."""
    want = (1, 1)
    if size_hint is not None:
        hint = (size_hint, size_hint) if isinstance(size_hint, int) else tuple(size_hint)
        if orientation in _ROTATING:
            hint = hint[::-1]
        want = (int(hint[0]), int(hint[1]))
    if max_side is not None:
        scale = max_side / max(width, height)
        want = (max(want[0], math.ceil(width * scale)), max(want[1], math.ceil(height * scale)))
    return want


def decode_image(
    data: bytes,
    source: str,
    *,
    max_pixels: int = MAX_PIXELS,
    size_hint: tuple[int, int] | int | None = None,
    max_side: int | None = None,
) -> Image.Image:
    """Decode ``data`` (the bytes of ``source``, named in errors) to an 8-bit RGB image.

    Args:
        data: the file's bytes.
        source: its name or address, used in error messages.
        max_pixels: refuse images with more pixels (decompression bombs) before decoding.
        size_hint: ``(w, h)`` or one int for a square: big JPEGs decode at a reduced scale
            (Pillow's draft mode, 1/2 to 1/8) that is still at least that size; faster when the
            image is only needed at, say, 224 px.
        max_side: the longer side of the result is at most this many pixels: a JPEG is drafted
            down while decoding and any image is then resized (a 9000x9000 PNG becomes, e.g.,
            2048x2048 before face search sees it).

    Returns:
        An RGB image (transparency composited on white, EXIF orientation applied).

    Raises:
        DecodeError: naming ``source`` and the reason.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side!r}")
    source = str(source)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{source}: decode_image needs bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise DecodeError(source, "empty file (0 bytes)")
    im = _open(data, source, max_pixels)
    width, height = im.size
    if width <= 0 or height <= 0:
        raise DecodeError(source, f"invalid image size {width}x{height}")
    if width * height > max_pixels:
        raise DecodeError(source, _bomb_reason(width, height, max_pixels))
    orientation = _orientation(im)
    if (size_hint is not None or max_side is not None) and im.format in ("JPEG", "MPO"):
        try:
            im.draft(
                "RGB" if im.mode == "RGB" else None,
                _draft_size(width, height, orientation, size_hint, max_side),
            )
        except Exception as exc:
            raise DecodeError(source, f"corrupt JPEG header ({exc})") from None
    try:
        im.seek(0)  # first frame of animated GIF/WebP/PNG and multi-page TIFF
        im.load()
    except Exception as exc:  # OSError "image file is truncated", zlib errors, ...
        raise DecodeError(source, f"truncated or corrupt image data ({exc})") from None
    if orientation != 1:
        try:
            im = ImageOps.exif_transpose(im)
        except Exception:  # malformed EXIF: keep the stored orientation rather than fail
            pass
    try:
        rgb = _to_rgb(im)
    except Exception as exc:
        raise DecodeError(
            source, f"cannot convert colour mode {im.mode!r} to RGB ({exc})"
        ) from None
    return rgb if max_side is None else downscale(rgb, max_side)
