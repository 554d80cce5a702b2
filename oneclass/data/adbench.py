"""ADBench benchmark arrays (Han et al., NeurIPS 2022) and their one-class protocol.

The arrays live under ``<data root>/adbench/`` (``CV_by_ResNet18/``: CIFAR-10 classes and
MVTec-AD categories as ImageNet ResNet-18 embeddings; ``Classical/``: small tabular sets), each an
``.npz`` with ``X`` and ``y`` where ADBench's ``y = 1`` marks an ANOMALY. :func:`load_adbench`
converts that to oneclass labels: ``1`` = in-class (ADBench normal), ``0`` = not in-class.

Protocol (:func:`adbench_split`): fit on a seeded ``train_fraction`` of the in-class samples, test
on the remaining in-class samples plus all anomalies.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

#: the folders of the ADBench arrays, searched in this order for a bare name
GROUPS = ("CV_by_ResNet18", "Classical")

#: the 18 image sets of ``CV_by_ResNet18`` (3 CIFAR-10 classes, 15 MVTec-AD categories)
CV_SETS = (
    "CIFAR10_0",
    "CIFAR10_4",
    "CIFAR10_6",
    *(
        f"MVTec-AD_{c}"
        for c in (
            "bottle",
            "cable",
            "capsule",
            "carpet",
            "grid",
            "hazelnut",
            "leather",
            "metal_nut",
            "pill",
            "screw",
            "tile",
            "toothbrush",
            "transistor",
            "wood",
            "zipper",
        )
    ),
)


class Split(NamedTuple):
    """One draw of the protocol: training positives, and a labelled test set (1 = in-class)."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def adbench_dir(root: str | Path | None = None) -> Path:
    """The ``adbench`` folder under ``root`` (default: the oneclass data root)."""
    if root is None:
        from oneclass.data.manifests import data_root

        root = data_root()
    path = Path(root) / "adbench"
    if not path.is_dir():
        raise FileNotFoundError(
            f"no ADBench arrays at {path}: set ONECLASS_DATA to the folder holding adbench/"
        )
    return path


def available_adbench(root: str | Path | None = None) -> list[str]:
    """Names of the ADBench arrays present, as ``"<group>/<name>"``."""
    base = adbench_dir(root)
    return [f"{g}/{f.stem}" for g in GROUPS for f in sorted((base / g).glob("*.npz"))]


def _find(name: str, root: str | Path | None) -> Path:
    if name.endswith(".npz") and Path(name).is_file():
        return Path(name)
    base = adbench_dir(root)
    stem = name.removesuffix(".npz")
    candidates = (
        [base / f"{stem}.npz"] if "/" in stem else [base / g / f"{stem}.npz" for g in GROUPS]
    )
    for path in candidates:
        if path.is_file():
            return path
    names = ", ".join(n.split("/", 1)[1] for n in available_adbench(root))
    raise ValueError(f"unknown ADBench set {name!r} (looked in {base}); available: {names}")


def load_adbench(name: str, root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of an ADBench array, with ``y`` in oneclass labels: 1 = in-class, 0 = anomaly.

    ``name``: ``"CIFAR10_0"``, ``"CV_by_ResNet18/CIFAR10_0"`` or a path to an ``.npz``. ``X`` keeps
    its stored dtype (float32 for the image sets).
    """
    path = _find(name, root)
    try:
        with np.load(path, allow_pickle=False) as npz:
            X, y_anomaly = npz["X"], npz["y"]
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable ADBench array file (X, y): {exc}") from exc
    y_anomaly = np.asarray(y_anomaly).ravel()
    if X.ndim != 2 or X.shape[0] != y_anomaly.shape[0]:
        raise ValueError(f"{path}: X of shape {X.shape} does not match {y_anomaly.shape[0]} labels")
    values = set(np.unique(y_anomaly).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"{path}: y must be 0 (normal) / 1 (anomaly), got {sorted(values)}")
    if not np.isfinite(X).all():
        raise ValueError(f"{path}: X contains NaN or infinity")
    return X, (y_anomaly == 0).astype(np.int64)


def adbench_split(X, y, train_fraction: float = 0.7, seed: int | None = 0) -> Split:
    """Fit on a seeded ``train_fraction`` of the in-class rows (``y == 1``); test on the rest.

    The test set is every row not used for training (the other in-class rows and all anomalies),
    in its original order.
    """
    X, y = np.asarray(X), np.asarray(y).ravel()
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{X.shape[0]} rows of X for {y.shape[0]} labels")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    inclass = np.flatnonzero(y == 1)
    n_train = int(round(train_fraction * inclass.size))
    if not 0 < n_train < inclass.size:
        raise ValueError(
            f"{inclass.size} in-class rows cannot be split {train_fraction:g} / "
            f"{1 - train_fraction:g} with samples on both sides"
        )
    train = np.sort(np.random.default_rng(seed).permutation(inclass)[:n_train])
    test = np.setdiff1d(np.arange(y.shape[0]), train)
    return Split(X[train], X[test], y[test].astype(np.int64))
