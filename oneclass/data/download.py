"""Downloading image URLs into an on-disk cache, robustly.

- a bounded thread pool, a timeout on every request, retries with exponential backoff on
  connection errors, timeouts, 5xx and 429 (``Retry-After`` honoured up to 30 s), never on 404
  or other 4xx;
- the content must decode as an image (never trusted from the extension or content type) and
  stay under ``max_bytes`` (streamed: the download aborts past the cap);
- a cache keyed by the URL's SHA-256 (atomic writes: temporary file, then rename), so a run can
  be resumed: cached URLs are not fetched again, and permanent failures (404, not an image, too
  large) are remembered in ``failures.csv`` (``url,reason,permanent``) and not tried again unless
  ``retry_failed=True``; transient ones (timeouts, 5xx) are tried again on the next run;
- ``offline`` (or ``ONECLASS_OFFLINE=1``): uncached URLs fail fast with :class:`OfflineError`;
- a hard wall-clock cap per URL (``max_seconds``, all attempts together; a server that sends a
  byte a second is stopped there, see :mod:`oneclass.data.http`);
- no network: after ``max_connect_failures`` URLs in a row got no answer at all (DNS, refused,
  unreachable) and none answered in the last minute, later URLs are not tried and fail with
  that reason at once (a probe every 30 s notices a network that comes back).

A failed download never becomes a substitute image: it is reported in ``failures``.
"""

from __future__ import annotations

import csv
import io
import os
import random
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import requests
from tqdm.auto import tqdm

from oneclass.config import settings
from oneclass.data.decode import MAX_PIXELS, decode_image
from oneclass.data.errors import DecodeError, ImageLoadError, OfflineError
from oneclass.data.hashing import sha256_bytes
from oneclass.data.http import ConnectFailure, PermanentError, TransientError, http_get

__all__ = [
    "DEFAULT_USER_AGENT",
    "DownloadResult",
    "Downloader",
    "OfflineError",
    "default_cache_dir",
    "default_downloader",
    "offline_from_env",
]

DEFAULT_USER_AGENT = f"oneclass/0.1 (research image fetcher) requests/{requests.__version__}"
FAILURES_FILE = "failures.csv"
_QUIET_BEFORE_TRIP = 60.0  # seconds without any answer before "no network" may trip
_PROBE_EVERY = 30.0  # seconds between probes while tripped


def default_cache_dir() -> Path:
    """Returns the download cache: ``<cache folder>/downloads`` (``ONECLASS_CACHE``, default
    ``~/.cache/oneclass``; see :mod:`oneclass.config`)."""
    return settings().cache_dir / "downloads"


def offline_from_env() -> bool:
    """Returns True when ``ONECLASS_OFFLINE`` is set to 1/true/yes/on."""
    return settings().offline


@dataclass
class DownloadResult:
    """``paths``: url -> cached file for each URL available; ``failures``: (url, reason)."""

    paths: dict[str, Path] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        return f"{len(self.paths)} available, {len(self.failures)} failed"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class Downloader:
    """Fetch image URLs into ``cache_dir`` (default :func:`default_cache_dir`).

    ``timeout`` is per connect/read (seconds); ``retries`` extra attempts follow transient
    failures after ``backoff * 2**k`` seconds; ``max_seconds`` is the wall-clock cap of one URL,
    all its attempts together (exceeded by at most one read ``timeout``);
    ``max_connect_failures``: that many URLs in a row without any answer (and no answer in the
    last minute) mean "no network": later URLs fail at once instead of each being tried (one
    is tried every 30 s, so a network that comes back is used again). The state lasts as long
    as the downloader, so URL items read one by one (:func:`default_downloader`) fail fast too.
    """

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        max_workers: int = 8,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_bytes: int = 20 * 2**20,
        user_agent: str = DEFAULT_USER_AGENT,
        offline: bool | None = None,
        progress: bool = True,
        max_pixels: int = MAX_PIXELS,
        retry_failed: bool = False,
        max_seconds: float = 60.0,
        max_connect_failures: int = 8,
    ):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.max_workers = max_workers
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        self.offline = offline
        self.progress = progress
        self.max_pixels = max_pixels
        self.retry_failed = retry_failed
        self.max_seconds = max_seconds
        self.max_connect_failures = max_connect_failures
        self._unreachable: str | None = None  # "no network" tripped: the reason
        self._tripped_at = 0.0
        self._connect_failures = 0
        self._answered_at = -_QUIET_BEFORE_TRIP
        self._local = threading.local()
        self._lock = threading.Lock()
        self._record: dict[str, tuple[str, bool]] | None = None

    # -- cache ---------------------------------------------------------------------------
    def path_for(self, url: str) -> Path:
        """Where ``url``'s content is (or would be) cached."""
        digest = sha256_bytes(url.encode("utf-8"))
        return self.cache_dir / "files" / digest[:2] / digest

    @property
    def failures_path(self) -> Path:
        return self.cache_dir / FAILURES_FILE

    def is_offline(self) -> bool:
        return offline_from_env() if self.offline is None else bool(self.offline)

    def _failure_record(self) -> dict[str, tuple[str, bool]]:
        """url -> (reason, permanent), loaded from ``failures.csv`` once (call under the lock)."""
        if self._record is None:
            self._record = {}
            if self.failures_path.is_file():
                with open(self.failures_path, newline="", encoding="utf-8") as fh:
                    for row in csv.DictReader(fh):
                        if row.get("url"):
                            self._record[row["url"]] = (
                                row.get("reason") or "",
                                row.get("permanent") == "yes",
                            )
        return self._record

    def _save_failures(self, record: dict[str, tuple[str, bool]]) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["url", "reason", "permanent"])
        for url, (reason, permanent) in record.items():
            writer.writerow([url, reason, "yes" if permanent else "no"])
        _atomic_write(self.failures_path, buf.getvalue().encode("utf-8"))

    # -- fetching ------------------------------------------------------------------------
    def fetch(self, urls: Iterable[str], *, progress: bool | None = None) -> DownloadResult:
        """Make every URL available in the cache: ``DownloadResult(paths, failures)``.

        Raises :class:`OfflineError` when offline and any URL is neither cached nor a known
        permanent failure.
        """
        self._check()
        urls = list(dict.fromkeys(u.strip() for u in map(str, urls) if u.strip()))
        with self._lock:
            known = dict(self._failure_record())
        paths: dict[str, Path] = {}
        failed: dict[str, str] = {}
        todo = []
        for url in urls:
            path = self.path_for(url)
            if path.is_file():
                paths[url] = path
            elif url in known and known[url][1] and not self.retry_failed:
                failed[url] = known[url][0]
            else:
                todo.append(url)
        if todo and self.is_offline():
            raise OfflineError(
                f"offline (ONECLASS_OFFLINE=1 or offline=True): {len(todo)} of {len(urls)} URLs "
                f"are not in the download cache {self.cache_dir}; fetch them once with network "
                f"access, or leave them out"
            )
        outcomes: dict[str, tuple[Path | None, str, bool]] = {}
        if todo:
            show = self.progress if progress is None else progress
            workers = max(1, min(self.max_workers, len(todo)))
            with (
                ThreadPoolExecutor(workers, thread_name_prefix="oneclass-download") as pool,
                tqdm(total=len(todo), disable=not show, unit="url", desc="download") as bar,
            ):
                futures = {pool.submit(self._fetch_url, url): url for url in todo}
                n_failed = 0
                for future in as_completed(futures):
                    outcomes[futures[future]] = out = future.result()
                    n_failed += out[0] is None
                    bar.set_postfix(failed=n_failed, refresh=False)
                    bar.update(1)
            with self._lock:
                record = self._failure_record()
                for url, (got, reason, permanent) in outcomes.items():
                    if got is None:
                        record[url] = (reason, permanent)
                    else:
                        record.pop(url, None)
                self._save_failures(record)
        for url, (got, reason, _) in outcomes.items():
            if got is None:
                failed[url] = reason
            else:
                paths[url] = got
        return DownloadResult(
            paths={u: paths[u] for u in urls if u in paths},
            failures=[(u, failed[u]) for u in urls if u in failed],
        )

    def _check(self) -> None:
        for name in ("max_workers", "max_bytes", "max_pixels", "max_connect_failures"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(
                    f"Downloader {name} must be a positive integer, got {getattr(self, name)!r}"
                )
        if not (
            self.timeout > 0 and self.backoff >= 0 and self.retries >= 0 and self.max_seconds > 0
        ):
            raise ValueError(
                f"Downloader needs timeout > 0, backoff >= 0, retries >= 0 and "
                f"max_seconds > 0, got {self.timeout!r}, {self.backoff!r}, "
                f"{self.retries!r}, {self.max_seconds!r}"
            )

    def fetch_one(self, url: str) -> Path:
        """The cached file of one URL; raises :class:`ImageLoadError` naming it and the reason."""
        try:
            result = self.fetch([url], progress=False)
        except OfflineError:
            raise ImageLoadError(
                url, f"offline (ONECLASS_OFFLINE=1) and not in the download cache {self.cache_dir}"
            ) from None
        if result.failures:
            raise ImageLoadError(url, result.failures[0][1])
        return result.paths[url]

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["User-Agent"] = self.user_agent
        return session

    def _note_connect(self, answered: bool, reason: str = "") -> None:
        """Count URLs in a row that got no answer; trip "no network" at the limit, unless some
        URL got an answer in the last minute (dead hosts in a list are not a dead network)."""
        now = time.monotonic()
        with self._lock:
            if answered:
                self._answered_at, self._connect_failures, self._unreachable = now, 0, None
                return
            self._connect_failures += 1
            quiet = now - self._answered_at >= _QUIET_BEFORE_TRIP
            if quiet and self._connect_failures >= self.max_connect_failures:
                self._tripped_at = now
                self._unreachable = (
                    f"not tried: the network looks unreachable ({self._connect_failures} URLs in "
                    f"a row got no answer, e.g. {reason}); check the connection, or set "
                    "ONECLASS_OFFLINE=1 to use only the download cache"
                )

    def _circuit_open(self) -> str | None:
        """The "no network" reason while tripped; every ``_PROBE_EVERY`` s one URL is tried
        again (a probe), so a network that comes back is used again."""
        with self._lock:
            if self._unreachable is None:
                return None
            now = time.monotonic()
            if now - self._tripped_at >= _PROBE_EVERY:
                self._tripped_at = now  # this caller probes; the others keep failing fast
                return None
            return self._unreachable

    def _fetch_url(self, url: str) -> tuple[Path | None, str, bool]:
        """Returns ``(cached path, "", False)`` or ``(None, reason, permanent)``."""
        if not url.lower().startswith(("http://", "https://")):
            return None, "unsupported URL: only http(s) can be downloaded", True
        deadline = time.monotonic() + self.max_seconds
        reason, wait = "", None
        attempts = 0
        for attempt in range(self.retries + 1):
            tripped = self._circuit_open()
            if tripped is not None:
                return None, tripped, False
            if attempt:
                pause = wait if wait is not None else self.backoff * 2 ** (attempt - 1)
                pause *= 1.0 + 0.1 * random.random()
                if time.monotonic() + pause >= deadline:
                    break
                time.sleep(pause)
            attempts += 1
            try:
                data = http_get(
                    self._session(),
                    url,
                    timeout=self.timeout,
                    deadline=deadline,
                    max_bytes=self.max_bytes,
                    seconds=self.max_seconds,
                )
            except ConnectFailure as exc:
                reason, wait = str(exc), exc.wait
                if attempt == 0:
                    self._note_connect(False, reason)
                continue
            except TransientError as exc:
                self._note_connect(True)
                reason, wait = str(exc), exc.wait
                continue
            except PermanentError as exc:
                self._note_connect(True)
                return None, str(exc), True
            self._note_connect(True)
            try:
                decode_image(data, url, max_pixels=self.max_pixels)
            except DecodeError as exc:
                return None, f"not a usable image: {exc.reason}", True
            path = self.path_for(url)
            _atomic_write(path, data)
            return path, "", False
        return None, f"{reason} (gave up after {attempts} attempts)", False


_default: Downloader | None = None
_default_lock = threading.Lock()


def default_downloader() -> Downloader:
    """The shared downloader behind :meth:`ImageItem.read_bytes` for URLs (default settings)."""
    global _default
    with _default_lock:
        if _default is None or _default.cache_dir != default_cache_dir():
            _default = Downloader(progress=False)
        return _default
