"""What a pipeline knows about scored images beyond the table, and their anomaly maps.

:class:`ScoreDetails` keeps the embeddings and every vector's score; for patch embedders these,
laid on each embedding's ``grid``, are the anomaly map. ``oneclass score --maps DIR`` writes one
overlay PNG per scored image, named ``<position>_<file name>.png``, each to a temporary file that
is then renamed. The drawing itself is :mod:`oneclass.embed.anomaly_map`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oneclass.embed.aggregate import ImageScores
from oneclass.outputs import atomic_write_with
from oneclass.pipeline_inputs import EmbeddedImages

__all__ = ["ScoreDetails", "map_file_name", "write_maps"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ScoreDetails:
    """Everything :meth:`oneclass.pipeline.Pipeline.score_details` knows about scored images.

    Attributes:
        table: the table :meth:`~oneclass.pipeline.Pipeline.score` returns.
        images: the embeddings, ids and URIs.
        scores: per-image scores, status, the deciding vector and ``vector_scores`` (for patch
            embedders, with each embedding's ``grid``, the anomaly map).
    """

    table: pd.DataFrame
    images: EmbeddedImages
    scores: ImageScores

    def patch_map(self, i: int) -> tuple[np.ndarray, tuple[int, int]] | None:
        """Returns ``(vector_scores, grid)`` of image ``i``, or ``None`` when it has no grid."""
        emb = self.images.embeddings[i]
        vs = self.scores.vector_scores[i] if self.scores.vector_scores else None
        if emb is None or emb.grid is None or vs is None:
            return None
        return vs, emb.grid

    def write_maps(self, folder: str | Path) -> int:
        """Write an anomaly-map overlay (PNG) for every scored patch image into ``folder``.

        Returns:
            The number of maps written.
        """
        return write_maps(self, folder)


def map_file_name(position: int, uri: str) -> str:
    """Returns a safe, unique file name for the map of the image at ``position``."""
    stem = _UNSAFE.sub("_", uri.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0])
    return f"{position:06d}_{stem.strip('._')[:80] or 'image'}.png"


def write_maps(details: ScoreDetails, folder: str | Path) -> int:
    """Write one overlay per scored patch image of ``details`` into ``folder``.

    Returns:
        The number of maps written (failed, map-less and in-memory images are skipped).
    """
    from oneclass.data.sources import load_image
    from oneclass.embed.anomaly_map import anomaly_map, overlay

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for i, uri in enumerate(details.images.uris):
        found = details.patch_map(i)
        if found is None or (uri.startswith("image[") and uri.endswith("]")):
            continue  # in memory: the caller draws it (anomaly_map + overlay)
        vector_scores, grid = found
        image = load_image(uri)
        picture = overlay(image, anomaly_map(vector_scores, grid, image.size))

        def save(p: Path, im: Any = picture) -> None:
            im.save(p, "PNG")

        atomic_write_with(out / map_file_name(i, uri), save)
        written += 1
    return written
