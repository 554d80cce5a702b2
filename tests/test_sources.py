"""Sources (folder, zip, list, dataset) and iter_images, on written files and the shared data."""

from __future__ import annotations

import dataclasses
import io
import os
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from oneclass.data.manifests import data_root
from oneclass.data.sources import (
    Failure,
    FolderSource,
    ImageItem,
    ListSource,
    ZipSource,
    iter_images,
    load_images,
    open_source,
)


def png(color=(10, 20, 30), size=(6, 4)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel, data in {
        "cats/a.jpg": png((255, 0, 0)),
        "cats/b.PNG": png((0, 255, 0)),
        "dogs/deep/c.jpg": png((0, 0, 255)),
        "top.png": png(),
        ".hidden.jpg": png(),
        "cats/notes.txt": b"hello",
        ".git/x.jpg": png(),
    }.items():
        path = tmp_path / "root" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return tmp_path / "root"


def test_folder_source_recursive_labels(tree):
    src = FolderSource(tree, family="pets")
    items = list(src)
    assert [it.id for it in items] == ["top.png", "cats/a.jpg", "cats/b.PNG", "dogs/deep/c.jpg"]
    assert [it.label for it in items] == [None, "cats", "cats", "deep"]
    assert all(it.family == "pets" and Path(it.uri).is_absolute() for it in items)
    assert len(src) == 4 and items[1].read_bytes() == png((255, 0, 0))
    assert len(FolderSource(tree, recursive=False)) == 1
    assert len(FolderSource(tree, extensions=None)) == 5  # notes.txt too (hidden still skipped)
    with pytest.raises(ValueError, match="no such folder"):
        FolderSource(tree / "missing")


def test_image_item_is_frozen():
    item = ImageItem(id="a", uri="/x/a.jpg", label="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.label = "y"
    assert dataclasses.replace(item, group="3").group == "3"


def test_zip_source_in_place(tmp_path):
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("lfw/", b"")
        zf.writestr("lfw/Ann_Lee/Ann_Lee_0001.jpg", png((1, 1, 1)))
        zf.writestr("lfw/Ann_Lee/Ann_Lee_0002.jpg", png((2, 2, 2)))
        zf.writestr("lfw/Bo_Ma/Bo_Ma_0001.jpg", png((3, 3, 3)))
        zf.writestr("other/readme.txt", b"text")
        zf.writestr("__MACOSX/lfw/._Bo_Ma_0001.jpg", b"junk")
    src = ZipSource(archive, "lfw/")
    items = src.items()
    assert [it.label for it in items] == ["Ann_Lee", "Ann_Lee", "Bo_Ma"]
    assert items[0].id == "lfw/Ann_Lee/Ann_Lee_0001.jpg"
    assert items[0].uri == f"zip://{archive.resolve().as_posix()}!lfw/Ann_Lee/Ann_Lee_0001.jpg"
    assert items[2].read_bytes() == png((3, 3, 3))
    assert not list(tmp_path.glob("**/*.jpg"))  # nothing extracted
    assert len(open_source(f"{archive}!lfw")) == 3
    assert len(open_source(archive)) == 3  # the txt member is not an image
    with pytest.raises(ValueError, match="no images under 'nothing/'"):
        ZipSource(archive, "nothing").items()
    broken = ImageItem(id="x", uri=f"zip://{archive}!lfw/Nobody.jpg")
    with pytest.raises(ValueError, match="no such member"):
        broken.read_bytes()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not a readable zip"):
        ZipSource(bad).items()


def test_list_source_crlf_blank_relative_and_urls(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(png())
    listing = tmp_path / "list.csv"
    listing.write_bytes(
        b"imgs/a.png\r\n\r\nhttps://example.org/x.jpg\r\n"
        b"https://example.org/x.jpg\r\n  \r\n# comment\r\n"
        b"https://example.org/y.jpg,saint\r\n"
    )
    src = ListSource(listing, label="george")
    items = src.items()
    assert [it.id for it in items] == [
        "imgs/a.png",
        "https://example.org/x.jpg",
        "https://example.org/y.jpg",
    ]
    assert items[0].uri == str((tmp_path / "imgs" / "a.png").resolve())
    assert items[0].read_bytes() == png()
    assert items[1].uri == "https://example.org/x.jpg"
    assert [it.label for it in items] == ["george", "george", "saint"]
    assert src.duplicates == ["https://example.org/x.jpg"]
    txt = tmp_path / "list.txt"
    txt.write_text("path\nimgs/a.png\nimgs/with,comma.png\n")
    assert [it.id for it in open_source(txt)] == ["imgs/a.png", "imgs/with,comma.png"]


def test_open_source_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file or folder"):
        open_source(tmp_path / "nope")
    other = tmp_path / "data.parquet"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match="cannot open as an image source"):
        open_source(other)
    one = tmp_path / "one.png"
    one.write_bytes(png())
    assert [it.id for it in open_source(one)] == ["one.png"]


@pytest.mark.parametrize("workers", [1, 3])
def test_iter_images_yields_failures_in_order(tree, workers):
    (tree / "cats" / "broken.jpg").write_bytes(b"<html>not found</html>")
    (tree / "cats" / "empty.png").write_bytes(b"")
    items = FolderSource(tree).items() + [ImageItem(id="gone", uri=str(tree / "gone.jpg"))]
    out = list(iter_images(items, progress=False, workers=workers))
    assert [it for it, _ in out] == items
    failures = {it.id: r.reason for it, r in out if isinstance(r, Failure)}
    assert set(failures) == {"cats/broken.jpg", "cats/empty.png", "gone"}
    assert "HTML" in failures["cats/broken.jpg"] and "empty" in failures["cats/empty.png"]
    assert "not found" in failures["gone"]
    images = [r for _, r in out if not isinstance(r, Failure)]
    assert len(images) == 4 and all(im.mode == "RGB" and im.size == (6, 4) for im in images)
    ok, ims, fails = load_images(items, progress=False, workers=workers)
    assert len(ok) == len(ims) == 4 and len(fails) == 3
    assert str(fails[0]).startswith(fails[0].item.uri)


def test_iter_images_stops_early(tree):
    gen = iter_images(FolderSource(tree), progress=False, workers=2)
    first = next(gen)
    gen.close()  # the pool shuts down without decoding the rest
    assert first[0].id == "top.png"


# --- the shared data ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root() -> Path:
    try:
        path = data_root()
    except (ValueError, OSError) as exc:
        pytest.skip(str(exc))
    return path


def test_lfw_zip_labels(root):
    src = open_source(root / "faces" / "lfw_subset.zip")
    labels = Counter(src.labels())
    assert len(src) == 5824 and len(labels) == 1658
    assert "Nicolas_Cage" not in labels
    assert sum(1 for n in labels.values() if n >= 10) == 158
    item = src.items()[0]
    assert item.id == "lfw/AJ_Cook/AJ_Cook_0001.jpg" and item.label == "AJ_Cook"
    _, image = next(iter_images([item], progress=False))
    assert image.size == (150, 150)


def test_cifar_zip_subset_by_prefix(root):
    src = open_source(f"{root / 'cifar10' / 'cifar10_subset.zip'}!cifar10_jpg/train/")
    counts = Counter(src.labels())
    assert len(src) == 10_000 and len(counts) == 10 and set(counts.values()) == {1000}
    assert "airplane" in counts
    items = src.items()[::2000]
    ok, images, failures = load_images(items, progress=False)
    assert not failures and all(im.size == (32, 32) for im in images)


def test_glint_folder_labels(root):
    src = open_source(root / "faces" / "glint")
    counts = Counter(src.labels())
    assert len(src) == 942 and len(counts) == 24 and "Tom_Hanks" in counts


def test_real_crops_decode(root):
    items = FolderSource(root / "niccage" / "crops").items()
    assert len(items) == 318
    out = list(iter_images(items[:40], progress=False, workers=min(2, os.cpu_count() or 1)))
    assert all(not isinstance(r, Failure) and r.size == (256, 256) for _, r in out)
