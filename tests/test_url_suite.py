"""A URL-list suite (the George suite's path: download, cache, embed, score) run offline against
a real HTTP server on 127.0.0.1, and the clear stop when the network cannot be reached."""

from __future__ import annotations

import functools
import http.server
import threading

import pandas as pd
import pytest

from oneclass.cli import main


@pytest.fixture
def server(tmp_path, data_root):
    root = tmp_path / "www"
    root.mkdir()
    cage = sorted((data_root / "niccage" / "crops").glob("*.jpg"))[:24]
    trump = sorted((data_root / "faces" / "trump").glob("*.jpg"))[:24]
    for p in cage + trump:
        (root / p.name).write_bytes(p.read_bytes())
    (root / "page.jpg").write_text("<html>not an image</html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, [p.name for p in cage], [p.name for p in trump]
    httpd.shutdown()
    httpd.server_close()


SUITE = """
name: george-local
protocol: positives-vs-families
positives: {source: POS}
negatives:
  non_george: {source: NEG}
split: {test_size: 0.5}
embedders: [effnet-lite0]
detectors: [knn]
baselines: {detectors: [logistic], train_families: [non_george]}
seeds: [0]
bootstrap: 50
"""


def test_url_suite_downloads_caches_and_scores(tmp_path, server, monkeypatch):
    base, pos, neg = server
    monkeypatch.setenv("ONECLASS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "pos.csv").write_text("".join(f"{base}/{n}\r\n" for n in pos))
    (tmp_path / "neg.csv").write_text(
        "".join(f"{base}/{n}\r\n" for n in neg) + f"{base}/missing.jpg\r\n{base}/page.jpg\r\n"
    )
    suite = tmp_path / "george-local.yaml"
    suite.write_text(
        SUITE.replace("POS", str(tmp_path / "pos.csv")).replace("NEG", str(tmp_path / "neg.csv"))
    )
    run = tmp_path / "run"
    assert main(["-q", "benchmark", str(suite), "--out", str(run), "--no-report"]) == 0
    res = pd.read_csv(run / "results.csv")
    assert set(res[res.status == "ok"].detector) == {"knn", "logistic"}
    assert (res.n_pos + res.n_neg <= 48).all()
    failures = pd.read_csv(run / "failures.csv")
    reasons = dict(zip(failures.uri.str.rsplit("/", n=1).str[-1], failures.reason, strict=True))
    assert set(reasons) == {"missing.jpg", "page.jpg"}
    assert "404" in reasons["missing.jpg"]
    assert (failures.stage == "download").all()
    cached = list((tmp_path / "cache" / "downloads").rglob("*"))
    assert sum(p.is_file() for p in cached) >= 48


def test_url_suite_stops_at_once_without_network(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ONECLASS_CACHE", str(tmp_path / "cache"))
    # a port on loopback where nothing listens: the connection is refused at once
    (tmp_path / "pos.csv").write_text("http://127.0.0.1:9/a.jpg\r\nhttp://127.0.0.1:9/b.jpg\r\n")
    suite = tmp_path / "s.yaml"
    suite.write_text(
        SUITE.replace("POS", str(tmp_path / "pos.csv")).replace("NEG", str(tmp_path / "pos.csv"))
    )
    assert main(["-q", "benchmark", str(suite), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "needs internet: 2 of 2 images are not in the download cache" in err
