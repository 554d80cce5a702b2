"""oneclass: one-class image detection, "is this image X?" from photos of X alone.

Layers, each knowing only the ones below: ``config`` -> ``data`` (sources, decoding, splits) ->
``embed`` (images to vectors; :mod:`oneclass.embed.aggregate` says how an image's vectors train
and score) -> ``detect`` (learn a class from vectors; the score convention lives in
:mod:`oneclass.detect.base`) -> ``calibrate`` / ``metrics`` -> ``pipeline`` (embedder + detector,
saved safely by ``persist``) -> ``bench`` (suites, harness) -> ``report`` -> ``cli``.

Spec strings (``"knn:k=5"``, ``'clip:model="hf-hub:org/x"'``) follow one grammar
(:mod:`oneclass.registry`), and keyword arguments always override values in the spec.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public names imported on first use, so ``import oneclass.data`` does not load torch/sklearn
_LAZY = {
    "available_detectors": "oneclass.detect.registry",
    "make_detector": "oneclass.detect.registry",
    "available_embedders": "oneclass.embed.registry",
    "make_embedder": "oneclass.embed.registry",
    "load": "oneclass.persist",
}

__version__ = "0.1.0"

__all__ = [
    "available_detectors",
    "available_embedders",
    "finetune",
    "fit",
    "load",
    "make_detector",
    "make_embedder",
]


def fit(embedder: Any, detector: Any, positives: Any, negatives: Any = None, **kw: Any) -> Any:
    """Fit an image pipeline: ``oneclass.fit("dlib-face", "knn", "photos/")``.

    Keyword arguments go to :class:`oneclass.pipeline.Pipeline` (``cache``, ``progress``,
    ``target_fpr``, ``no_face_score``, ``embedder_options``).

    Returns:
        The fitted :class:`oneclass.pipeline.Pipeline`.
    """
    from oneclass.pipeline import fit as _fit

    return _fit(embedder, detector, positives, negatives, **kw)


def finetune(
    base: Any,
    positives: Any,
    negatives: Any = None,
    *,
    auxiliary: Any = None,
    progress: bool = True,
    **options: Any,
) -> Any:
    """Adapt an embedder to a class: see :func:`oneclass.embed.finetune.finetune`.

    Returns:
        The adapted embedder, usable wherever an embedder is (``oneclass.fit(emb, "knn", ...)``).
    """
    from oneclass.embed.finetune import finetune as _finetune

    return _finetune(base, positives, negatives, auxiliary=auxiliary, progress=progress, **options)


def __getattr__(name: str) -> Any:
    """Returns a lazily imported public name (see ``_LAZY``)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'oneclass' has no attribute {name!r}")
