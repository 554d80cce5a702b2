"""Every environment setting oneclass reads, in one place.

No other module reads ``os.environ`` for an ``ONECLASS_*`` setting: they call :func:`settings`.
The environment is read at each call (cheap), so a test or a long-lived process that changes a
variable sees the change; the values are interpreted here and nowhere else.

=====================  ==================================================================
variable               meaning
=====================  ==================================================================
``ONECLASS_DATA``      folder that holds the real data sets (see ``oneclass.data.manifests``)
``ONECLASS_DATASETS``  extra folders of dataset manifests (``os.pathsep``-separated)
``ONECLASS_CACHE``     the cache *folder*: ``embeddings.sqlite``, ``downloads/``, composites
                       (default ``$XDG_CACHE_HOME/oneclass``, i.e. ``~/.cache/oneclass``)
``ONECLASS_OFFLINE``   ``1``/``true``/``yes``/``on``: never reach the network
``ONECLASS_DEVICE``    ``cpu`` / ``cuda`` / ``cuda:1``...; default: CUDA when present
``ONECLASS_THREADS``   torch/dlib CPU threads; default: the cores this process may use
=====================  ==================================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "ONECLASS_DATA"
DATASETS_ENV = "ONECLASS_DATASETS"
CACHE_ENV = "ONECLASS_CACHE"
OFFLINE_ENV = "ONECLASS_OFFLINE"
DEVICE_ENV = "ONECLASS_DEVICE"
THREADS_ENV = "ONECLASS_THREADS"

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """The interpreted environment.

    Attributes:
        data_root: ``ONECLASS_DATA`` as given (``None`` when unset; the search order for a default
            lives in :func:`oneclass.data.manifests.data_root`).
        dataset_dirs: extra manifest folders from ``ONECLASS_DATASETS``.
        cache_dir: the one cache folder.
        offline: never download.
        device: the torch device asked for, ``None`` = choose (CUDA when present).
        threads: CPU threads asked for, ``None`` = the cores this process may use.
    """

    data_root: str | None
    dataset_dirs: tuple[Path, ...]
    cache_dir: Path
    offline: bool
    device: str | None
    threads: int | None


def _threads(value: str | None) -> int | None:
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{THREADS_ENV}={value!r}: not an integer") from None
    if n < 1:
        raise ValueError(f"{THREADS_ENV}={value!r}: must be >= 1")
    return n


def settings() -> Settings:
    """Read and interpret the environment.

    Returns:
        The current :class:`Settings`.

    Raises:
        ValueError: a variable holds a value that cannot be interpreted (the variable is named).
    """
    env = os.environ
    cache = env.get(CACHE_ENV)
    if cache:
        cache_dir = Path(cache).expanduser()
    else:
        xdg = env.get("XDG_CACHE_HOME")
        cache_dir = (Path(xdg) if xdg else Path.home() / ".cache") / "oneclass"
    return Settings(
        data_root=env.get(DATA_ENV) or None,
        dataset_dirs=tuple(
            Path(p).expanduser() for p in env.get(DATASETS_ENV, "").split(os.pathsep) if p
        ),
        cache_dir=cache_dir,
        offline=env.get(OFFLINE_ENV, "").strip().lower() in _TRUE,
        device=env.get(DEVICE_ENV) or None,
        threads=_threads(env.get(THREADS_ENV)),
    )


def available_cores() -> int:
    """Returns the number of CPU cores this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Returns the torch/dlib CPU threads: ``ONECLASS_THREADS`` or :func:`available_cores`."""
    return settings().threads or available_cores()


def default_device() -> str:
    """Returns ``ONECLASS_DEVICE`` when set, else ``"cuda"`` with a GPU, else ``"cpu"``."""
    device = settings().device
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
