"""Dataset manifests: the real sets under the data root, and manifests the tests write."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from pathlib import Path

import pytest
import yaml
from PIL import Image

from oneclass.data import manifests
from oneclass.data.download import Downloader, OfflineError
from oneclass.data.manifests import (
    DataNotFoundError,
    ManifestError,
    available_datasets,
    data_root,
    dataset_items,
    fetch,
    load_manifest,
    verify,
)
from oneclass.data.sources import open_source

REAL = [
    "adbench",
    "art_genres",
    "bsds500",
    "cifar10",
    "george",
    "glint",
    "kolektor_sdd",
    "lfw",
    "niccage",
    "oxford_flowers12",
    "pokemon_gen1",
    "trump",
]


@pytest.fixture(scope="module")
def root() -> Path:
    try:
        return data_root()
    except (ValueError, OSError) as exc:
        pytest.skip(str(exc))


def test_every_real_set_has_a_complete_manifest():
    assert set(REAL) <= set(available_datasets())
    for name in REAL:
        m = load_manifest(name)
        assert m["layout"] in manifests.LAYOUTS and m["licence"] and m["description"]
        src = m["source"]
        assert src["repository"].count("/") == 1 and src["path"]
        assert src["commit"] or name == "trump"  # its commit is not recorded upstream
        assert "downloads" in m and "checksums" in m
        for dl in m["downloads"]:
            assert dl["url"].startswith("http") and "sha256" in dl


@pytest.mark.parametrize("name", REAL)
def test_verify_real_sets(root, name):
    report = verify(name, root=root)
    assert report["ok"], report["problems"]
    assert report["checked"] and report["message"]


def test_niccage_items_groups_and_copies(root):
    items = dataset_items("niccage")
    assert len(items) == 318
    assert {it.label for it in items} == {"Nicolas_Cage"} and {it.family for it in items} == {
        "niccage"
    }
    groups = Counter(it.group for it in items)
    assert len(groups) == 213 and max(groups.values()) == 30
    by_id = {it.id: it for it in items}
    assert by_id["74803940.jpg"].group == by_id["121460460.jpg"].group == "niccage:17"
    assert by_id["74803940.jpg"].read_bytes() == by_id["121460460.jpg"].read_bytes()


def test_labels_and_subsets(root):
    train = dataset_items("cifar10", "train")
    assert len(train) == 10_000 and set(Counter(it.label for it in train).values()) == {1000}
    assert all("/train/" in it.id for it in train)
    assert len(dataset_items("cifar10")) == 20_000
    lfw = dataset_items("lfw")
    assert len({it.label for it in lfw}) == 1658 and lfw[0].uri.startswith("zip://")
    assert len({it.label for it in dataset_items("glint")}) == 24
    assert {it.label for it in dataset_items("bsds500")} == {None}
    assert {it.family for it in dataset_items("trump", family="neg")} == {"neg"}
    george = dataset_items("george")
    assert Counter(it.label for it in george) == {"george": 2309, "not_george": 3332}
    assert all(it.uri.startswith("http") for it in george)
    assert len(open_source("dataset:cifar10/test")) == 10_000
    with pytest.raises(ManifestError, match="no subset 'val'.*train, test"):
        dataset_items("cifar10", "val")
    with pytest.raises(ManifestError, match="arrays, not images"):
        dataset_items("adbench")


def test_fetch_offline_and_non_url_sets(root, tmp_path, monkeypatch):
    offline = Downloader(tmp_path / "cache", offline=True, progress=False)
    with pytest.raises(OfflineError, match="2309 of 2309 URLs are not in the download cache"):
        fetch("george", "georges", downloader=offline)
    monkeypatch.setenv("ONECLASS_OFFLINE", "1")
    monkeypatch.setenv("ONECLASS_CACHE", str(tmp_path / "c2"))
    with pytest.raises(OfflineError, match="5641 of 5641"):
        fetch("george")
    with pytest.raises(ManifestError, match="no URLs to download"):
        fetch("lfw")


def test_manifests_ship_inside_the_package():
    assert manifests.PACKAGE_MANIFESTS.parent == Path(manifests.__file__).parent
    shipped = {p.stem for p in manifests.PACKAGE_MANIFESTS.glob("*.yaml")}
    assert set(REAL) == shipped
    assert all(Path(load_manifest(n)["file"]).parent == manifests.PACKAGE_MANIFESTS for n in REAL)
    assert not (Path(manifests.__file__).parents[2] / "datasets").exists()  # one place only


def test_new_generic_sets_classes_and_groups(root):
    poke = dataset_items("pokemon_gen1")
    assert len(poke) == 504 and Counter(it.label for it in poke)["Snorlax"] == 59
    assert len({it.label for it in poke}) == 10 and {it.family for it in poke} == {"pokemon_gen1"}
    sizes = Counter(Counter(it.group for it in poke).values())
    assert sizes == {1: 491, 2: 5, 3: 1}  # 6 near-duplicate groups, as SOURCE.md says
    assert load_manifest("pokemon_gen1")["hard_negatives"]["Pikachu"] == "Raichu"
    flowers = dataset_items("oxford_flowers12")
    assert len(flowers) == 900 and len({it.label for it in flowers}) == 12
    by_id = {it.id: it for it in flowers}
    assert by_id["sunflower/image_0746.jpg"].group == by_id["sunflower/image_0764.jpg"].group
    art = dataset_items("art_genres")
    assert set(Counter(it.label for it in art).values()) == {48}
    assert len({it.group for it in art}) == 240
    kol = {it.id: it for it in dataset_items("kolektor_sdd")}
    assert Counter(it.label for it in kol.values()) == {"normal": 128, "defective": 49}
    # blocks of 8 consecutive numbers, across both folders: one physical part per block
    assert kol["defective/005.jpg"].group == kol["normal/002.jpg"].group == "kolektor_sdd:block0"
    assert kol["defective/012.jpg"].group == "kolektor_sdd:block1"
    # the near-duplicate pair 235 ~ 252 joins blocks 29 and 31 into one group
    assert kol["defective/235.jpg"].group == kol["defective/252.jpg"].group
    assert (
        kol["normal/251.jpg"].group == kol["normal/232.jpg"].group == kol["defective/235.jpg"].group
    )
    assert len({it.group for it in kol.values()}) == 49
    assert len(open_source("dataset:kolektor_sdd")) == 177


def test_fetch_all_never_stops_at_a_local_set(root, tmp_path, monkeypatch):
    monkeypatch.setenv("ONECLASS_OFFLINE", "1")
    monkeypatch.setenv("ONECLASS_CACHE", str(tmp_path / "c"))
    rows = {name: (ok, msg) for name, ok, msg in manifests.fetch_all()}
    assert set(rows) == set(available_datasets())
    assert rows["lfw"] == (True, "nothing to download: its files are local (see `datasets verify`)")
    assert not rows["george"][0] and "5641 of 5641 URLs" in rows["george"][1]
    named = manifests.fetch_all(["lfw", "george", "nope"])
    assert [(n, ok) for n, ok, _ in named] == [("lfw", False), ("george", False), ("nope", False)]
    assert "unknown dataset 'nope'" in named[2][2]


# --- manifests the tests write -------------------------------------------------------------


def png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (value, value, value)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def mini(tmp_path, monkeypatch) -> Path:
    data = tmp_path / "data"
    (data / "mini" / "imgs").mkdir(parents=True)
    for k in range(3):
        (data / "mini" / "imgs" / f"{k}.png").write_bytes(png(k))
    groups = "filename,group,exact_dup_of\r\n0.png,0,\r\n1.png,1,\r\n2.png,1,1.png\r\n"
    (data / "mini" / "groups.csv").write_text(groups)
    manifest = {
        "name": "mini",
        "description": "three grey squares",
        "layout": "folder",
        "path": "mini/imgs",
        "groups": "mini/groups.csv",
        "label": "grey",
        "count": 3,
        "licence": "CC0",
        "source": {"repository": "me/mini", "commit": "abc", "path": "imgs"},
        "checksums": {"mini/groups.csv": hashlib.sha256(groups.encode()).hexdigest()},
    }
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    (mdir / "mini.yaml").write_text(yaml.safe_dump(manifest))
    monkeypatch.setenv("ONECLASS_DATASETS", str(mdir))
    monkeypatch.setenv("ONECLASS_DATA", str(data))
    return data


def test_extra_manifests_via_env(mini):
    assert "mini" in available_datasets() and "niccage" in available_datasets()
    items = dataset_items("mini")
    assert [(it.id, it.label, it.group) for it in items] == [
        ("0.png", "grey", "mini:0"),
        ("1.png", "grey", "mini:1"),
        ("2.png", "grey", "mini:1"),
    ]
    assert len(open_source("dataset:mini")) == 3
    assert verify("mini")["ok"]
    (mini / "mini" / "imgs" / "3.png").write_bytes(png(9))
    (mini / "mini" / "groups.csv").write_text("filename,group\n0.png,0\n")
    report = verify("mini")
    assert not report["ok"]
    text = " | ".join(report["problems"])
    assert "4 files, the manifest says 3" in text and "SHA-256 differs" in text
    assert "3 images have no row" in text


def test_bad_manifests(mini, tmp_path):
    mdir = tmp_path / "manifests"
    (mdir / "wrong.yaml").write_text("name: other\nlayout: folder\npath: x\n")
    with pytest.raises(ManifestError, match="does not match the file name"):
        load_manifest("wrong")
    (mdir / "lay.yaml").write_text("name: lay\nlayout: tarball\npath: x\n")
    with pytest.raises(ManifestError, match="layout must be one of"):
        load_manifest("lay")
    (mdir / "esc.yaml").write_text("name: esc\nlayout: folder\npath: ../../etc\n")
    with pytest.raises(ManifestError, match="inside it"):
        load_manifest("esc")
    with pytest.raises(ManifestError, match="invalid dataset name"):
        load_manifest("../mini")
    with pytest.raises(ManifestError, match="unknown dataset 'nope'"):
        load_manifest("nope")
    (mdir / "gone.yaml").write_text("name: gone\nlayout: folder\npath: gone\n")
    with pytest.raises(DataNotFoundError, match="not found under the data root"):
        dataset_items("gone")
    assert not verify("gone")["ok"]


def test_data_root_search_order(tmp_path, monkeypatch):
    here = tmp_path / "work"
    (here / "mydata").mkdir(parents=True)
    monkeypatch.chdir(here)
    monkeypatch.setenv("ONECLASS_DATA", "mydata")
    assert data_root() == here / "mydata"
    monkeypatch.setenv("ONECLASS_DATA", str(tmp_path / "absent"))
    with pytest.raises(DataNotFoundError, match="no such folder"):
        data_root()
    monkeypatch.delenv("ONECLASS_DATA")
    (here / "oneclass.yaml").write_text("data_root: mydata\n")
    assert data_root() == (here / "mydata").resolve()
    (here / "oneclass.yaml").unlink()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (here / "deep").mkdir()
    monkeypatch.chdir(here / "deep")
    assert data_root() == tmp_path.resolve() / "shared" / "data"  # found walking up
