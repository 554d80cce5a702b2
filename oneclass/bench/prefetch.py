"""Download a suite's URL images once, concurrently, before anything is embedded."""

from __future__ import annotations

from typing import Any


class NetworkUnavailable(RuntimeError):
    """A suite needs images that are not cached and the network cannot be reached."""


def prefetch(
    items: list, suite: str, *, progress: bool = True
) -> tuple[list, list[dict[str, Any]]]:
    """Fetch the URL items into the download cache.

    Returns:
        ``(kept, failures)``: the items to use (every item but the URLs that failed) and one
        failure row (FAILURE_COLUMNS) per failed URL.

    Raises:
        NetworkUnavailable: at once, saying how many images are missing, when some are not cached
            and the first of them cannot be reached.
    """
    from oneclass.data.download import default_downloader
    from oneclass.data.uri import is_url

    urls = list(dict.fromkeys(it.uri for it in items if is_url(it.uri)))
    if not urls:
        return items, []
    dl = default_downloader()
    missing = [u for u in urls if not dl.path_for(u).is_file()]
    if missing:
        import requests

        try:
            requests.head(missing[0], timeout=5, allow_redirects=True)
        except requests.RequestException as exc:
            raise NetworkUnavailable(
                f"suite {suite!r} needs internet: {len(missing)} of {len(urls)} images are not "
                f"in the download cache {dl.cache_dir}, and {missing[0]} cannot be reached "
                f"({type(exc).__name__}). Run it where there is network access (or `oneclass "
                f"datasets fetch` there first and copy the cache)"
            ) from exc
    result = dl.fetch(urls, progress=progress)
    by_uri = {it.uri: it for it in items}
    failures = [
        {
            "suite": suite,
            "embedder": "",
            "item_id": by_uri[u].id,
            "uri": u,
            "stage": "download",
            "reason": reason,
        }
        for u, reason in result.failures
    ]
    failed = {u for u, _ in result.failures}
    return [it for it in items if it.uri not in failed], failures
