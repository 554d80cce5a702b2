"""Shared test fixtures: the real data root and the ADBench arrays.

The data root is ``$ONECLASS_DATA`` (a relative value is taken from the repository root), else
``../shared/data`` beside the checkout. Tests that need it are skipped, with the reason, when it is
absent; nothing is ever downloaded or copied into the repository.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_oneclass_logger() -> Iterator[None]:
    """An in-process ``oneclass.cli.main`` call configures the ``oneclass`` logger (its own
    handler, no propagation): put it back after each test, so ``caplog`` in later tests still
    sees the library's records whatever the test order."""
    log = logging.getLogger("oneclass")
    saved = (list(log.handlers), log.level, log.propagate)
    yield
    log.handlers[:], log.propagate = saved[0], saved[2]
    log.setLevel(saved[1])


def data_root_path() -> Path:
    """Where the shared data should be (it may not exist)."""
    root = Path(os.environ.get("ONECLASS_DATA", "../shared/data")).expanduser()
    return root if root.is_absolute() else (REPO / root).resolve()


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared data folder; skips the test when it is absent."""
    root = data_root_path()
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root} (set ONECLASS_DATA to the data folder)")
    return root


@pytest.fixture(scope="session")
def adbench(data_root: Path) -> Callable[[str], tuple[np.ndarray, np.ndarray]]:
    """``adbench(name) -> (X, y)`` with y = 1 in-class, 0 anomaly (cached, read-only arrays)."""
    from oneclass.data.adbench import load_adbench

    if not (data_root / "adbench").is_dir():
        pytest.skip(f"ADBench arrays not found under {data_root / 'adbench'}")

    @cache
    def load(name: str) -> tuple[np.ndarray, np.ndarray]:
        X, y = load_adbench(name, root=data_root)
        X.setflags(write=False)
        y.setflags(write=False)
        return X, y

    return load


@pytest.fixture(scope="session")
def cifar10_0(adbench) -> tuple[np.ndarray, np.ndarray]:
    """ADBench CIFAR10_0 (ResNet-18 embeddings, 5263 x 512): 5000 in-class, 263 anomalies."""
    return adbench("CIFAR10_0")
