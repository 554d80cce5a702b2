"""Thumbnails of the worst mistakes of a configuration: its highest-scoring negatives (false
positives) and its lowest-scoring positives (false negatives).

Images are read through the data layer (:func:`oneclass.data.uri.read_uri`: file paths and
``zip:///abs/archive.zip!member`` members; decoding by :func:`oneclass.data.decode.decode_image`).
A URL is shown only from a local copy: the run's download cache (``download_cache`` in run.json,
else the default one of :mod:`oneclass.data.download`); nothing is ever fetched for a report.
A thumbnail that cannot be made says why instead ("not available: ...").
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from oneclass.report.blocks import Thumb

THUMB_PX = 96


def worst(scores: pd.DataFrame, k: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(false_positives, false_negatives)``: the ``k`` highest-scoring negatives and the ``k``
    lowest-scoring positives among the images that were scored (finite scores)."""
    s = scores[np.isfinite(scores["score"])]
    fp = s[s["label"] == 0].sort_values("score", ascending=False, kind="stable").head(k)
    fn = s[s["label"] == 1].sort_values("score", ascending=True, kind="stable").head(k)
    return fp, fn


def _url_copy(url: str, cache: Path | None) -> Path | None:
    """The local copy of ``url`` in a download cache, or ``None``; never downloads."""
    from oneclass.data.download import Downloader

    if cache is None:
        return None
    f = Downloader(cache, offline=True).path_for(url)
    return f if f.is_file() else None


def read_image(
    uri: str, url_cache: Path | None = None, px: int = THUMB_PX
) -> tuple[Image.Image | None, str]:
    """The RGB image behind ``uri`` (decoded at least ``px`` wide), or ``(None, why not)``."""
    from oneclass.data.decode import decode_image
    from oneclass.data.uri import is_url, read_uri

    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    try:
        if is_url(uri):
            local = _url_copy(uri, url_cache)
            if local is None:
                return None, "not available: URL without a cached copy"
            data = local.read_bytes()
        elif scheme in ("", "file", "zip") or len(scheme) == 1:  # len 1: a Windows drive letter
            data = read_uri(uri)
        else:
            return None, f"not available: {scheme}: items are not images"
        return decode_image(data, uri, size_hint=px), ""
    except (OSError, ValueError) as e:
        return None, f"not available: {str(e)[:160]}"


def thumbnail(img: Image.Image, px: int = THUMB_PX) -> bytes:
    """A JPEG of ``img`` whose longer side is ``px``."""
    t = img.copy()
    t.thumbnail((px, px), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    t.convert("RGB").save(buf, format="JPEG", quality=82, optimize=True)
    return buf.getvalue()


def default_url_cache(info: dict) -> Path:
    """The download cache a run names (``download_cache`` in run.json), else the default one."""
    from oneclass.data.download import default_cache_dir

    return Path(info["download_cache"]) if info.get("download_cache") else default_cache_dir()


def with_map(img: Image.Image, patch_scores: np.ndarray) -> Image.Image:
    """Returns ``img`` with the anomaly map of its per-patch in-class scores (a ``(rows, cols)``
    grid over the whole image) drawn over it as a heat map."""
    from oneclass.embed.anomaly_map import anomaly_map, overlay

    grid = (int(patch_scores.shape[0]), int(patch_scores.shape[1]))
    amap = anomaly_map(patch_scores.ravel(), grid, img.size, sigma=max(1.0, min(img.size) / 56))
    return overlay(img, amap, alpha=0.45)


def thumbs(
    rows: pd.DataFrame,
    url_cache: Path | None = None,
    px: int = THUMB_PX,
    *,
    maps: dict[str, np.ndarray] | None = None,
) -> list[Thumb]:
    """Returns one :class:`Thumb` per row (item_id, uri, family, score) with its caption lines;
    ``maps`` (``{"map<row index>": patch scores}``, see :meth:`Run.maps`) draws the anomaly map of
    the rows that have one over their thumbnail."""
    out = []
    for idx, r in rows.iterrows():
        uri = str(r["uri"])
        img, why = read_image(uri, url_cache, px)
        key = f"map{idx}"
        if img is not None and maps and key in maps:
            img = with_map(img, maps[key])
        name = str(r["item_id"]).replace("\\", "/").rsplit("/", 1)[-1]
        lines = [f"{r['score']:.4g}", str(r["family"] or ""), name[:28]]
        out.append(Thumb(thumbnail(img, px) if img is not None else None, lines, why))
    return out
