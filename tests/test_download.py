"""The downloader against a real HTTP server on 127.0.0.1 that the test starts and stops."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from oneclass.data.download import Downloader, OfflineError
from oneclass.data.errors import ImageLoadError
from oneclass.data.sources import ImageItem, iter_images

TIMEOUT = 0.5
MAX_BYTES = 60_000


def _encode(fmt: str, size=(48, 32), seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


JPEG, PNG = _encode("JPEG"), _encode("PNG", seed=1)
BIG = _encode("PNG", size=(256, 256), seed=2)  # ~197 KB, over MAX_BYTES
assert len(BIG) > 3 * MAX_BYTES


class Handler(BaseHTTPRequestHandler):
    counts: Counter = Counter()
    lock = threading.Lock()

    def log_message(self, *args):  # keep the test output quiet
        pass

    def _send(
        self,
        code: int,
        body: bytes,
        ctype: str = "image/jpeg",
        length: bool = True,
        headers: dict | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(0, len(body), 8192):
                self.wfile.write(body[i : i + 8192])
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (size cap)
            pass

    def do_GET(self):
        with self.lock:
            self.counts[self.path] += 1
            n = self.counts[self.path]
        route = self.path
        if route == "/good.jpg":
            self._send(200, JPEG)
        elif route == "/good.png":
            self._send(200, PNG, "application/octet-stream")  # content type is not trusted
        elif route == "/missing.jpg":
            self._send(404, b"not found", "text/plain")
        elif route == "/flaky.jpg":  # 500 first, then the image
            self._send(500, b"oops", "text/plain") if n == 1 else self._send(200, JPEG)
        elif route == "/busy.jpg":  # 429 with Retry-After first, then the image
            if n == 1:
                self._send(429, b"slow down", "text/plain", headers={"Retry-After": "0"})
            else:
                self._send(200, PNG)
        elif route == "/slow.jpg":  # no answer within the client's timeout
            time.sleep(3 * TIMEOUT)
            self._send(200, JPEG)
        elif route == "/page.jpg":
            self._send(200, b"<!DOCTYPE html><html><body>Image not found</body></html>")
        elif route == "/truncated.jpg":
            self._send(200, JPEG[: len(JPEG) // 2])
        elif route == "/huge.png":  # announced too large
            self._send(200, BIG, "image/png")
        elif route == "/huge-stream.png":  # no Content-Length: aborted while streaming
            self._send(200, BIG, "image/png", length=False)
        elif route == "/drip.jpg":  # one byte every 0.1 s: never a read timeout, never done
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            try:
                for k in range(400):
                    self.wfile.write(JPEG[k % len(JPEG) : k % len(JPEG) + 1])
                    self.wfile.flush()
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up
                pass
        else:
            self._send(404, b"", "text/plain")


@pytest.fixture
def server():
    Handler.counts = Counter()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    watchdog = threading.Timer(60.0, httpd.shutdown)  # bounded even if a test hangs
    watchdog.daemon = True
    watchdog.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", Handler.counts
    finally:
        watchdog.cancel()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def make(tmp_path, **kw) -> Downloader:
    params = dict(
        max_workers=4,
        timeout=TIMEOUT,
        retries=2,
        backoff=0.01,
        max_bytes=MAX_BYTES,
        progress=False,
        offline=False,
    )
    return Downloader(tmp_path / "cache", **{**params, **kw})


def test_each_outcome_failures_file_and_cache(tmp_path, server):
    base, counts = server
    names = [
        "good.jpg",
        "good.png",
        "missing.jpg",
        "flaky.jpg",
        "busy.jpg",
        "slow.jpg",
        "page.jpg",
        "truncated.jpg",
        "huge.png",
        "huge-stream.png",
    ]
    urls = [f"{base}/{n}" for n in names]
    dl = make(tmp_path)
    result = dl.fetch(urls + [urls[0]])  # a repeated URL is fetched once
    ok = {u.rsplit("/", 1)[1] for u in result.paths}
    failed = {u.rsplit("/", 1)[1]: r for u, r in result.failures}
    assert ok == {"good.jpg", "good.png", "flaky.jpg", "busy.jpg"}
    assert list(result.paths) == [u for u in urls if u.rsplit("/", 1)[1] in ok]  # input order
    assert result.paths[urls[0]].read_bytes() == JPEG
    assert result.paths[f"{base}/busy.jpg"].read_bytes() == PNG
    assert "HTTP 404" in failed["missing.jpg"]
    assert "timed out" in failed["slow.jpg"] and "gave up after 3 attempts" in failed["slow.jpg"]
    assert "HTML" in failed["page.jpg"]
    assert "truncated" in failed["truncated.jpg"]
    assert "too large" in failed["huge.png"] and "197" in failed["huge.png"].replace(",", "")[:40]
    assert "download aborted" in failed["huge-stream.png"]
    assert not result.ok and str(result) == "4 available, 6 failed"
    # retries: none for 404 or bad content, one for the 500 and the 429, all for the timeout
    assert counts["/missing.jpg"] == 1 and counts["/page.jpg"] == 1
    assert counts["/flaky.jpg"] == 2 and counts["/busy.jpg"] == 2 and counts["/slow.jpg"] == 3
    assert counts["/good.jpg"] == 1
    # the cache: files named by URL hash, no temporary files left behind
    assert all(p.parent.parent == dl.cache_dir / "files" for p in result.paths.values())
    assert not list(dl.cache_dir.rglob("*.tmp"))
    # the failures file
    with open(dl.failures_path, newline="") as fh:
        rows = {r["url"].rsplit("/", 1)[1]: r for r in csv.DictReader(fh)}
    assert set(rows) == set(failed)
    assert rows["missing.jpg"]["reason"] == failed["missing.jpg"]
    assert rows["missing.jpg"]["permanent"] == "yes" and rows["slow.jpg"]["permanent"] == "no"
    # a second run (a new downloader on the same cache) only retries the transient failure
    before = Counter(counts)
    again = make(tmp_path).fetch(urls)
    assert set(again.paths) == set(result.paths)
    assert {u.rsplit("/", 1)[1] for u, _ in again.failures} == set(failed)
    assert {k: counts[k] - before[k] for k in counts if counts[k] != before[k]} == {"/slow.jpg": 3}


def test_offline_fails_fast_with_count(tmp_path, server, monkeypatch):
    base, counts = server
    dl = make(tmp_path)
    dl.fetch([f"{base}/good.jpg"])
    monkeypatch.setenv("ONECLASS_OFFLINE", "1")
    offline = make(tmp_path, offline=None)
    assert offline.is_offline()
    cached = offline.fetch([f"{base}/good.jpg"])
    assert list(cached.paths) == [f"{base}/good.jpg"]
    with pytest.raises(OfflineError, match=r"2 of 3 URLs are not in the download cache"):
        offline.fetch([f"{base}/good.jpg", f"{base}/good.png", f"{base}/flaky.jpg"])
    assert counts["/good.png"] == 0 and counts["/good.jpg"] == 1
    with pytest.raises(ImageLoadError, match="offline"):
        offline.fetch_one(f"{base}/good.png")


def test_url_items_read_through_the_cache(tmp_path, server, monkeypatch):
    base, counts = server
    monkeypatch.setenv("ONECLASS_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv("ONECLASS_OFFLINE", raising=False)
    items = [ImageItem(id=n, uri=f"{base}/{n}") for n in ("good.jpg", "missing.jpg", "good.png")]
    out = list(iter_images(items, progress=False, workers=2))
    assert out[0][1].size == (48, 32) and out[2][1].size == (48, 32)
    assert "HTTP 404" in out[1][1].reason
    list(iter_images(items, progress=False, workers=2))
    assert counts["/good.jpg"] == 1 and counts["/missing.jpg"] == 1  # cached / remembered
    assert (tmp_path / "c" / "downloads" / "failures.csv").is_file()


def test_retry_failed_and_bad_urls(tmp_path, server):
    base, counts = server
    make(tmp_path).fetch([f"{base}/missing.jpg"])
    again = make(tmp_path, retry_failed=True).fetch([f"{base}/missing.jpg", "ftp://x/y.jpg"])
    assert counts["/missing.jpg"] == 2
    reasons = dict(again.failures)
    assert "unsupported URL" in reasons["ftp://x/y.jpg"]
    refused = make(tmp_path, retries=0).fetch(["http://127.0.0.1:9/nothing.jpg"])
    assert "connection failed" in refused.failures[0][1] or "timed out" in refused.failures[0][1]


def test_slow_drip_stops_at_the_wall_clock_cap(tmp_path, server):
    base, counts = server
    dl = make(tmp_path, max_seconds=1.5, retries=2, backoff=0.01)
    done: list = []
    worker = threading.Thread(
        target=lambda: done.append(dl.fetch([f"{base}/drip.jpg", f"{base}/good.jpg"]))
    )
    worker.start()
    worker.join(30)  # before the fix the 64 KiB chunk never filled: 40 s per attempt
    assert not worker.is_alive(), "the download did not stop at its wall-clock cap"
    [result] = done
    assert list(result.paths) == [f"{base}/good.jpg"]
    [(url, reason)] = result.failures
    assert url.endswith("/drip.jpg") and "took over 1.5 s" in reason and "max_seconds" in reason
    assert counts["/drip.jpg"] == 1  # the cap covers all attempts of a URL together


def test_no_network_fails_fast(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on: every connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    urls = [f"http://127.0.0.1:{port}/img{k}.jpg" for k in range(60)]
    dl = make(tmp_path, max_workers=2, retries=2, backoff=0.05, max_connect_failures=4)
    result = dl.fetch(urls)
    reasons = [r for _, r in result.failures]
    assert len(reasons) == 60 and not result.paths
    skipped = [r for r in reasons if r.startswith("not tried: the network looks unreachable")]
    assert len(skipped) >= 50 and "ONECLASS_OFFLINE=1" in skipped[0]
    assert "connection failed" in skipped[0]
    with open(dl.failures_path, newline="") as fh:  # transient: tried again on the next run
        assert {r["permanent"] for r in csv.DictReader(fh)} == {"no"}
    # URLs read one by one (as image items are) share the verdict: no attempt after the 4th
    one_by_one = make(tmp_path / "one", retries=0, max_connect_failures=4)
    reasons = []
    for url in urls[:12]:
        with pytest.raises(ImageLoadError) as err:
            one_by_one.fetch_one(url)
        reasons.append(err.value.reason)
    assert all("connection failed" in r for r in reasons[:4])
    assert all(r.startswith("not tried: the network looks unreachable") for r in reasons[4:])
