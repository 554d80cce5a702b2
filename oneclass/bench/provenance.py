"""Where and with what a benchmark ran: versions, hardware, git revision, cache folders."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def default_cache_dir() -> Path:
    """Returns the one cache folder (``ONECLASS_CACHE``, see :mod:`oneclass.config`):
    embeddings, wild composites, downloads."""
    from oneclass.config import settings

    return settings().cache_dir


def git_revision() -> str:
    """Returns the short git revision of this checkout, or ``"unknown"``."""
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=here,
            text=True,
            capture_output=True,
            timeout=5,
        ).stdout.strip()
        return out or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_name() -> str:
    """Returns the processor's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """Returns machine, CPU, core count, torch threads and the GPU (if any)."""
    import torch

    info: dict[str, Any] = {
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def library_versions() -> dict[str, str]:
    """Returns the versions of oneclass and the libraries its results depend on."""
    from oneclass.persist import library_versions as versions

    return dict(versions())


def download_cache_dir() -> Path:
    """Returns the download cache folder URL images are read from."""
    from oneclass.data.download import default_cache_dir as downloads

    return Path(downloads())
