"""Input checks shared by every detector: clear ``ValueError`` messages, never silent fixes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp


def check_matrix(
    X, *, what: str = "X", n_features: int | None = None, owner: str = "the detector"
) -> np.ndarray:
    """Return ``X`` as a finite 2-d float array, or raise ``ValueError`` saying what is wrong.

    Returns:
        ``X`` as a C- or F-ordered ``float64`` array of shape ``(n_samples, n_features)``.
    """
    if sp.issparse(X):
        raise TypeError(f"{what}: sparse input is not supported; pass a dense array (X.toarray())")
    if np.iscomplexobj(X):
        raise ValueError(f"{what}: Complex data not supported")
    try:
        arr = np.asarray(X, dtype=np.float64)
    except TypeError as exc:
        raise TypeError(f"{what} must be a numeric 2-d array: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{what} must be a numeric 2-d array: {exc}") from exc
    if arr.ndim == 1 and n_features is not None and arr.shape[0] == n_features:
        raise ValueError(
            f"{what} is 1-d with {arr.shape[0]} values; Reshape your data: pass one sample "
            f"as X.reshape(1, -1)"
        )
    if arr.ndim != 2:
        raise ValueError(
            f"{what} must be 2-d (n_samples, n_features), got shape {arr.shape}; "
            f"Reshape your data: pass one sample as X.reshape(1, -1)"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 samples)")
    if arr.shape[1] == 0:
        raise ValueError(
            f"{what} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{what} has {arr.shape[1]} features, but {owner} is expecting {n_features} "
            f"features as input (it was fitted with {n_features})"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        shown = ", ".join(str(r) for r in rows[:5]) + (" ..." if rows.size > 5 else "")
        kind = "NaN" if np.isnan(arr).any() else "infinity (inf)"
        raise ValueError(f"{what} contains {kind} in {rows.size} row(s): {shown}")
    return arr


def check_labels(y, n: int, *, required: bool) -> np.ndarray | None:
    """Binary in-class labels of length ``n`` from ``y``; ``None`` when ``y`` is absent.

    ``y == 1`` marks an in-class row and **every other value** a row that is not in the class:
    ``1/0``, ``True/False`` and scikit-learn's outlier convention ``1/-1`` all read the same,
    and a multi-class ``y`` reads as "class 1 against the rest".

    Returns:
        An ``int64`` array of 1 (in-class) and 0 (not), or ``None``.
    """
    if y is None:
        if required:
            raise ValueError(
                "this detector requires y to be passed, but the target y is None: "
                "it needs labels y (1 = in-class, 0 = negative)"
            )
        return None
    if sp.issparse(y):
        raise TypeError("y: sparse labels are not supported")
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"y should be a 1d array of labels, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"y has {arr.shape[0]} labels for {n} samples")
    if np.iscomplexobj(arr):
        raise ValueError("y: Complex data not supported")
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"Unknown label type: y must hold numbers (1 = in-class, any other "
            f"value = not), got dtype {arr.dtype}"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("y contains NaN or infinity")
    labels = (arr == 1).astype(np.int64)
    if required and labels.min() == labels.max():
        raise ValueError(
            f"this detector needs both positives (y=1) and negatives (y != 1), "
            f"got n_samples={n} of one class"
        )
    if not required and not labels.any():
        raise ValueError("y has no positives (y=1): nothing to learn the class from")
    return labels


def check_finite_fields(
    values: Mapping[str, Any], where: str, infinite_ok: frozenset[str] = frozenset()
) -> None:
    """Refuse NaN/inf in saved numbers: JSON values (nested) and numeric arrays or tensors.

    Fields named in ``infinite_ok`` may hold +-inf (never NaN). Raises ``ValueError`` naming
    ``where`` and the field.
    """
    for key, value in values.items():
        name = f"{where}.{key}"
        if isinstance(value, Mapping):
            check_finite_fields(value, name)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                check_finite_fields({str(i): item}, name)
        elif isinstance(value, bool | str) or value is None:
            continue
        elif isinstance(value, int | float | np.number):
            if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
                raise ValueError(f"{name} = {value!r} is not a finite number")
        else:
            arr = (
                value.detach().cpu().double().numpy()
                if hasattr(value, "detach")
                else np.asarray(value)
            )
            if arr.dtype.kind == "O":
                raise ValueError(f"{name} holds Python objects, not numbers")
            if arr.dtype.kind in "fc":
                bad = np.isnan(arr) if key in infinite_ok else ~np.isfinite(arr)
                if bad.any():
                    raise ValueError(f"{name} holds {int(bad.sum())} NaN/inf value(s)")
