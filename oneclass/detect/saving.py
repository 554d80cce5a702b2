"""Saving a fitted detector as a model folder (the format of :mod:`oneclass.bundle`).

A detector is saved through its public state API (:meth:`BaseDetector.get_state`): its name,
its parameters and its state as JSON, arrays as ``.npz`` and torch tensors as safetensors.
:func:`oneclass.load` rebuilds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from oneclass.bundle import jsonable, write_bundle


def detector_payload(det: Any) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """A fitted detector as ``(header entry, arrays, tensors)``, through its public state API.

    Returns:
        ``({"detector", "params", "state"}, arrays, tensors)``.
    """
    state = det.get_state()
    entry = {
        "detector": det.name,
        "params": jsonable(det.get_params(deep=False), "params"),
        "state": jsonable(state.meta, "state"),
    }
    return entry, dict(state.arrays), dict(state.tensors)


def save_detector(det: Any, path: str | Path) -> Path:
    """Save a fitted detector as a model folder.

    Returns:
        The model folder.
    """
    entry, arrays, tensors = detector_payload(det)
    return write_bundle(path, {"kind": "detector", **entry}, arrays, tensors)
