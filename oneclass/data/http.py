"""One bounded HTTP GET: a wall-clock deadline and a byte cap enforced as bytes arrive.

The body is read with ``read1`` (whatever the socket has, at most 64 KiB), so a server that
sends one byte a second is stopped at the deadline, not after a 64 KiB chunk fills; each read
also has the per-read ``timeout``, so a download takes at most ``deadline + timeout``.
"""

from __future__ import annotations

import time

import requests
import urllib3

__all__ = ["ConnectFailure", "PermanentError", "TransientError", "http_get"]

_MAX_RETRY_AFTER = 30.0
_CHUNK = 1 << 16


class TransientError(Exception):
    """A failure worth retrying (timeout, 5xx, 429, broken transfer); ``wait``: Retry-After."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.wait = wait


class ConnectFailure(TransientError):
    """No HTTP answer at all: the host could not be reached (DNS, refused, unreachable)."""


class PermanentError(Exception):
    """A failure not worth retrying (4xx other than 429, too large, invalid URL)."""


def _retry_after(resp: requests.Response) -> float | None:
    try:
        return min(max(float(resp.headers.get("Retry-After", "")), 0.0), _MAX_RETRY_AFTER)
    except ValueError:
        return None


def _body(resp: requests.Response, deadline: float, max_bytes: int, seconds: float) -> bytes:
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise PermanentError(f"too large: {int(length):,} bytes exceeds the cap of {max_bytes:,}")
    body = bytearray()
    while True:
        if time.monotonic() > deadline:
            raise TransientError(
                f"timed out: the download took over {seconds:g} s "
                f"({len(body):,} bytes received; max_seconds)"
            )
        chunk = resp.raw.read1(_CHUNK, decode_content=True)
        if not chunk:
            if time.monotonic() > deadline:
                raise TransientError(f"timed out: the download took over {seconds:g} s")
            return bytes(body)
        body += chunk
        if len(body) > max_bytes:
            raise PermanentError(f"too large: more than {max_bytes:,} bytes (download aborted)")


def http_get(
    session: requests.Session,
    url: str,
    *,
    timeout: float,
    deadline: float,
    max_bytes: int,
    seconds: float,
) -> bytes:
    """GET ``url`` and return the body of a 2xx answer, bounded.

    Args:
        session: the session to use (its headers, connection pool).
        url: an http(s) URL; redirects are followed.
        timeout: seconds per connect and per read.
        deadline: ``time.monotonic()`` value after which the download is abandoned.
        max_bytes: largest body accepted (announced or received).
        seconds: the wall-clock cap the deadline stands for (named in the reason).

    Returns:
        The body.

    Raises:
        TransientError: timeouts, 5xx, 429, broken transfers (:class:`ConnectFailure` when no
            answer came at all).
        PermanentError: other HTTP errors, too large, invalid URL.
    """
    try:
        with session.get(url, timeout=timeout, stream=True) as resp:
            code = resp.status_code
            if code == 429 or code >= 500:
                raise TransientError(f"HTTP {code} {resp.reason}", _retry_after(resp))
            if code >= 300:  # redirects are followed; what is left is an error
                raise PermanentError(f"HTTP {code} {resp.reason}")
            return _body(resp, deadline, max_bytes, seconds)
    except requests.ConnectTimeout:
        raise ConnectFailure(f"timed out connecting (no answer within {timeout:g} s)") from None
    except requests.Timeout:
        raise TransientError(f"timed out (no data within {timeout:g} s)") from None
    except requests.ConnectionError as exc:
        if "timed out" in str(exc).lower():
            raise TransientError(f"timed out (no data within {timeout:g} s)") from None
        raise ConnectFailure(f"connection failed ({type(exc).__name__})") from None
    except (
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    ) as exc:
        raise TransientError(f"broken transfer ({type(exc).__name__})") from None
    except requests.RequestException as exc:  # invalid URL, too many redirects, ...
        raise PermanentError(f"request failed ({type(exc).__name__}: {exc})") from None
    except urllib3.exceptions.ReadTimeoutError:  # raised by read1, which requests does not wrap
        raise TransientError(f"timed out (no data within {timeout:g} s)") from None
    except urllib3.exceptions.HTTPError as exc:  # ProtocolError, DecodeError from read1
        raise TransientError(f"broken transfer ({type(exc).__name__})") from None
    except OSError as exc:  # socket errors surfacing from read1
        raise TransientError(f"broken transfer ({type(exc).__name__}: {exc})") from None
