"""Build detectors by name: ``make_detector("knn", k=5)``, ``make_detector("pyod:LOF")``."""

from __future__ import annotations

from oneclass.registry import Registry, merge_params, parse_spec

DETECTORS = Registry(
    "detector",
    {
        "deep-svdd": "oneclass.detect.deep_svdd:DeepSVDD",
        "ocsvm": "oneclass.detect.ocsvm:OCSVM",
        "iforest": "oneclass.detect.iforest:IForest",
        "mahalanobis": "oneclass.detect.mahalanobis:Mahalanobis",
        "knn": "oneclass.detect.knn:KNN",
        "logistic": "oneclass.detect.binary:LogisticBaseline",
        "svm": "oneclass.detect.binary:SVMBaseline",
        "mlp": "oneclass.detect.binary:MLPBaseline",
        "clip-prompt": "oneclass.detect.clip_prompt:ClipPrompt",
        "fusion": "oneclass.detect.fusion:Fusion",
        "pyod": "oneclass.detect.pyod_adapter:PyODDetector",
    },
)


def make_detector(name: str, **params):
    """A detector by registry name or spec (``"knn:k=5"``); ``"pyod:<Name>"`` wraps PyOD.

    Keyword arguments override values in the spec string (the one precedence rule of
    :mod:`oneclass.registry`): ``make_detector("knn:k=5", k=7)`` builds ``k=7``.

    Returns:
        The unfitted detector.
    """
    name, spec_params = parse_spec(name)
    params = merge_params(spec_params, params)
    if name.startswith("pyod:"):
        name, params = "pyod", {"model": name.split(":", 1)[1], **params}
    return DETECTORS.make(name, **params)


def available_detectors() -> list[str]:
    """Registered detector names (any ``pyod:<Name>`` works too)."""
    return [n for n in DETECTORS.names() if n != "pyod"] + ["pyod:<Name>"]
