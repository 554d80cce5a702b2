"""One bad input never stops a run: names that are not UTF-8, encrypted / corrupt / bomb zip
members, special files, huge files, huge images, transparency. Every file here is made by the
test (and real transparent PNGs from the shared data)."""

from __future__ import annotations

import csv
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oneclass.data.decode import MAX_PIXELS, decode_image, downscale
from oneclass.data.items import ImageItem, unique_ids
from oneclass.data.sources import (
    Failure,
    FolderSource,
    ZipSource,
    iter_images,
    load_image,
    open_source,
    open_sources,
)
from oneclass.data.uri import MAX_FILE_BYTES, read_uri, zip_uri


def png(color=(10, 20, 30), size=(6, 4), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def _results(items, **kw) -> dict[str, Image.Image | Failure]:
    return {it.id: r for it, r in iter_images(items, progress=False, workers=2, **kw)}


# --- file names in any encoding, ids unique across folders ---------------------------------


def test_names_that_are_not_utf8_survive_into_csv(tmp_path):
    root = tmp_path / "root"
    odd_dir = root / os.fsdecode(b"caf\xe9")  # Latin-1 bytes: not UTF-8
    odd_dir.mkdir(parents=True)
    (odd_dir / os.fsdecode(b"\xff\xfe photo.png")).write_bytes(png((1, 2, 3)))
    (root / "plain.png").write_bytes(png((4, 5, 6)))
    items = FolderSource(root).items()
    assert len(items) == 2
    odd = next(it for it in items if it.id != "plain.png")
    assert odd.id == "caf\\xe9/\\xff\\xfe photo.png" and odd.label == "caf\\xe9"
    for it in items:  # plain text: any CSV / JSON can hold it
        it.id.encode("utf-8"), it.uri.encode("utf-8"), (it.label or "").encode("utf-8")
    assert odd.uri.startswith("file://") and "%FF%FE" in odd.uri
    results = _results(items)
    assert all(isinstance(r, Image.Image) for r in results.values())
    assert results[odd.id].getpixel((0, 0)) == (1, 2, 3)
    out = tmp_path / "scores.csv"
    with open(out, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([it.id, it.uri, it.label] for it in items)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    one = open_source(odd_dir / os.fsdecode(b"\xff\xfe photo.png")).items()[0]
    assert one.id == "\\xff\\xfe photo.png" and load_image(one).size == (6, 4)
    # a missing file with such a name: the failure reason is plain text too
    gone = ImageItem(id="gone", uri=str(root / os.fsdecode(b"gone\xe9.jpg")))
    [(_, failure)] = list(iter_images([gone], progress=False))
    assert isinstance(failure, Failure) and "not found" in failure.reason
    str(failure).encode("utf-8", "surrogateescape")


def test_ids_unique_across_folders(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.png").write_bytes(png())
    (tmp_path / "one.png").write_bytes(png())
    items = open_sources([tmp_path / "a", tmp_path / "b", tmp_path / "one.png"])
    ids = [it.id for it in items]
    assert len(set(ids)) == 3
    assert ids == [f"{tmp_path / 'a'}/x.png", f"{tmp_path / 'b'}/x.png", str(tmp_path / "one.png")]
    assert [it.id for it in open_sources([tmp_path / "a"])] == ["x.png"]  # one source: as is
    twice = unique_ids(
        [
            ImageItem("x", "/p/x"),
            ImageItem("x", "/q/x"),
            ImageItem("x", "/q/x"),
            ImageItem("/p/x", "/r"),
        ]
    )
    assert [it.id for it in twice] == ["/p/x#2", "/q/x", "/q/x#2", "/p/x"]


# --- zip archives: encrypted, corrupt, bombs, traversal ------------------------------------


def _zip(path: Path, members: list[dict]) -> None:
    """Write a zip by hand (zipfile cannot write encrypted members or 1 GiB from 1 MB)."""
    local, central = b"", b""
    for m in members:
        name = m["name"].encode()
        header = struct.pack(
            "<HHHHIII", m.get("flags", 0), m["method"], 0, 0x21, m["crc"], len(m["data"]), m["size"]
        )
        offset = len(local)
        local += struct.pack("<IH", 0x04034B50, 20) + header + struct.pack("<HH", len(name), 0)
        local += name + m["data"]
        central += struct.pack("<IHH", 0x02014B50, 20, 20) + header
        central += struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, offset) + name
    eocd = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0
    )
    path.write_bytes(local + central + eocd)


def _deflated(name: str, payload: bytes, **kw) -> dict:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = c.compress(payload) + c.flush()
    return {
        "name": name,
        "method": 8,
        "crc": zlib.crc32(payload),
        "size": len(payload),
        "data": data,
        **kw,
    }


def _bomb(name: str, gib: int = 1) -> dict:
    """A member that inflates to ``gib`` GiB of zeros from about 1 MB."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(1 << 20)
    part = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)  # identical for every block
    crc = 0
    for _ in range(1024 * gib):
        crc = zlib.crc32(block, crc)
    return {
        "name": name,
        "method": 8,
        "crc": crc,
        "size": (1 << 30) * gib,
        "data": part * (1024 * gib) + c.flush(),
    }


def test_zip_encrypted_corrupt_and_bomb_members_are_failures(tmp_path):
    good = png((9, 9, 9))
    corrupt = _deflated("imgs/corrupt.png", png((7, 7, 7)))
    corrupt["crc"] ^= 0xFFFF  # the bytes do not match the recorded CRC
    archive = tmp_path / "mixed.zip"
    _zip(
        archive,
        [
            _deflated("imgs/good.png", good),
            _deflated("imgs/secret.png", png(), flags=0x1),  # password-protected
            corrupt,
            _bomb("imgs/bomb.png"),
            _deflated("../../escape.png", good),
        ],
    )
    assert archive.stat().st_size < 2 * 2**20
    items = ZipSource(archive).items()
    assert [it.id for it in items] == [
        "../../escape.png",
        "imgs/bomb.png",
        "imgs/corrupt.png",
        "imgs/good.png",
        "imgs/secret.png",
    ]
    results = _results(items)
    assert isinstance(results["imgs/good.png"], Image.Image)
    assert "encrypted" in results["imgs/secret.png"].reason
    assert "corrupt zip member" in results["imgs/corrupt.png"].reason
    bomb = results["imgs/bomb.png"].reason
    assert "too large" in bomb and f"{1 << 30:,}" in bomb and f"{MAX_FILE_BYTES:,}" in bomb
    # traversal: a member named ../../x is read from the archive, never written anywhere
    assert isinstance(results["../../escape.png"], Image.Image)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["mixed.zip"]
    assert not (tmp_path.parent.parent / "escape.png").exists()
    # with a lower cap, an honest member over it is refused the same way
    with pytest.raises(ValueError, match="too large"):
        read_uri(zip_uri(archive, "imgs/good.png"), max_bytes=len(good) - 1)


# --- special files and huge files ------------------------------------------------------------


@pytest.mark.timeout(60)  # before the fix, reading the FIFO blocked forever
def test_special_files_are_skipped_never_opened(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "a_good.png").write_bytes(png())
    os.mkfifo(root / "b_pipe.jpg")
    os.symlink("/dev/zero", root / "c_zero.jpg")
    os.symlink("/dev/null", root / "d_null.png")
    (root / "e_dir.jpg").mkdir()
    items = FolderSource(root).items()
    assert [it.id for it in items] == ["a_good.png", "b_pipe.jpg", "c_zero.jpg", "d_null.png"]
    results = _results(items)
    assert isinstance(results["a_good.png"], Image.Image)
    assert "FIFO" in results["b_pipe.jpg"].reason
    assert "character device" in results["c_zero.jpg"].reason
    assert "character device" in results["d_null.png"].reason
    assert all("never opened" in results[k].reason for k in ("b_pipe.jpg", "c_zero.jpg"))


def test_size_checked_before_reading(tmp_path):
    big = tmp_path / "big.jpg"
    with open(big, "wb") as fh:  # a sparse 1.5 GB file: no disk, and never read
        fh.truncate(1_500_000_000)
    video = tmp_path / "clip.jpg"  # 5 MiB that is no image: refused after its first bytes
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(5 * 2**20))
    results = _results([ImageItem("big", str(big)), ImageItem("clip", str(video))])
    assert "too large" in results["big"].reason and "1,500,000,000" in results["big"].reason
    assert "refused before reading" in results["big"].reason
    assert "checked before reading the rest" in results["clip"].reason
    with pytest.raises(ValueError, match="too large"):
        read_uri(str(video), max_bytes=2**20)


# --- decode bombs, huge images, transparency -----------------------------------------------


def test_pixel_bomb_is_a_failure_row(tmp_path):
    side = int(MAX_PIXELS**0.5) + 100
    bomb = tmp_path / "bomb.png"
    Image.new("L", (side, side)).save(bomb, optimize=False, compress_level=9)
    (tmp_path / "ok.png").write_bytes(png())
    results = _results([ImageItem("bomb", str(bomb)), ImageItem("ok", str(tmp_path / "ok.png"))])
    assert "decompression bomb" in results["bomb"].reason
    assert isinstance(results["ok"], Image.Image)


def test_big_images_downscaled_early(tmp_path):
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 255, (60, 90, 3), dtype=np.uint8))
    huge = small.resize((3600, 2400))
    buf = io.BytesIO()
    huge.save(buf, "BMP")  # uncompressed: quick to write; the same path as a huge PNG
    im = decode_image(buf.getvalue(), "huge.bmp", max_side=1024)
    assert im.size == (1024, 683) and im.mode == "RGB"
    jpeg = io.BytesIO()
    huge.save(jpeg, "JPEG", quality=80)
    im = decode_image(jpeg.getvalue(), "huge.jpg", max_side=500)
    assert im.size == (500, 333)
    # the draft decode is close to a full decode then resized
    full = downscale(decode_image(jpeg.getvalue(), "huge.jpg"), 500)
    diff = np.abs(np.asarray(im, np.int16) - np.asarray(full, np.int16)).mean()
    assert diff < 8
    assert decode_image(png(size=(40, 30)), "s.png", max_side=500).size == (40, 30)  # no upscale
    path = tmp_path / "huge.bmp"
    path.write_bytes(buf.getvalue())
    [(_, got)] = list(iter_images([str(path)], progress=False, max_side=300))
    assert got.size == (300, 200)
    with pytest.raises(ValueError, match="max_side"):
        decode_image(png(), "x.png", max_side=0)


def test_transparent_pokemon_pngs_on_white(data_root):
    folder = data_root / "pokemon_gen1" / "Charmander"
    checked = 0
    for path in sorted(folder.glob("0000000*.png")):
        with Image.open(path) as raw:
            if raw.mode not in ("RGBA", "P", "LA"):
                continue
            alpha = np.asarray(raw.convert("RGBA"))[..., 3]
        clear = np.argwhere(alpha == 0)
        if not len(clear):
            continue
        y, x = clear[len(clear) // 2]
        im = load_image(path)
        assert im.mode == "RGB" and im.getpixel((int(x), int(y))) == (255, 255, 255), path.name
        checked += 1
    assert checked >= 2
