"""The in-process engine: streaming score tables and resumable embedding shards, on real images."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import oneclass
from oneclass.engine import local, shards
from oneclass.engine.tables import StreamingTable


@pytest.fixture(scope="module")
def images(data_root):
    cage = sorted((data_root / "niccage" / "crops").glob("*.jpg"))
    bsds = sorted((data_root / "generic" / "bsds500").glob("*.jpg"))
    return [str(p) for p in cage[:12]], [str(p) for p in cage[60:66] + bsds[:6]]


@pytest.fixture(scope="module")
def model(images, tmp_path_factory):
    train, _ = images
    pipe = oneclass.fit("effnet-lite0", "knn:k=3", train, progress=False, cache=False)
    folder = tmp_path_factory.mktemp("engine") / "model"
    pipe.save(folder)
    return folder


def test_streaming_score_equals_pipeline_score(model, images, tmp_path):
    _, test = images
    pipe = oneclass.load(model)
    pipe.cache = False
    whole = pipe.score(test)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "scores.csv"
    summary = local.score_collection(pipe, [*test, str(bad)], out, batch_size=5, progress=False)
    assert summary.rows == len(test) + 1 and summary.status["failed"] == 1
    streamed = pd.read_csv(out)
    assert list(streamed.columns) == list(whole.columns)
    np.testing.assert_allclose(streamed.score[: len(test)], whole.score, rtol=1e-6)
    assert streamed.status.iloc[-1].startswith("failed") and "broken.jpg" in streamed.path.iloc[-1]
    # the same run as Parquet
    pq_out = tmp_path / "scores.parquet"
    local.score_collection(pipe, test, pq_out, batch_size=4, progress=False)
    np.testing.assert_allclose(pd.read_parquet(pq_out).score, whole.score, rtol=1e-6)


def test_interrupted_table_leaves_the_old_file(tmp_path):
    out = tmp_path / "t.csv"
    out.write_text("old\n")
    with pytest.raises(RuntimeError), StreamingTable(out) as table:
        table.write(pd.DataFrame({"a": [1], "path": ["=cmd()"]}))
        raise RuntimeError("killed")
    assert out.read_text() == "old\n" and list(tmp_path.iterdir()) == [out]
    with StreamingTable(out) as table:
        table.write(pd.DataFrame({"a": [1], "path": ["=cmd()"]}))
    assert pd.read_csv(out).path[0] == "'=cmd()"  # a spreadsheet shows it as text


def test_embed_shards_resume_and_refuse_other_collections(images, tmp_path):
    train, test = images
    out = tmp_path / "emb"
    first = local.embed_collection(
        "effnet-lite0", train, out, shard_size=5, cache=False, progress=False
    )
    assert first.rows == 12 and first.skipped == 0
    assert sorted(p.name for p in out.glob("part-*")) == [f"part-0000{i}.parquet" for i in range(3)]
    table = shards.read_shards(out)
    assert table.id.is_unique and (table.status == "ok").all()
    assert shards.shard_vectors(table.iloc[0]).shape == (1, 1280)
    # a killed run lost shard 1: the rerun redoes only that one
    (out / "part-00001.parquet").unlink()
    again = local.embed_collection(
        "effnet-lite0", train, out, shard_size=5, cache=False, progress=False
    )
    assert again.skipped == 2 and again.rows == 5
    pd.testing.assert_frame_equal(shards.read_shards(out), table)
    with pytest.raises(shards.ShardMismatchError, match="part-00000"):
        local.embed_collection("effnet-lite0", test, out, shard_size=5, cache=False, progress=False)
    with pytest.raises(shards.ShardMismatchError, match="shard_size"):
        local.embed_collection(
            "effnet-lite0", train, out, shard_size=4, cache=False, progress=False
        )
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an embedding folder"):
        local.embed_collection("effnet-lite0", train, user, cache=False, progress=False)
    assert (user / "notes.txt").read_text() == "mine"
    shutil.rmtree(out)
