"""oneclass: one-class image detection, "is this image X?" from photos of X alone.

Layers, each knowing only the one below: ``data`` (sources, decoding, splits) -> ``embed``
(images to vectors) -> ``detect`` (learn a class from vectors; the score convention lives in
:mod:`oneclass.detect.base`) -> ``calibrate`` / ``metrics`` -> ``pipeline`` (embedder + detector,
saved safely by ``persist``) -> ``bench`` (suites, harness) -> ``report`` -> ``cli``.
"""

from oneclass.detect.registry import available_detectors, make_detector
from oneclass.embed.registry import available_embedders, make_embedder
from oneclass.persist import load

__version__ = "0.1.0"

__all__ = [
    "available_detectors",
    "fit",
    "available_embedders",
    "load",
    "make_detector",
    "make_embedder",
]


def fit(embedder, detector, positives, negatives=None, **kw):
    """Fit an image pipeline: ``oneclass.fit("dlib-face", "knn", "photos/")``."""
    from oneclass.pipeline import fit as _fit

    return _fit(embedder, detector, positives, negatives, **kw)
