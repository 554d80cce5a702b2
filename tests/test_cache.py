"""Embedding cache and embed_items on real images: hits, misses, failures, concurrency."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from oneclass.data.sources import ImageItem
from oneclass.embed.base import ImageEmbedding
from oneclass.embed.cache import EmbeddingCache, content_key, embed_items
from oneclass.embed.effnet import EffNetLite0Embedder

REPO = Path(__file__).resolve().parents[1]


class CountingEffNet(EffNetLite0Embedder):
    """The real embedder, counting the images that reach the model."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.seen = 0

    def embed_batch(self, images):
        self.seen += len(images)
        return super().embed_batch(images)


@pytest.fixture(scope="module")
def embedder():
    return CountingEffNet(optimize="none", batch_size=4, workers=0)


@pytest.fixture()
def folder(data_root, tmp_path):
    """Six real crops, one byte-identical copy, a truncated JPEG and a text file named .jpg."""
    crops = sorted((data_root / "niccage" / "crops").glob("*.jpg"))[:6]
    for f in crops:
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(crops[0], tmp_path / "zz_copy.jpg")
    (tmp_path / "zz_truncated.jpg").write_bytes(crops[1].read_bytes()[:300])
    (tmp_path / "zz_page.jpg").write_text("<html><body>404 not found</body></html>")
    return tmp_path


def _items(folder: Path) -> list[ImageItem]:
    items = [ImageItem(id=p.name, uri=str(p)) for p in sorted(folder.glob("*.jpg"))]
    return items + [ImageItem(id="missing.jpg", uri=str(folder / "missing.jpg"))]


def test_roundtrip_keeps_arrays_and_boxes(tmp_path):
    rng = np.random.default_rng(0)
    faces = ImageEmbedding(
        rng.normal(size=(2, 128)).astype(np.float32),
        rng.uniform(0, 99, size=(2, 4)).astype(np.float32),
    )
    none = ImageEmbedding(np.zeros((0, 128), np.float32), np.zeros((0, 4), np.float32))
    with EmbeddingCache(tmp_path / "c.sqlite") as cache:
        cache.put_many("dlib-face", "1", {"a": faces, "b": none})
        got = cache.get_many("dlib-face", "1", ["a", "b", "c"])
        assert set(got) == {"a", "b"} and len(cache) == 2
        np.testing.assert_array_equal(got["a"].vectors, faces.vectors)
        np.testing.assert_array_equal(got["a"].boxes, faces.boxes)
        assert got["b"].n_faces == 0 and got["b"].boxes.shape == (0, 4)
        assert cache.get_many("dlib-face", "2", ["a"]) == {}  # other preprocess version
        assert cache.get_many("facenet", "1", ["a"]) == {}  # other embedder


def test_cold_then_warm(embedder, folder, tmp_path):
    items = _items(folder)
    db = tmp_path / "cache.sqlite"
    embedder.seen = 0
    cold = embed_items(embedder, items, cache=db, progress=False)
    assert embedder.seen == 6  # the byte-identical copy is embedded once
    failed = {f.item.id: f.reason for f in cold.failures}
    assert set(failed) == {"zz_truncated.jpg", "zz_page.jpg", "missing.jpg"}
    assert "HTML" in failed["zz_page.jpg"] and "not found" in failed["missing.jpg"]
    assert all(cold.embeddings[i] is None for i, it in enumerate(items) if it.id in failed)
    X, index = cold.matrix()
    assert X.shape == (7, 1280) and len(index) == 7
    copy = [it.id for it in items].index("zz_copy.jpg")
    np.testing.assert_array_equal(cold.embeddings[copy].vectors, cold.embeddings[0].vectors)
    assert cold.n_computed == 6 and cold.n_cached == 0

    embedder.seen = 0
    warm = embed_items(embedder, items, cache=db, progress=False)
    assert embedder.seen == 0  # everything from the cache: no model call
    assert warm.n_cached == 7 and warm.n_computed == 0 and len(warm.failures) == 3
    for a, b in zip(cold.embeddings, warm.embeddings, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a.vectors, b.vectors)
    assert "7 from cache" in warm.summary()


def test_changed_file_is_a_miss(embedder, folder, tmp_path):
    items = _items(folder)[:6]
    db = EmbeddingCache(tmp_path / "cache.sqlite")
    before = embed_items(embedder, items, cache=db, progress=False)
    # replace one image by another real image (same name, new content)
    target = Path(items[2].uri)
    target.write_bytes(Path(items[3].uri).read_bytes())
    embedder.seen = 0
    after = embed_items(embedder, items, cache=db, progress=False)
    assert embedder.seen == 0  # the new content equals items[3], cached already
    np.testing.assert_array_equal(after.embeddings[2].vectors, before.embeddings[3].vectors)
    from PIL import Image

    Image.open(items[4].uri).rotate(90).save(target)  # content nobody has embedded
    embedder.seen = 0
    again = embed_items(embedder, items, cache=db, progress=False)
    assert embedder.seen == 1 and again.n_computed == 1 and again.n_cached == 5
    assert not np.allclose(again.embeddings[2].vectors, before.embeddings[2].vectors)
    db.close()


def test_two_threads_share_a_cache(embedder, folder, tmp_path):
    items = _items(folder)[:6]
    db = tmp_path / "shared.sqlite"
    outcomes = [None, None]

    def run(k):
        outcomes[k] = embed_items(embedder, items[k:] + items[:k], cache=db, progress=False)

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = outcomes
    assert not a.failures and not b.failures
    for i in range(6):
        np.testing.assert_array_equal(a.embeddings[i].vectors, b.embeddings[(i - 1) % 6].vectors)
    with EmbeddingCache(db) as cache:
        assert cache.count(embedder.name) == 6


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from oneclass.embed.base import ImageEmbedding
    from oneclass.embed.cache import EmbeddingCache
    path, who = sys.argv[1], int(sys.argv[2])
    cache = EmbeddingCache(path)
    for batch in range(40):
        entries = {}
        for j in range(10):
            key = f"{batch}-{j}"  # both processes write the same keys, with the same values
            v = np.random.default_rng(batch * 10 + j).normal(size=(1, 64)).astype(np.float32)
            entries[key] = ImageEmbedding(v)
        entries[f"only-{who}-{batch}"] = ImageEmbedding(np.full((1, 64), who, np.float32))
        cache.put_many("emb", "1", entries)
        cache.get_many("emb", "1", list(entries))
    cache.close()
""")


def test_two_processes_write_concurrently(tmp_path):
    db = tmp_path / "mp.sqlite"
    EmbeddingCache(db).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(k)], cwd=REPO, stderr=subprocess.PIPE
        )
        for k in (1, 2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)  # a hang guard: importing oneclass is slow under load
        assert p.returncode == 0, err.decode()
    with EmbeddingCache(db) as cache:
        assert cache.count("emb") == 400 + 2 * 40
        got = cache.get_many("emb", "1", ["7-3", "only-1-39", "only-2-0"])
        want = np.random.default_rng(73).normal(size=(1, 64)).astype(np.float32)
        np.testing.assert_array_equal(got["7-3"].vectors, want)
        assert got["only-1-39"].vectors[0, 0] == 1 and got["only-2-0"].vectors[0, 0] == 2


def test_not_a_cache_file(tmp_path):
    bad = tmp_path / "cache.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="cache.sqlite"):
        EmbeddingCache(bad)


def test_content_key_is_sha256_of_bytes():
    assert content_key(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


# --- one cache folder, patch grids, schema upgrade -------------------------------------------


def test_cache_folder_everywhere(tmp_path, monkeypatch):
    from oneclass.data.download import default_cache_dir
    from oneclass.embed.cache import CACHE_FILE, default_cache_path, open_cache

    folder = tmp_path / "cachedir"
    monkeypatch.setenv("ONECLASS_CACHE", str(folder))
    assert default_cache_path() == folder / CACHE_FILE == folder / "embeddings.sqlite"
    assert default_cache_dir() == folder / "downloads"
    with EmbeddingCache() as cache:
        assert cache.path == folder / "embeddings.sqlite" and cache.path.is_file()
    assert open_cache(False) is None and open_cache(None) is None
    for arg in (True, folder, str(folder), tmp_path / "new_folder"):
        with open_cache(arg) as cache:
            assert cache.path.name == "embeddings.sqlite" and cache.path.parent.is_dir()
    with EmbeddingCache(tmp_path / "explicit.sqlite") as cache:  # an explicit file stays a file
        assert cache.path == tmp_path / "explicit.sqlite"
    with pytest.raises(TypeError, match="cache must be"):
        open_cache(3)
    # an old-style ONECLASS_CACHE that names a SQLite file is refused, and left alone
    old = tmp_path / "old.sqlite"
    EmbeddingCache(old).close()
    before = old.read_bytes()
    monkeypatch.setenv("ONECLASS_CACHE", str(old))
    with pytest.raises(ValueError, match="is a file, but ONECLASS_CACHE names the cache folder"):
        EmbeddingCache()
    assert old.read_bytes() == before


def test_patch_grid_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    patches = ImageEmbedding(rng.normal(size=(12, 8)).astype(np.float32), grid=(3, 4))
    with EmbeddingCache(tmp_path / "g.sqlite") as cache:
        cache.put_many("patches", "1", {"k": patches, "plain": ImageEmbedding(patches.vectors)})
        got = cache.get_many("patches", "1", ["k", "plain"])
        with pytest.raises(ValueError, match="grid 5x5 does not hold 12"):
            cache.put_many("patches", "1", {"bad": ImageEmbedding(patches.vectors, grid=(5, 5))})
    assert got["k"].grid == (3, 4) and got["plain"].grid is None
    np.testing.assert_array_equal(got["k"].vectors, patches.vectors)


V1_SCHEMA = (
    "CREATE TABLE embeddings (sha256 TEXT NOT NULL, embedder TEXT NOT NULL, version TEXT NOT "
    "NULL, n INTEGER NOT NULL, dim INTEGER NOT NULL, vectors BLOB NOT NULL, boxes BLOB, "
    "created REAL, PRIMARY KEY (embedder, version, sha256)) WITHOUT ROWID"
)


def _old_cache(path: Path, schema: str) -> bytes:
    import sqlite3

    db = sqlite3.connect(path)
    db.execute(V1_SCHEMA)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('schema', ?)", (schema,))
    vec = np.arange(6, dtype="<f4").reshape(2, 3)
    db.execute(
        "INSERT INTO embeddings VALUES (?,?,?,?,?,?,?,?)",
        ("abc", "emb", "1", 2, 3, vec.tobytes(), np.zeros((2, 4), "<f4").tobytes(), 0.0),
    )
    db.commit()
    db.close()
    return path.read_bytes()


def test_schema_1_is_upgraded_in_place_never_deleted(tmp_path):
    old = tmp_path / "v1.sqlite"
    _old_cache(old, "1")
    with EmbeddingCache(old) as cache:
        got = cache.get_many("emb", "1", ["abc"])["abc"]
        assert got.vectors.shape == (2, 3) and got.boxes.shape == (2, 4) and got.grid is None
        cache.put_many("emb", "1", {"new": ImageEmbedding(got.vectors, grid=(1, 2))})
        assert len(cache) == 2
    with EmbeddingCache(old) as cache:  # reopening the upgraded file
        assert cache.get_many("emb", "1", ["new"])["new"].grid == (1, 2)
    future = tmp_path / "v9.sqlite"
    before = _old_cache(future, "9")
    with pytest.raises(ValueError, match="schema 9 is not one this oneclass knows.*left as it"):
        EmbeddingCache(future)
    assert future.read_bytes() == before
