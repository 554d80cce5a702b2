"""The Ray engine against a real local cluster (a head and a worker on 127.0.0.1, one CPU each).

Scores from ``--engine ray`` must equal the in-process engine's; embedding shards too. Skipped,
with the reason, when Ray is not installed (``pip install 'oneclass[scale]'``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ray", reason="the Ray engine needs the [scale] extra")

import oneclass  # noqa: E402
from oneclass.engine import local, shards  # noqa: E402
from oneclass.engine import ray as ray_engine  # noqa: E402

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_cli() -> list[str]:
    exe = Path(sys.executable).with_name("ray")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ray.scripts.scripts"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and one worker node on 127.0.0.1 (one CPU each); stopped after the module."""
    port = free_port()
    temp = tmp_path_factory.mktemp("ray")
    # a throw-away cluster on loopback, without token auth: Ray turns it on when a token file of
    # an earlier local ray.init() exists, and the worker node would then need that token
    settings = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    env = {**os.environ, "ONECLASS_THREADS": "1"}
    common = ["--num-cpus=1", "--object-store-memory=150000000", "--disable-usage-stats"]
    head = [
        *ray_cli(),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--include-dashboard=false",
        f"--temp-dir={temp}",
        *common,
    ]
    worker = [
        *ray_cli(),
        "start",
        f"--address=127.0.0.1:{port}",
        "--node-ip-address=127.0.0.1",
        *common,
    ]
    try:
        subprocess.run(head, check=True, env=env, capture_output=True, timeout=180)
        subprocess.run(worker, check=True, env=env, capture_output=True, timeout=180)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([*ray_cli(), "stop", "--force"], env=env, capture_output=True, timeout=120)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def model(data_root, tmp_path_factory):
    cage = sorted((data_root / "niccage" / "crops").glob("*.jpg"))
    bsds = sorted((data_root / "generic" / "bsds500").glob("*.jpg"))
    pipe = oneclass.fit(
        "effnet-lite0", "knn:k=3", [str(p) for p in cage[:10]], progress=False, cache=False
    )
    folder = tmp_path_factory.mktemp("raymodel") / "model"
    pipe.save(folder)
    test = [str(p) for p in cage[70:76] + bsds[10:16]]
    return folder, test


def test_ray_scores_equal_in_process(cluster, model, tmp_path):
    folder, test = model
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    images = [*test, str(bad)]
    pipe = oneclass.load(folder)
    pipe.cache = False
    expected = pipe.score(images)
    out = tmp_path / "ray.csv"
    summary = ray_engine.score_collection(
        folder, images, out, address=cluster, batch_size=4, progress=False
    )
    got = pd.read_csv(out)
    assert summary.rows == len(images) and summary.status["failed"] == 1
    assert list(got.path) == list(expected.path)  # input order kept
    ok = expected.status == "ok"
    assert np.max(np.abs(got.score[ok] - expected.score[ok])) <= 1e-4
    assert got.status.iloc[-1].startswith("failed")


def test_ray_embed_shards_equal_local(cluster, model, tmp_path):
    _, test = model
    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    first = ray_engine.embed_collection(
        "effnet-lite0", test, ray_out, address=cluster, shard_size=5, progress=False
    )
    assert first.rows == len(test)
    local.embed_collection(
        "effnet-lite0", test, local_out, shard_size=5, cache=False, progress=False
    )
    a, b = shards.read_shards(ray_out), shards.read_shards(local_out)
    assert list(a.id) == list(b.id)
    for x, y in zip(a.vectors, b.vectors, strict=True):
        np.testing.assert_allclose(np.stack(list(x)), np.stack(list(y)), atol=1e-4)
    again = ray_engine.embed_collection(
        "effnet-lite0", test, ray_out, address=cluster, shard_size=5, progress=False
    )
    assert again.skipped == 3 and again.rows == 0
    shutil.rmtree(ray_out)
