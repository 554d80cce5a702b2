"""What a fitted detector saves: JSON-able ``meta``, numpy ``arrays``, torch ``tensors``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oneclass.detect.validation import check_finite_fields


@dataclass
class State:
    """A detector's saved state: JSON-able ``meta``, numpy ``arrays``, torch ``tensors``."""

    meta: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    tensors: dict[str, Any] = field(default_factory=dict)


def _part(d: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in d.items() if k.startswith(prefix)}


def split_state(state: State) -> tuple[State, State]:
    """The model and calibration parts of a full state (``BaseDetector.get_state``'s layout).

    Returns:
        ``(model, calibration)``, each a :class:`State` with the prefixes removed.
    """
    if not isinstance(state, State):
        raise ValueError(f"a detector state must be a State, got {type(state).__name__}")
    meta = state.meta
    if (
        not isinstance(meta, dict)
        or not isinstance(meta.get("calibration"), dict)
        or not isinstance(meta.get("model", {}), dict)
    ):
        raise ValueError("a detector state needs meta = {'model': {...}, 'calibration': {...}}")
    unknown = [
        k for k in (*state.arrays, *state.tensors) if not k.startswith(("model/", "calibration/"))
    ]
    if unknown:
        raise ValueError(
            f"unexpected state entries {unknown[:5]} (neither model/ nor calibration/)"
        )
    model = State(
        meta=dict(meta.get("model", {})),
        arrays=_part(state.arrays, "model/"),
        tensors=_part(state.tensors, "model/"),
    )
    calibration = State(meta=dict(meta["calibration"]), arrays=_part(state.arrays, "calibration/"))
    return model, calibration


def calibration_fields(calibration: State) -> dict[str, Any]:
    """The checked calibration attributes of a detector from its saved calibration state.

    Returns:
        ``{"threshold_", "n_features_in_", "calibration_", "calibration_info_",
        "calibration_scores_", "calibration_negative_scores_"}``.

    Raises:
        ValueError: naming a missing, non-finite or malformed field.
    """
    meta = calibration.meta
    check_finite_fields(meta, "calibration")
    check_finite_fields(calibration.arrays, "calibration")
    try:
        threshold, n_features = float(meta["threshold_"]), int(meta["n_features_in_"])
        scores = np.asarray(calibration.arrays["calibration_scores_"], dtype=np.float64)
    except KeyError as exc:
        raise ValueError(f"calibration.{exc.args[0]} is missing") from exc
    except (TypeError, ValueError) as exc:
        raise ValueError(f"calibration: threshold_/n_features_in_ must be numbers ({exc})") from exc
    if n_features < 1:
        raise ValueError(f"calibration.n_features_in_ = {n_features} must be >= 1")
    negatives = calibration.arrays.get("calibration_negative_scores_")
    for name, arr in (("calibration_scores_", scores), ("calibration_negative_scores_", negatives)):
        if arr is not None and np.asarray(arr).ndim != 1:
            raise ValueError(f"calibration.{name} must be 1-d, got shape {np.asarray(arr).shape}")
    shown = str(meta.get("calibration_", ""))
    info = meta.get("calibration_info_")
    if not isinstance(info, dict):  # saved before calibration_info_ existed
        info = {
            "method": shown.split(",")[0].split(" (")[0],
            "folds": None,
            "target": "fpr" if "FPR=" in shown else "tpr",
            "value": None,
        }
    return {
        "threshold_": threshold,
        "n_features_in_": n_features,
        "calibration_": shown,
        "calibration_info_": dict(info),
        "calibration_scores_": scores,
        "calibration_negative_scores_": (
            None if negatives is None else np.asarray(negatives, dtype=np.float64)
        ),
    }
