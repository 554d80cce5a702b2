"""Robust decoding, on files each test writes itself."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oneclass.data.decode import DecodeError, decode_image
from oneclass.data.errors import ImageLoadError
from oneclass.data.sources import ImageItem, load_image


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height`` RGB pixels (valid CRCs)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def close(pixel, expected, tol=6) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, expected, strict=True))


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (20, 0, 40, 20))  # stored: red left half, blue right half
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = write(tmp_path, "rotated.jpg", encode(im, "JPEG", exif=exif.tobytes(), quality=95))
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (20, 40)
    assert close(out.getpixel((10, 5)), (255, 0, 0))  # left half went to the top
    assert close(out.getpixel((10, 35)), (0, 0, 255))


def test_cmyk_jpeg_to_rgb(tmp_path):
    path = write(
        tmp_path,
        "cmyk.jpg",
        encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95),
    )
    assert Image.open(path).mode == "CMYK"
    out = load_image(path)
    assert out.mode == "RGB" and close(out.getpixel((8, 8)), (255, 0, 0))


def test_rgba_composited_on_white(tmp_path):
    im = Image.new("RGBA", (3, 1), (0, 0, 0, 0))
    im.putpixel((1, 0), (255, 0, 0, 255))
    im.putpixel((2, 0), (0, 0, 0, 128))
    out = load_image(write(tmp_path, "rgba.png", encode(im, "PNG")))
    assert out.mode == "RGB"
    assert [out.getpixel((i, 0)) for i in range(3)] == [
        (255, 255, 255),
        (255, 0, 0),
        (127, 127, 127),
    ]


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    im.putpixel((1, 0), 1)
    out = load_image(write(tmp_path, "pal.png", encode(im, "PNG", transparency=0)))
    assert [out.getpixel((i, 0)) for i in range(2)] == [(255, 255, 255), (0, 255, 0)]


def test_sixteen_bit_png_to_8_bit(tmp_path):
    a = np.array([[0, 128 * 257, 65535, 1000]], dtype=np.uint16)
    path = write(tmp_path, "deep.png", encode(Image.fromarray(a), "PNG"))
    assert Image.open(path).mode.startswith("I")
    out = np.asarray(load_image(path))
    assert out.dtype == np.uint8 and out.shape == (1, 4, 3)
    assert out[0, :, 0].tolist() == [0, 128, 255, 4]


def test_32_bit_integer_image(tmp_path):
    a = np.array([[0, 30000, 65535]], dtype=np.int32)
    out = np.asarray(
        load_image(write(tmp_path, "int.tif", encode(Image.fromarray(a, "I"), "TIFF")))
    )
    assert out[0, :, 1].tolist() == [0, 117, 255]


def test_grayscale_and_bilevel(tmp_path):
    gray = load_image(write(tmp_path, "g.jpg", encode(Image.new("L", (8, 8), 200), "JPEG")))
    assert gray.mode == "RGB" and close(gray.getpixel((0, 0)), (200, 200, 200), 2)
    bw = load_image(write(tmp_path, "b.bmp", encode(Image.new("1", (8, 8), 1), "BMP")))
    assert bw.getpixel((3, 3)) == (255, 255, 255)


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    path = write(tmp_path, "anim.gif", buf.getvalue())
    assert Image.open(path).n_frames == 3
    out = load_image(path)
    assert out.mode == "RGB" and out.getpixel((4, 4)) == (255, 0, 0)


@pytest.mark.parametrize("side", [10_000, 100_000])  # Pillow's warning zone, and its error zone
def test_decompression_bomb_header_refused(tmp_path, side):
    path = write(tmp_path, "bomb.png", png_header(side, side))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the Pillow warning must not escape as a warning
        with pytest.raises(DecodeError, match="decompression bomb") as info:
            load_image(path)
    assert str(path) in str(info.value)


def test_lowered_pixel_cap(tmp_path):
    data = encode(Image.new("RGB", (100, 50)), "PNG")
    assert decode_image(data, "ok.png", max_pixels=5000).size == (100, 50)
    with pytest.raises(DecodeError, match=r"100x50 = 5,000 pixels exceeds the cap of 4,999"):
        decode_image(data, "big.png", max_pixels=4999)


def test_empty_file(tmp_path):
    path = write(tmp_path, "empty.jpg", b"")
    with pytest.raises(DecodeError, match="empty file") as info:
        load_image(path)
    assert info.value.uri == str(path) and str(path) in str(info.value)


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_jpeg(tmp_path, keep):
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    path = write(tmp_path, "cut.jpg", data[: int(len(data) * keep)])
    with pytest.raises(DecodeError, match="truncated"):
        load_image(path)


def test_truncated_header(tmp_path):
    data = encode(Image.new("RGB", (64, 64)), "PNG")
    with pytest.raises(DecodeError, match="truncated or corrupt"):
        load_image(write(tmp_path, "cut.png", data[:30]))


def test_html_named_jpg(tmp_path):
    path = write(
        tmp_path, "photo.jpg", b"\n<!DOCTYPE html>\n<html><body>404 - image not found</body></html>"
    )
    with pytest.raises(DecodeError, match="HTML page") as info:
        load_image(path)
    assert "photo.jpg" in str(info.value)


def test_random_bytes_and_svg(tmp_path):
    with pytest.raises(DecodeError, match="not a recognised image format"):
        decode_image(bytes(range(200)), "noise.jpg")
    with pytest.raises(DecodeError, match="SVG"):
        decode_image(b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "icon.png")


def test_content_sniffed_not_extension(tmp_path):
    path = write(tmp_path, "really_a_png.jpg", encode(Image.new("RGB", (5, 4), (1, 2, 3)), "PNG"))
    out = load_image(path)
    assert out.size == (5, 4) and out.getpixel((0, 0)) == (1, 2, 3)


def test_size_hint_uses_jpeg_draft():
    rng = np.random.default_rng(1)
    data = encode(Image.fromarray(rng.integers(0, 255, (768, 1024, 3), dtype=np.uint8)), "JPEG")
    assert decode_image(data, "full.jpg").size == (1024, 768)
    small = decode_image(data, "draft.jpg", size_hint=(224, 224))
    assert small.mode == "RGB" and small.size == (512, 384)  # 1/4 would be 192 px high: too small
    assert decode_image(data, "d.jpg", size_hint=90).size == (128, 96)
    png = encode(Image.new("RGB", (300, 200)), "PNG")
    assert decode_image(png, "p.png", size_hint=50).size == (300, 200)  # JPEG only


def test_missing_file_and_item(tmp_path):
    with pytest.raises(ImageLoadError, match="file not found"):
        load_image(tmp_path / "nope.jpg")
    path = write(tmp_path, "x.png", encode(Image.new("RGB", (3, 3), (9, 9, 9)), "PNG"))
    item = ImageItem(id="x.png", uri=str(path))
    assert load_image(item).getpixel((1, 1)) == (9, 9, 9)
    assert isinstance(DecodeError("a", "b"), ImageLoadError)
    assert isinstance(DecodeError("a", "b"), ValueError)
