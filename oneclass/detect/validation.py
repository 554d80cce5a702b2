"""Input checks shared by every detector: clear ``ValueError`` messages, never silent fixes."""

from __future__ import annotations

import numpy as np


def check_matrix(X, *, what: str = "X", n_features: int | None = None) -> np.ndarray:
    """Return ``X`` as a finite 2-d float array, or raise ``ValueError`` saying what is wrong."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a numeric 2-d array: {exc}") from exc
    if arr.ndim == 1 and n_features is not None and arr.shape[0] == n_features:
        raise ValueError(
            f"{what} is 1-d with {arr.shape[0]} values; pass one sample as X.reshape(1, -1)"
        )
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-d (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 samples)")
    if arr.shape[1] == 0:
        raise ValueError(f"{what} has 0 features")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{what} has {arr.shape[1]} features, but the detector was fitted with {n_features}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        shown = ", ".join(str(r) for r in rows[:5]) + (" ..." if rows.size > 5 else "")
        kind = "NaN" if np.isnan(arr).any() else "infinity"
        raise ValueError(f"{what} contains {kind} in {rows.size} row(s): {shown}")
    return arr


def check_labels(y, n: int, *, required: bool) -> np.ndarray | None:
    """Return binary labels (1 = in-class, 0 = not) of length ``n``; ``None`` when absent."""
    if y is None:
        if required:
            raise ValueError("this detector needs labels y (1 = in-class, 0 = negative)")
        return None
    arr = np.asarray(y).ravel()
    if arr.shape[0] != n:
        raise ValueError(f"y has {arr.shape[0]} labels for {n} samples")
    values = set(np.unique(arr).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"y must hold 1 (in-class) and 0 (negative), got values {sorted(values)}")
    arr = arr.astype(np.int64)
    if required and values != {0, 1}:
        raise ValueError("this detector needs both positives (y=1) and negatives (y=0)")
    if not required and values == {0}:
        raise ValueError("y has no positives (y=1): nothing to learn the class from")
    return arr
